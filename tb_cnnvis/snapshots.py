"""Snapshots: the model kept at some logged steps, so that the tab can explore it later.

``SnapshotKeeper`` (made by ``CnnVisCallback`` unless ``keep_models=False``) saves the model
in Keras's own format (``.keras``: its config and weights, rebuilt later with
``keras.saving.load_model(..., safe_mode=True)``, which runs no stored code) into the run's
plugin directory::

    <run dir>/plugins/cnnvis/models/step-<step>.keras   one per kept step
    <run dir>/plugins/cnnvis/models/explore.json         what exploring needs besides the model
    <run dir>/plugins/cnnvis/models/probes.npz           the probe images in the model's scale

``explore.json`` is ``{"version": 1, "input_range": {"low", "high", "bgr"}, "class_names",
"labels", "image_input", "output"}``. Every file is written under a temporary name through
``tf.io.gfile`` (``gs://`` works) and renamed into place, so a reader sees a whole file or
none. The snapshots of a run stay within ``max_model_bytes``: when a new one does not fit,
older ones are thinned evenly (the one whose removal leaves the smallest gap between steps
goes first), never the newest. A failed write is one warning; training goes on.

Example:
    >>> keeper = SnapshotKeeper("logs/cnnvis", max_model_bytes=200 * 2**20)
    >>> keeper.keep(model, step=10, plan=plan)
    >>> list_snapshots(plugin_dir("logs/cnnvis"))
    {10: 'logs/cnnvis/plugins/cnnvis/models/step-10.keras'}
"""

import io
import json
import os
import posixpath
import re
import tempfile
import warnings

import numpy as np

from tb_cnnvis.blobstore import plugin_dir

MODEL_DIR = "models"
"""Snapshots live in ``<run dir>/plugins/cnnvis/models/``."""

SNAPSHOT_FILE = re.compile(r"step-([0-9]{1,12})\.keras")
"""The name of a snapshot file (matched whole); its group is the step."""

META_FILE = "explore.json"
PROBES_FILE = "probes.npz"

DEFAULT_MAX_MODEL_BYTES = 256 * 2**20
"""The default byte budget of one run's snapshots (``max_model_bytes``)."""

_KERAS_MODULES = ("keras", "tf_keras", "tensorflow")


def model_dir(run_dir):
    """``<run dir>/plugins/cnnvis/models``."""
    return posixpath.join(plugin_dir(run_dir), MODEL_DIR)


def list_snapshots(folder, gfile=None):
    """``{step: path}`` of the snapshot files in ``folder`` (a ``model_dir``), by step.

    Args:
        folder: the models folder.
        gfile: a ``tf.io.gfile``-like module (default: TensorBoard's, which needs no
            TensorFlow).
    """
    gfile = gfile or _gfile()
    try:
        names = gfile.listdir(folder) if gfile.isdir(folder) else []
    except Exception:  # A folder that cannot be listed has no snapshots to offer.
        return {}
    found = {}
    for name in names:
        match = SNAPSHOT_FILE.fullmatch(name.rstrip("/"))
        if match:
            found[int(match.group(1))] = posixpath.join(folder, match.group(0))
    return dict(sorted(found.items()))


def thinned(steps, sizes, budget):
    """The steps to remove so that the rest fit ``budget``, thinning evenly, never the last.

    Args:
        steps: the kept steps, in increasing order.
        sizes: ``{step: bytes}``.
        budget: the most bytes in all.

    Returns:
        The steps to remove (possibly every one but the last).

    Example:
        >>> thinned([0, 10, 20, 30, 40], dict.fromkeys([0, 10, 20, 30, 40], 10), 30)
        [10, 30]
    """
    kept, removed = list(steps), []
    while len(kept) > 1 and sum(sizes[s] for s in kept) > budget:
        if len(kept) == 2:
            victim = kept[0]
        else:  # the inner step whose neighbours are closest; the older one on ties
            gaps = [(kept[i + 1] - kept[i - 1], kept[i]) for i in range(1, len(kept) - 1)]
            victim = min(gaps)[1]
        kept.remove(victim)
        removed.append(victim)
    return sorted(removed)


def rebuild_problems(model):
    """Why another process could not rebuild ``model`` from its ``.keras`` file, or [].

    A layer or model class defined in ``__main__`` (a script or a notebook) cannot be
    imported by TensorBoard's process; a ``Lambda`` layer holds code that safe mode refuses.
    """
    problems = []
    for layer in _all_layers(model):
        cls = type(layer)
        module = cls.__module__ or ""
        if cls.__name__ == "Lambda" and module.split(".")[0] in _KERAS_MODULES:
            problems.append(f"layer {layer.name!r} is a Lambda layer (its code is not rebuilt)")
        elif module == "__main__" or module.startswith("__main__."):
            problems.append(
                f"{cls.__name__} (layer {layer.name!r}) is defined in __main__, which "
                "TensorBoard cannot import"
            )
    return problems


def rebuild_warning(problems):
    """The warning ``set_model`` gives for ``rebuild_problems``, with what works."""
    listed = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
    return (
        f"cnnvis: the model's snapshots cannot be rebuilt by TensorBoard ({listed}). To explore "
        "it in the tab, define custom classes in an importable module and register them with "
        "keras.saving.register_keras_serializable, or explore the live model with "
        "cv.explore(logdir, models=model). Pass keep_models=False to keep no snapshots."
    )


def keeper_for(model, run_dir, max_model_bytes=DEFAULT_MAX_MODEL_BYTES):
    """A ``SnapshotKeeper`` for ``model``, after warning if another process could not
    rebuild it (``rebuild_warning``)."""
    problems = rebuild_problems(model)
    if problems:
        warnings.warn(rebuild_warning(problems), UserWarning, stacklevel=3)
    return SnapshotKeeper(run_dir, max_model_bytes)


class SnapshotKeeper:
    """Saves the model at chosen steps into a run's plugin directory, within a byte budget.

    Args:
        run_dir: the callback's run directory (``<log_dir>/cnnvis``).
        max_model_bytes: the most bytes all snapshots of the run may take.

    Example:
        >>> keeper = SnapshotKeeper("logs/cnnvis", 2**28)
        >>> keeper.keep(model, 0, plan)
        True
    """

    def __init__(self, run_dir, max_model_bytes=DEFAULT_MAX_MODEL_BYTES):
        self.folder = model_dir(run_dir)
        self.max_model_bytes = int(max_model_bytes)
        self._meta_written = False
        self._warned = set()

    def keep(self, model, step, plan=None):
        """Save ``model`` as the snapshot of ``step``, then thin older ones; never raises.

        Returns:
            True if the snapshot was written.
        """
        import tensorflow as tf

        gfile = tf.io.gfile
        final = posixpath.join(self.folder, f"step-{int(step)}.keras")
        try:
            gfile.makedirs(self.folder)
            if plan is not None and not self._meta_written:
                self._write_meta(plan)
            with tempfile.TemporaryDirectory(prefix="cnnvis-snapshot-") as local:
                path = os.path.join(local, "model.keras")
                model.save(path)
                _publish(path, final)
            self._thin()
        except Exception as error:  # A failing disk or store must not stop training.
            self._warn(final, error)
            return False
        return True

    def _write_meta(self, plan):
        """Write ``explore.json`` and ``probes.npz`` (once per keeper)."""
        rng = plan.options.input_range
        labels = plan.probes.labels
        meta = {
            "version": 1,
            "input_range": {
                "low": np.atleast_1d(rng.low).tolist(),
                "high": np.atleast_1d(rng.high).tolist(),
                "bgr": bool(rng.bgr),
            },
            "class_names": plan.probe_content.get("class_names"),
            "labels": None if labels is None else np.asarray(labels).tolist(),
            "image_input": plan.options.image_input,
            "output": None if plan.subject is None else plan.subject.output,
        }
        buffer = io.BytesIO()
        np.savez(buffer, images=np.asarray(plan.probes.images, np.float32))
        _write_bytes(posixpath.join(self.folder, PROBES_FILE), buffer.getvalue())
        text = json.dumps(meta, allow_nan=False, default=_plain)
        _write_bytes(posixpath.join(self.folder, META_FILE), text.encode("utf-8"))
        self._meta_written = True

    def _thin(self):
        """Remove older snapshots, evenly, until the run's fit ``max_model_bytes``."""
        import tensorflow as tf

        found = list_snapshots(self.folder, tf.io.gfile)
        sizes = {step: tf.io.gfile.stat(path).length for step, path in found.items()}
        for step in thinned(list(found), sizes, self.max_model_bytes):
            tf.io.gfile.remove(found[step])
        if len(found) == 1 and sum(sizes.values()) > self.max_model_bytes:
            self._warn(
                self.folder,
                ValueError(
                    f"one snapshot takes {sum(sizes.values())} bytes, more than "
                    f"max_model_bytes={self.max_model_bytes}; only the newest is kept"
                ),
            )

    def _warn(self, where, error):
        """Warn once per kind of failure."""
        kind = (type(error).__name__, str(error)[:60])
        if kind in self._warned:
            return
        self._warned.add(kind)
        warnings.warn(
            f"cnnvis: could not keep a model snapshot in {where!r} ({type(error).__name__}: "
            f"{error}); training goes on.",
            RuntimeWarning,
            stacklevel=3,
        )


def _publish(local_path, final):
    """Copy a local file to ``final`` under a temporary name, then rename it into place."""
    import tensorflow as tf

    temporary = final + ".part"
    tf.io.gfile.copy(local_path, temporary, overwrite=True)
    tf.io.gfile.rename(temporary, final, overwrite=True)


def _write_bytes(final, data):
    """Write ``data`` to ``final`` atomically (temporary name, then rename)."""
    import tensorflow as tf

    temporary = final + ".part"
    with tf.io.gfile.GFile(temporary, "wb") as out:
        out.write(data)
    tf.io.gfile.rename(temporary, final, overwrite=True)


def _plain(value):
    """JSON for numpy scalars and arrays in the meta file."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _all_layers(model):
    """``model`` and every layer inside it, nested ones included."""
    seen, stack, found = set(), [model], []
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        found.append(layer)
        stack.extend(getattr(layer, "layers", None) or ())
    return found


def _gfile():
    """TensorBoard's ``tf.io.gfile`` (TensorFlow's when installed), without importing TF."""
    from tensorboard.compat import tf

    return tf.io.gfile

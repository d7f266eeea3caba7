"""Where a run's models come from: its snapshots in the log directory, or live models.

A run's snapshots are ``<logdir>/<run>/plugins/cnnvis/models/step-<step>.keras``
(``tb_cnnvis.snapshots``). ``cv.explore`` adds live models (or checkpoint paths) with
``register_live``: ``{run: {step: model or path}}``, the step ``LIVE_STEP`` (-1) for a
model given without one. Only runs that TensorBoard lists (or that have live models) are
looked up, and a run name that would leave the log directory is refused, so nothing outside
the log directory is read.

Example:
    >>> sources = Sources("logs")
    >>> sources.steps("cnnvis")
    [0, 10, 20]
    >>> sources.source("cnnvis", 10).identity
    'logs/cnnvis/plugins/cnnvis/models/step-10.keras:81234:1796600000000000000'
"""

import os
import posixpath
import threading
from typing import NamedTuple

from tb_cnnvis import snapshots
from tb_cnnvis.explorer.requests import LIVE_STEP, RequestError

_LIVE = {}  # run -> {step: model or path}, set by cv.explore
_LIVE_META = {}  # run -> compute.Meta of live models
_LIVE_LOCK = threading.Lock()


def register_live(run, models, meta=None):
    """Hand live models of ``run`` to the plugin: ``{step: Keras model or .keras path}``,
    with a ``compute.Meta`` (probes, class names, input range) or None."""
    with _LIVE_LOCK:
        _LIVE[str(run)] = dict(models)
        if meta is not None:
            _LIVE_META[str(run)] = meta


def clear_live():
    """Forget every live model (``cv.explore``'s server stopped)."""
    with _LIVE_LOCK:
        _LIVE.clear()
        _LIVE_META.clear()


def live_runs():
    """``{run: {step: model or path}}``: a copy of the live models."""
    with _LIVE_LOCK:
        return {run: dict(models) for run, models in _LIVE.items()}


class Source(NamedTuple):
    """One model of one run: ``model`` (a Keras model or a path), a cache ``identity``."""

    run: str
    step: int
    model: object
    identity: str


class Sources:
    """The models of a log directory's runs.

    Args:
        logdir: TensorBoard's ``--logdir`` (None: only live models).
        gfile: a ``tf.io.gfile``-like module (default: TensorBoard's).
    """

    def __init__(self, logdir, gfile=None):
        self.logdir = logdir or None
        self._given_gfile = gfile
        self._metas = {}
        self._lock = threading.Lock()

    @property
    def _gfile(self):
        """The gfile module, found on first use (TensorFlow is imported only then)."""
        return self._given_gfile or snapshots._gfile()

    def run_dir(self, run):
        """``<logdir>/<run>``, refusing names that leave the log directory.

        Raises:
            RequestError: 404 without a log directory or for such a name.
        """
        parts = run.replace("\\", "/").split("/")
        if self.logdir is None or any(p in ("..", "") for p in parts) or run.startswith("/"):
            raise RequestError(f"run {run!r} has no saved models in the log directory", 404)
        if "://" in self.logdir:
            return posixpath.join(self.logdir, *parts)
        return os.path.join(self.logdir, *parts)

    def steps(self, run, known_runs=()):
        """The steps with a model for ``run`` (live ones included), in order."""
        live = live_runs().get(run, {})
        found = {}
        if run in known_runs and self.logdir is not None:
            found = snapshots.list_snapshots(snapshots.model_dir(self.run_dir(run)), self._gfile)
        return sorted(set(found) | set(live))

    def source(self, run, step, known_runs=()):
        """The ``Source`` of ``run`` at ``step``.

        Raises:
            RequestError: 404 for an unknown run or a step without a model; the sentence
                names the steps that have one.
        """
        live = live_runs().get(run, {})
        if step in live:
            model = live[step]
            if isinstance(model, str):
                return Source(run, step, model, _file_identity(self._gfile, model))
            return Source(run, step, model, f"live:{id(model)}:{_weights_fingerprint(model)}")
        if run not in known_runs and not live:
            raise RequestError(
                f"no run {run!r} with saved models; runs: {sorted(known_runs)[:30]}", 404
            )
        steps = self.steps(run, known_runs)
        path = posixpath.join(snapshots.model_dir(self.run_dir(run)), f"step-{step}.keras")
        if step == LIVE_STEP or step not in steps:
            hint = steps if steps else "none (log with keep_models=True, or use cv.explore)"
            raise RequestError(f"run {run!r} has no saved model at step {step}; steps: {hint}", 404)
        return Source(run, step, path, _file_identity(self._gfile, path))

    def meta(self, run):
        """The run's ``compute.Meta`` (read once per run; empty when it has none)."""
        from tb_cnnvis.explorer.compute import Meta

        with _LIVE_LOCK:
            if run in _LIVE_META:
                return _LIVE_META[run]
        with self._lock:
            if run in self._metas:
                return self._metas[run]
        try:
            meta = Meta.read(snapshots.model_dir(self.run_dir(run)), self._gfile)
        except RequestError:
            meta = Meta()
        except (OSError, ValueError, KeyError):
            meta = Meta()
        with self._lock:
            self._metas[run] = meta
        return meta


def _file_identity(gfile, path):
    """``path:size:mtime`` of a file (a rewritten snapshot has a new identity)."""
    try:
        stat = gfile.stat(path)
    except Exception:  # gfile raises its own NotFoundError; a missing file is told later.
        return f"{path}:missing"
    return f"{path}:{stat.length}:{getattr(stat, 'mtime_nsec', 0)}"


def _weights_fingerprint(model):
    """A short fingerprint of a live model's weights (it may have trained since)."""
    import hashlib

    digest = hashlib.sha256()
    for weights in model.weights:
        digest.update(memoryview(weights.numpy()).tobytes()[:4096])
    return digest.hexdigest()[:16]

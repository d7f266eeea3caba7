"""Compute one explore request on one model, as the callback would have logged it.

``compute`` builds a ``plan.Plan`` for the one view, layer and image asked for (the checks
of ``make_plan`` become ``RequestError`` sentences), runs the view's family and lets the
family's own writer write the result into a step that is collected, not stored
(``blobstore.RunWriter`` with its commit replaced): the facts and PNGs are byte for byte
those a logged step holds, so the dashboard's family code draws them. Feature maps keep the
channels asked for; filter patterns are synthesized for the filters asked for (by default
the first ``DEFAULT_FILTERS``); projections project the first channel asked for (by default
the strongest).

``ModelStore`` keeps one model resident: loading another (a snapshot with
``keras.saving.load_model(..., safe_mode=True)``, or a live model handed to
``cv.explore``) lets the previous one go.

Example:
    >>> model = ModelStore().get(source)
    >>> content, facts, pngs = compute(model, meta, request, image)
"""

import json
import os
import posixpath
import shutil
import tempfile
import threading
import time

import numpy as np

from tb_cnnvis import blobstore
from tb_cnnvis.explorer.requests import TARGETS, RequestError, decode_image

DEFAULT_FILTERS = 8
"""Filter patterns computed when a request names no channels."""


class Meta:
    """What exploring a run needs besides its model: input range, class names, probes.

    Args:
        input_range: an ``InputRange``, its JSON form, or None (guessed from the model).
        class_names: the class names or None.
        labels: the probes' labels or None.
        probes: the probe images in the model's scale (N, H, W, C), or None.
        image_input, output: as ``CnnVisCallback`` was given them.
    """

    def __init__(
        self,
        input_range=None,
        class_names=None,
        labels=None,
        probes=None,
        image_input=None,
        output=None,
    ):
        from tb_cnnvis.input_range import InputRange

        if isinstance(input_range, dict):
            input_range = InputRange(
                tuple(input_range["low"]), tuple(input_range["high"]), bool(input_range["bgr"])
            )
        self.input_range = input_range
        self.class_names = class_names
        self.labels = None if labels is None else np.asarray(labels)
        self.probes = probes
        self.image_input = image_input
        self.output = output

    @classmethod
    def read(cls, folder, gfile):
        """The ``Meta`` a ``SnapshotKeeper`` wrote in ``folder`` (empty if none)."""
        from tb_cnnvis.snapshots import META_FILE, PROBES_FILE

        meta_path = posixpath.join(folder, META_FILE)
        if not gfile.exists(meta_path):
            return cls()
        with gfile.GFile(meta_path, "rb") as source:
            meta = json.loads(source.read().decode("utf-8"))
        probes = None
        probes_path = posixpath.join(folder, PROBES_FILE)
        if gfile.exists(probes_path):
            import io

            with gfile.GFile(probes_path, "rb") as source:
                probes = np.load(io.BytesIO(source.read()), allow_pickle=False)["images"]
        return cls(
            meta.get("input_range"),
            meta.get("class_names"),
            meta.get("labels"),
            probes,
            meta.get("image_input"),
            meta.get("output"),
        )


class ModelStore:
    """One model resident at a time, loaded from a snapshot file or handed over live."""

    def __init__(self):
        self._key, self._model = None, None
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, source):
        """The model of ``source``: a Keras model, or a ``.keras`` path (any gfile URL)."""
        if not isinstance(source, str):
            return source
        with self._lock:
            if self._key == source:
                return self._model
            self._key, self._model = None, None  # let the previous one go first
            model = _load(source)
            self._key, self._model = source, model
            self.loads += 1
            return model


def _load(path):
    """``keras.saving.load_model(path, safe_mode=True)``; a remote file is copied first."""
    import keras

    if "://" not in path:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    import tensorflow as tf

    local = tempfile.mkdtemp(prefix="cnnvis-model-")
    try:
        copy = os.path.join(local, "model.keras")
        tf.io.gfile.copy(path, copy, overwrite=True)
        return keras.saving.load_model(copy, safe_mode=True, compile=False)
    finally:
        shutil.rmtree(local, ignore_errors=True)


class _Collector(blobstore.RunWriter):
    """A ``RunWriter`` that keeps the step it is given instead of writing it."""

    def commit(self, pending):
        """Keep ``pending``."""
        self.pending = pending
        return True


def model_image(model, meta, request):
    """The request's image in the model's scale, (1, H, W, C) float32.

    Raises:
        RequestError: an unknown probe, or a model without one image input.
    """
    from tb_cnnvis import capture
    from tb_cnnvis.input_range import InputRange

    kind, value = request.image
    if kind == "probe":
        count = 0 if meta.probes is None else len(meta.probes)
        if value >= count:
            raise RequestError(f"the run has {count} probe images; there is no probe {value}", 404)
        return np.asarray(meta.probes[value : value + 1], np.float32)
    try:
        shape = capture.input_shape(model, meta.image_input)
    except ValueError as error:
        raise RequestError(f"this model cannot be explored with an image: {error}") from None
    height, width, channels = (int(v) if v else None for v in shape[-3:])
    pixels = decode_image(value)
    unit = _resized(pixels, height or pixels.shape[0], width or pixels.shape[1])
    if channels == 1:
        unit = unit.mean(axis=-1, keepdims=True)
    rng = InputRange.resolve(meta.input_range, model)
    return np.asarray(rng.from_unit(unit[None]), np.float32)


def _resized(pixels, height, width):
    """uint8 RGB (h, w, 3) as floats in [0, 1], resized (bilinear) to (height, width)."""
    unit = np.asarray(pixels, np.float32) / 255.0
    if unit.shape[:2] == (height, width):
        return unit
    import tensorflow as tf

    return tf.image.resize(unit, (height, width), method="bilinear").numpy()


def compute(model, meta, request, image, step=0):
    """The facts and PNGs of one view of one layer for one image, as a logged step has them.

    Args:
        model: the Keras model.
        meta: the run's ``Meta``.
        request: an ``ExploreRequest``.
        image: (1, H, W, C) in the model's scale (``model_image``).
        step: the step written into the facts.

    Returns:
        ``(tag content, facts, pngs)``.

    Raises:
        RequestError: an unknown view or layer, a class out of range, or a view that cannot
            run on the layer; the sentence says what exists.
    """
    from tb_cnnvis import plan, views

    try:
        view = views.get(request.view)
    except ValueError:
        raise RequestError(
            f"unknown view {request.view!r}; the views are {list(views.kinds())}", 404
        ) from None
    labels = None
    if request.image[0] == "probe" and meta.labels is not None:
        labels = meta.labels[request.image[1] : request.image[1] + 1]
    options = plan.Options(
        input_range=meta.input_range,
        max_filters_per_layer=DEFAULT_FILTERS,
        filter_options={"preset": "fast", "steps": None, "diversity": 1},
        cam_target="predicted" if labels is None else "label",
        output=meta.output,
        image_input=meta.image_input,
        cam_classes=1 if request.class_index is None else (request.class_index,),
        target=_target(request.target),
    )
    spec = None if view.family.at_input else {request.view: _layer_spec(model, request.layer)}
    try:
        resolved = plan.make_plan(
            model, (request.view,), spec, image, labels, meta.class_names, options
        )
    except ValueError as error:
        raise RequestError(str(error)) from None
    if request.view not in resolved.views:
        raise RequestError(f"the {request.view} view cannot explain this model's output")
    ref = resolved.layers[request.view][0]
    began = time.perf_counter()
    result = _result(resolved, view, ref, request.channels)
    collector = _Collector("")
    content = resolved.contents[request.view][ref.path]
    with collector.step(step):
        view.family.write(content, result, step, time.perf_counter() - began, {}, resolved.context)
    _, blob, _, _ = collector.pending.records[0]
    facts = json.loads(blob)
    facts.pop("pixels", None)
    return content, facts, list(collector.pending.pngs)


def _layer_spec(model, layer):
    """The layer's exact path as a spec (a name is not taken as a pattern)."""
    from tb_cnnvis import capture

    if layer is None:
        raise RequestError("layer is required for this view")
    paths = [ref.path for ref in capture.select_layers(model, None)]
    if layer not in paths:
        shown = paths if len(paths) <= 40 else [*paths[:40], f"... ({len(paths)} in all)"]
        raise RequestError(
            f"no layer {layer!r} with a (h, w, c) output; the layers are {shown}", 404
        )
    return [layer]


def _target(name):
    """A ``targets.Regression`` for ``"raise"`` / ``"lower"``, else None."""
    if name is None:
        return None
    from tb_cnnvis import targets

    return targets.Regression(TARGETS[name])


def _result(resolved, view, ref, channels):
    """The family's result for one layer, with the channels asked for."""
    from tb_cnnvis.views.feature_maps import StoredMaps

    count = int(ref.output_shape[-1])
    if channels is not None:
        bad = [c for c in channels if c >= count]
        if bad:
            raise RequestError(f"channels {bad} out of range: layer {ref.path!r} has {count}")
    if view.family.name == "filter_patterns":
        from tb_cnnvis.algorithms import filters

        chosen = list(channels) if channels else list(range(min(count, DEFAULT_FILTERS)))
        return filters.filter_patterns(
            resolved.model,
            ref.path,
            filters=chosen,
            input_range=resolved.options.input_range,
            reference_images=resolved.probes.inputs,
            image_input=resolved.options.image_input,
            **resolved.options.filter_options,
        )
    if view.family.name == "projection" and channels:
        from tb_cnnvis.algorithms import backprop

        return backprop.projection_details(
            resolved.model,
            resolved.probes.inputs,
            ref.path,
            channel=channels[0],
            rule=view.params["rule"],
            image_input=resolved.options.image_input,
        )
    _, result, _ = next(iter(view.family.compute(resolved, view, [ref])))
    if isinstance(result, Exception):
        raise result
    if isinstance(result, StoredMaps):
        kept = None if channels is None else np.asarray(channels, np.int64)
        result = StoredMaps(result.maps, kept, result.factor)
    return result

"""What the writers share: tag contents, facts made JSON-ready, kind checks, pixels from images.

The writers of ``tb_cnnvis.summary`` and of each view family store a step's facts as JSON
and its images as 8-bit PNGs; these helpers turn what the algorithms return into what is
stored (``summary`` re-exports them for the family modules).

Example:
    >>> jsonable({"max": np.array([1.5, np.nan])})
    {'max': [1.5, None]}
"""

import math

import numpy as np

from tb_cnnvis import imaging, metadata


def jsonable(value):
    """numpy and non-finite floats made JSON-safe (NaN/Inf become null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, (list, tuple)):
        if all(type(v) is float for v in value):  # per-channel lists: no call per value
            return [v if math.isfinite(v) else None for v in value]
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer, bool, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _array(values):
    """An array as nested lists, non-finite floats as None, in one pass of numpy."""
    if values.dtype.kind in "iub":
        return values.tolist()
    if values.dtype.kind != "f":
        return jsonable(values.tolist())
    values = values.astype(np.float64)
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist()
    held = values.astype(object)
    held[~finite] = None
    return held.tolist()


def int_list(values):
    """A list of Python ints, or None."""
    return None if values is None else [int(v) for v in np.asarray(values).reshape(-1)]


def shape_list(shape):
    """A shape as a list of ints (unknown dimensions as None), or None."""
    return None if shape is None else [None if d is None else int(d) for d in shape]


def float_list(values):
    """A list of Python floats (non-finite kept for ``jsonable`` to null), or None."""
    return None if values is None else [float(v) for v in np.asarray(values).reshape(-1)]


def with_metrics(facts, metrics):
    """``facts`` plus the metric facts, which must not replace any of them."""
    if not metrics:
        return facts
    clash = sorted(set(facts) & set(metrics))
    if clash:
        raise ValueError(f"metrics must not replace the facts {clash}.")
    return {**facts, **metrics}


def check_kind(tag_content, family):
    """Raise if ``tag_content`` is not of a kind of ``family`` (None: the probes tag)."""
    kind = tag_content.get("kind") if isinstance(tag_content, dict) else None
    if family is None:
        expected, ok = [metadata.PROBES], kind == metadata.PROBES
    else:
        expected = list(metadata.declared_kinds(family))
        ok = kind in expected
    if not ok:
        raise ValueError(f"This writer takes content of kind {expected}; got {kind!r}.")


def pixels_of(images, what, ndim):
    """uint8 pixels from uint8 images or floats in [0, 1]."""
    images = np.asarray(images)
    if images.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions; got shape {images.shape}.")
    return images if images.dtype == np.uint8 else imaging.to_uint8(images)


def content(
    kind,
    layer=None,
    *,
    input_shape,
    probe_count,
    layer_index=None,
    layer_class=None,
    output_shape=None,
    class_names=None,
    default_layer=False,
):
    """The static plugin content of one tag, as stored in its ``SummaryMetadata``.

    Args:
        kind: ``"probes"`` or a kind registered in ``tb_cnnvis.views`` (declared to
            ``metadata.declare_view``; its family, label, blurb and tab order are stored).
        layer: the layer path (None for ``probes``).
        input_shape: the model's input ``(H, W, C)``.
        probe_count: number of probe images N.
        layer_index: position of the layer in model order (for sorting).
        layer_class: the layer's class name, e.g. ``"Conv2D"``.
        output_shape: the layer's output ``(h, w, c)``.
        class_names: list of class names, or None.
        default_layer: whether the layer was chosen by the callback's defaults.

    Returns:
        A JSON-ready dict (see the module docstring).

    Raises:
        ValueError: for an unknown kind, or a layer kind without a layer.

    Example:
        >>> content("grad_cam", "conv3", input_shape=(64, 64, 3), probe_count=8,
        ...         layer_index=4, layer_class="Conv2D", output_shape=(14, 14, 32))
    """
    # An unknown kind fails here, naming the known ones.
    described = {} if kind == metadata.PROBES else metadata.view_description(kind)
    metadata.tag_name(kind, layer)  # a layer kind needs a layer
    return metadata.tag_content(
        kind,
        layer,
        **described,
        layer_index=None if layer_index is None else int(layer_index),
        layer_class=layer_class,
        output_shape=shape_list(output_shape),
        input_shape=shape_list(input_shape),
        probe_count=int(probe_count),
        class_names=None if class_names is None else [str(name) for name in class_names],
        default_layer=bool(default_layer),
    )


def content_for_layer(kind, ref, **common):
    """``content`` for a ``capture.LayerRef`` (path, layer, index, output_shape).

    A ref without a layer stands for the model's input (views at the input):
    ``layer_class`` is then ``"InputLayer"``.
    """
    return content(
        kind,
        ref.path,
        layer_index=ref.index,
        layer_class="InputLayer" if ref.layer is None else type(ref.layer).__name__,
        output_shape=ref.output_shape,
        **common,
    )

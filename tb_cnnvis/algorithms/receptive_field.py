"""Exact receptive fields of conv-net units, from one recorded call of the model.

Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019:
compose each layer's kernel size, stride, dilation and padding from the input to a layer.
The layers are read from one recorded call (``capture.trace_calls``), so Sequential,
functional, nested and subclassed models are handled alike. Keras's own layers are read
from their settings; what else runs between them (``tf.nn.relu(x)``, ``x + y`` in a
subclassed ``call``, or a custom layer's own ops) is read operation by operation from the
traced graph (convolutions, pooling, padding and per-position operations).

Global context (squeeze-and-excitation blocks of MobileNetV3 and EfficientNet, attention
gates): a branch that pools the whole image into one value per channel and multiplies it
back onto the feature map depends on every pixel. The field is defined by the *spatial*
path: such global inputs are left out when a layer also has spatial inputs, so the field
of a unit after an SE block is that of the convolutions before it. A layer whose output
itself has no spatial extent left (global pooling, a dense layer after flattening) sees
the whole image.

Used to crop the image patch under a unit (top-activating examples, Zeiler & Fergus 2014)
and to size filter-pattern canvases.

Example:
    >>> receptive_field(model, "conv2").size
    (8, 8)
"""

import weakref
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture


class ReceptiveField(NamedTuple):
    """Where the units of a layer look in the input, per axis (rows, columns).

    Unit ``(y, x)`` sees input rows ``start[0] + y * stride[0]`` to that plus ``size[0] - 1``
    (and likewise for columns); rows outside ``0..input_size[0] - 1`` are padding.

    Attributes:
        size: (h, w) of the receptive field in input pixels.
        stride: (h, w): input pixels between neighbouring units.
        start: (h, w): first input row and column seen by unit (0, 0) (negative: padding).
        input_size: (H, W) the field was computed for ("same" padding depends on it).
        output_size: (h, w) of the layer's output for that input.
    """

    size: tuple
    stride: tuple
    start: tuple
    input_size: tuple
    output_size: tuple

    @property
    def patch_size(self):
        """Size of the patches shown: the field, at most the input size."""
        return tuple(min(s, n) for s, n in zip(self.size, self.input_size))

    def window_corner(self, positions):
        """Top-left input pixel of the ``patch_size`` window centred on each unit's field."""
        positions = np.asarray(positions).reshape(-1, 2)
        offset = (np.array(self.size) - np.array(self.patch_size)) // 2
        return np.array(self.start) + positions * np.array(self.stride) + offset


class _Field:
    """The field of a tensor's units, per axis; or a marker: global, constant, unknown."""

    __slots__ = ("reason", "size", "start", "state", "stride")

    def __init__(self, start=None, stride=None, size=None, state="spatial", reason=""):
        self.start, self.stride, self.size = start, stride, size
        self.state, self.reason = state, reason


_CONSTANT = _Field(state="constant")  # does not depend on the image (weights, shapes)
_GLOBAL = _Field(state="global")  # depends on the whole image (pooled, flattened)


def _unknown(reason):
    return _Field(state="unknown", reason=reason)


def _pair(value):
    """A (h, w) int array from an int or a pair."""
    return np.broadcast_to(np.asarray(value, dtype=np.int64), (2,)).copy()


def _spatial(tensor):
    """(h, w) of a 4-D tensor, or None (other ranks, unknown sizes)."""
    shape = tensor.shape
    if shape.rank != 4 or shape[1] is None or shape[2] is None:
        return None
    return np.array([shape[1], shape[2]], np.int64)


def _window(field, extent, kernel, strides, dilation, padding):
    """The field after a sliding window (convolution or pooling) over an input of ``extent``."""
    span = _pair(dilation) * (_pair(kernel) - 1) + 1
    strides = _pair(strides)
    padding = padding.lower()
    if padding == "same":
        out = -(-extent // strides)
        before = np.maximum((out - 1) * strides + span - extent, 0) // 2
    elif padding == "valid":
        before = np.zeros(2, np.int64)
    else:
        return _unknown(f"padding {padding!r} is not supported for receptive fields")
    return _Field(
        field.start - before * field.stride,
        field.stride * strides,
        field.size + (span - 1) * field.stride,
    )


def _merge(fields, where):
    """The union of several inputs' fields; global inputs count only without spatial ones."""
    unknown = [f for f in fields if f.state == "unknown"]
    if unknown:
        return unknown[0]
    spatial = [f for f in fields if f.state == "spatial"]
    if not spatial:
        return _GLOBAL if any(f.state == "global" for f in fields) else _CONSTANT
    if any((f.stride != spatial[0].stride).any() for f in spatial):
        strides = [f.stride.tolist() for f in spatial]
        return _unknown(f"the inputs of {where} have different strides {strides}")
    start = np.min([f.start for f in spatial], axis=0)
    end = np.max([f.start + f.size for f in spatial], axis=0)
    return _Field(start, spatial[0].stride, end - start)


_UPSAMPLING = ("Conv2DTranspose", "UpSampling2D", "Resizing")


def _layer_field(layer, field, extent, out_extent):
    """The field of a Keras layer's output from the (merged) field of its inputs."""
    name = type(layer).__name__
    if field.state != "spatial":
        return field
    where = f"layer {layer.name!r} ({name})"
    if name in _UPSAMPLING:
        return _unknown(
            f"Cannot compute the receptive field through {where}: only convolution, pooling, "
            "padding, cropping and per-position layers are supported."
        )
    if out_extent is None:  # flattened or pooled away: the whole image
        return _GLOBAL
    if extent is None:
        return _unknown(f"Cannot compute the receptive field through {where}: unknown sizes.")
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        dilation = getattr(layer, "dilation_rate", 1)
        out = _window(field, extent, layer.kernel_size, layer.strides, dilation, layer.padding)
    elif hasattr(layer, "pool_size") and hasattr(layer, "strides"):
        out = _window(field, extent, layer.pool_size, layer.strides, 1, layer.padding)
    elif name in ("ZeroPadding2D", "Cropping2D"):
        crop = name == "Cropping2D"
        amounts = np.array(layer.cropping if crop else layer.padding, dtype=np.int64)
        sign = 1 if crop else -1
        out = _Field(field.start + sign * amounts[:, 0] * field.stride, field.stride, field.size)
    elif (out_extent == extent).all():
        return field
    elif (out_extent == 1).all():
        return _GLOBAL
    else:
        return _unknown(
            f"Cannot compute the receptive field through {where}: it changes the spatial size "
            f"{tuple(extent.tolist())} -> {tuple(out_extent.tolist())} in a way not understood."
        )
    if out.state == "unknown":
        return _unknown(f"Cannot compute the receptive field through {where}: {out.reason}.")
    return out


_PER_POSITION_OPS = frozenset(
    [
        "Identity",
        "IdentityN",
        "Relu",
        "Relu6",
        "Elu",
        "Selu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Softplus",
        "Softsign",
        "Erf",
        "Exp",
        "Log",
        "Neg",
        "Abs",
        "Square",
        "Sqrt",
        "Rsqrt",
        "Reciprocal",
        "Add",
        "AddV2",
        "AddN",
        "Sub",
        "Mul",
        "RealDiv",
        "DivNoNan",
        "Maximum",
        "Minimum",
        "Pow",
        "SquaredDifference",
        "BiasAdd",
        "Cast",
        "FusedBatchNorm",
        "FusedBatchNormV3",
        "Select",
        "SelectV2",
        "ClipByValue",
        "StopGradient",
        "PreventGradient",
        "ConcatV2",
        "Softmax",
        "LogSoftmax",
        "EnsureShape",
    ]
)
_WINDOW_OPS = ("Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool")
_REDUCTION_OPS = ("Mean", "Max", "Min", "Sum", "Prod")


def _op_field(op, inputs, extent, out_extent):
    """The field of an operation's output from its inputs' fields (``inputs``)."""
    where = f"operation {op.name!r} ({op.type})"
    merged = _merge(inputs, where)
    if merged.state != "spatial":
        return merged
    if op.type in _WINDOW_OPS:
        if op.get_attr("data_format") not in (b"NHWC", "NHWC"):
            return _unknown(f"Cannot compute the receptive field through {where}: not NHWC.")
        strides = op.get_attr("strides")[1:3]
        if op.type in ("MaxPool", "AvgPool"):
            kernel, dilation = op.get_attr("ksize")[1:3], 1
        else:
            kernel = [int(d) for d in op.inputs[1].shape[:2]]
            dilation = op.get_attr("dilations")[1:3]
        padding = op.get_attr("padding")
        padding = padding.decode() if isinstance(padding, bytes) else padding
        out = _window(merged, extent, kernel, strides, dilation, padding)
        if out.state == "unknown":
            return _unknown(f"Cannot compute the receptive field through {where}: {out.reason}.")
        return out
    if out_extent is None:
        return _GLOBAL
    if op.type in _REDUCTION_OPS or op.type in _PER_POSITION_OPS:
        if extent is not None and (out_extent == extent).all():
            return merged
        if (out_extent == 1).all():
            return _GLOBAL
    return _unknown(
        f"Cannot compute the receptive field through {where}: only convolution, pooling and "
        "per-position operations are supported."
    )


class _FieldTracer:
    """Fields of the tensors of one recorded call, keyed by tensor."""

    def __init__(self, inputs, size):
        ones = np.ones(2, np.int64)
        self.known = {id(t): _Field(np.zeros(2, np.int64), ones, ones) for t in inputs}
        self.keep = list(inputs)  # keeps the ids above valid

    def of(self, tensor, depth=0):
        """The field of ``tensor``: known, or read back through the ops that made it."""
        found = self.known.get(id(tensor))
        if found is not None:
            return found
        op = tensor.op
        if not op.inputs or depth > 200:
            field = _CONSTANT if not op.inputs else _unknown("too many operations in a row")
        else:
            inputs = [self.of(t, depth + 1) for t in op.inputs]
            spatial = [_spatial(t) for t in op.inputs if _spatial(t) is not None]
            extent = spatial[0] if spatial else None
            field = _op_field(op, inputs, extent, _spatial(tensor))
        self.set(tensor, field)
        return field

    def set(self, tensor, field):
        self.known[id(tensor)] = field
        self.keep.append(tensor)

    def layer(self, call):
        """Set the fields of a Keras layer's outputs from its inputs."""
        inputs = [self.of(t) for t in call.inputs]
        field = _merge(inputs, f"layer {call.layer.name!r}")
        spatial = [_spatial(t) for t in call.inputs if _spatial(t) is not None]
        extent = spatial[0] if spatial else None
        for out in call.outputs:
            self.set(out, _layer_field(call.layer, field, extent, _spatial(out)))


def _is_keras_layer(layer):
    """True for Keras's own layer classes (read from their settings, not their ops)."""
    return type(layer).__module__.startswith("keras.")


def _fields_visit(size):
    """A ``trace_calls`` visitor that computes the field of every layer path."""

    def visit(record):
        tracer = _FieldTracer([record.image], size)
        for call in record.calls:
            if not call.children and _is_keras_layer(call.layer):
                tracer.layer(call)
        fields = {}
        for call in record.calls:
            if call.path in fields or len(call.outputs) != 1:
                continue
            field = tracer.of(call.outputs[0])
            extent = _spatial(call.outputs[0])
            fields[call.path] = _result(field, size, extent)
        return fields

    return visit


def _result(field, size, extent):
    """A ``ReceptiveField`` (or the reason there is none) for a layer's output field."""
    if extent is None:
        return "it has no (height, width) output"
    if field.state == "unknown":
        return field.reason
    output_size = tuple(int(v) for v in extent)
    if field.state != "spatial":  # every unit sees the whole image
        return ReceptiveField(tuple(size), tuple(size), (0, 0), tuple(size), output_size)
    return ReceptiveField(
        size=tuple(int(v) for v in field.size),
        stride=tuple(int(v) for v in field.stride),
        start=tuple(int(v) for v in field.start),
        input_size=tuple(int(v) for v in size),
        output_size=output_size,
    )


_CACHE = weakref.WeakKeyDictionary()


def layer_fields(model, input_size, stop_at=None):
    """``{layer path: ReceptiveField or the reason it cannot be computed}``, cached per model.

    With ``stop_at`` (a path) the call stops after that layer: the layers after it need
    not run at ``input_size``."""
    size = tuple(int(s) for s in input_size)
    per_model = _CACHE.setdefault(model, {})
    if (size, stop_at) not in per_model:
        stops = () if stop_at is None else (stop_at,)
        found = capture.trace_calls(model, _fields_visit(size), image_size=size, stop_at=stops)
        per_model[(size, stop_at)] = found
    return per_model[(size, stop_at)]


FREE_SIZES = (32, 64, 128, 256, 512, 1024)
"""Input sides tried, smallest first, for a model that takes images of any size."""


def free_input_size(model, path):
    """A square input size for ``path`` of a model with no fixed input size.

    The smallest of ``FREE_SIZES`` at which the layers up to ``path`` run and the layer's
    receptive field fits inside the image; the largest that runs if none fits.

    Raises:
        ValueError: if the layer cannot be computed at any of them.
    """
    found = None
    for side in FREE_SIZES:
        try:
            field = layer_fields(model, (side, side), stop_at=path).get(path)
        except (ValueError, TypeError, tf.errors.InvalidArgumentError):
            continue
        if isinstance(field, ReceptiveField):
            found = (side, side)
            if all(int(f) <= side for f in field.size):
                return found
    if found is None:
        raise ValueError(
            f"Model {model.name!r} has no fixed input size and layer {path!r} cannot be "
            f"computed at any of the sizes {list(FREE_SIZES)}; pass the size to use."
        )
    return found


def receptive_field(model, layer, input_size=None):
    """The exact receptive field of the units of ``layer``.

    Composes each layer's kernel size, stride, dilation and padding from the input to
    ``layer`` (Araujo et al., "Computing Receptive Fields of Convolutional Neural
    Networks", Distill 2019). Several inputs (``Add``, ``Concatenate``) give the union of
    their fields; global-context branches (squeeze-and-excitation) are left out, see the
    module docstring. "same" padding is placed as TensorFlow places it (the extra pixel
    after), so it depends on the input size.

    Args:
        model: a built Keras 3 model (Sequential, functional, nested or subclassed).
        layer: name, ``"outer/inner"`` path or ``conv_layers`` index of a 4-D layer.
        input_size: (H, W) of the input; default: the model's input shape, or for a model
            that takes any size (``Input((None, None, 3))``) the smallest of
            ``FREE_SIZES`` that holds the layer's field (``free_input_size``).

    Returns:
        A ``ReceptiveField``.

    Raises:
        ValueError: for an unknown layer, an unknown input size, or a layer on the way that
            upsamples or reshapes (transposed convolution, ``UpSampling2D``, ...).

    Example:
        >>> receptive_field(model, "conv2")     # conv3 -> pool2 -> conv3
        ReceptiveField(size=(8, 8), stride=(2, 2), start=(-3, -3), input_size=(16, 16),
        output_size=(8, 8))
    """
    ref = capture.resolve_layer(model, layer)
    size = tuple(input_size) if input_size is not None else capture.input_shape(model)[:2]
    if input_size is None and size == (None, None):
        size = free_input_size(model, ref.path)
    if len(size) != 2 or any(s is None for s in size):
        raise ValueError(
            f"The model's input size is {size}; pass input_size=(height, width) to compute "
            "the receptive field."
        )
    found = layer_fields(model, size).get(ref.path)
    if found is None:
        raise ValueError(f"Layer {ref.path!r} was not reached from the input of {model.name!r}.")
    if isinstance(found, str):
        raise ValueError(found if found.startswith("Cannot") else f"Layer {ref.path!r}: {found}")
    return found

"""Exact receptive fields of conv-net units, from the layer chain.

Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019:
compose each layer's kernel size, stride, dilation and padding from the input to a layer.
Used to crop the image patch under a unit (top-activating examples, Zeiler & Fergus 2014).

Example:
    >>> receptive_field(model, "conv2").size
    (8, 8)
"""

from typing import NamedTuple

import keras
import numpy as np

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


class _Field(NamedTuple):
    """Receptive field of a tensor's units, per axis, and the tensor's spatial size."""

    start: np.ndarray
    stride: np.ndarray
    size: np.ndarray
    extent: np.ndarray


def _pair(value):
    """A (h, w) int array from an int or a pair."""
    return np.broadcast_to(np.asarray(value, dtype=np.int64), (2,)).copy()


def _window(field, kernel, strides, dilation, padding):
    """The field after a sliding window (convolution or pooling)."""
    span = _pair(dilation) * (_pair(kernel) - 1) + 1
    strides = _pair(strides)
    if padding == "same":
        extent = -(-field.extent // strides)
        before = np.maximum((extent - 1) * strides + span - field.extent, 0) // 2
    elif padding == "valid":
        extent = (field.extent - span) // strides + 1
        before = np.zeros(2, np.int64)
    else:
        raise ValueError(f"padding {padding!r} is not supported for receptive fields.")
    return _Field(
        field.start - before * field.stride,
        field.stride * strides,
        field.size + (span - 1) * field.stride,
        extent,
    )


_UNSUPPORTED = ("Conv2DTranspose", "UpSampling2D", "Resizing", "Flatten", "Reshape")


def _layer_field(layer, field):
    """The field of ``layer``'s output from the field of its input."""
    name = type(layer).__name__
    if name in _UNSUPPORTED:
        raise ValueError(
            f"Cannot compute the receptive field through layer {layer.name!r} ({name}): only "
            "convolution, pooling, padding, cropping and per-position layers are supported."
        )
    if hasattr(layer, "kernel_size") and hasattr(layer, "strides"):
        return _window(
            field,
            layer.kernel_size,
            layer.strides,
            getattr(layer, "dilation_rate", 1),
            layer.padding,
        )
    if hasattr(layer, "pool_size") and hasattr(layer, "strides"):
        return _window(field, layer.pool_size, layer.strides, 1, layer.padding)
    if isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)):
        crop = isinstance(layer, keras.layers.Cropping2D)
        amounts = np.array(layer.cropping if crop else layer.padding, dtype=np.int64)
        sign = 1 if crop else -1
        return _Field(
            field.start + sign * amounts[:, 0] * field.stride,
            field.stride,
            field.size,
            field.extent - sign * amounts.sum(axis=1),
        )
    try:
        spatial = [tuple(layer.input.shape[1:3]), tuple(layer.output.shape[1:3])]
    except (AttributeError, ValueError, RuntimeError):  # shared or never-called layers
        return field
    if spatial[0] != spatial[1]:
        raise ValueError(
            f"Cannot compute the receptive field through layer {layer.name!r} ({name}): it "
            f"changes the spatial size {spatial[0]} -> {spatial[1]} in a way not understood."
        )
    return field


def _merge_fields(fields, layer):
    """The union of the fields of a layer's several inputs (e.g. ``Add``, ``Concatenate``)."""
    if len(fields) == 1:
        return fields[0]
    if any((f.stride != fields[0].stride).any() for f in fields):
        raise ValueError(
            f"Cannot compute the receptive field through layer {layer.name!r}: its inputs have "
            f"different strides {[f.stride.tolist() for f in fields]}."
        )
    start = np.min([f.start for f in fields], axis=0)
    end = np.max([f.start + f.size for f in fields], axis=0)
    return _Field(start, fields[0].stride, end - start, fields[0].extent)


def _walk_fields(model, field, target, prefix=""):
    """Propagate ``field`` through ``model``; returns ``(output field, target field or None)``."""
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            field, found = _apply_field(layer, field, target, prefix)
            if found is not None:
                return field, found
        return field, None
    fields = {id(model.inputs[0]): field}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            inputs = [fields[id(t)] for t in node.input_tensors if id(t) in fields]
            if not inputs:
                continue
            merged = _merge_fields(inputs, node.operation)
            out, found = _apply_field(node.operation, merged, target, prefix)
            if found is not None:
                return out, found
            fields.update({id(t): out for t in node.outputs})
    return fields.get(id(model.outputs[0])), None


def _apply_field(layer, field, target, prefix):
    """One layer (or nested model) of the walk; the second value is set at ``target``."""
    path = prefix + layer.name
    if isinstance(layer, keras.Model):
        out, found = _walk_fields(layer, field, target, prefix=path + "/")
    else:
        out, found = _layer_field(layer, field), None
    return out, (out if path == target and found is None else found)


def receptive_field(model, layer, input_size=None):
    """The exact receptive field of the units of ``layer``, from the layer chain.

    Walks the graph from the input to ``layer`` and composes each layer's kernel size,
    stride, dilation and padding (Araujo et al., "Computing Receptive Fields of
    Convolutional Neural Networks", Distill 2019). Several inputs (``Add``,
    ``Concatenate``) give the union of their fields. "same" padding is placed as
    TensorFlow places it (the extra pixel after), so it depends on the input size.

    Args:
        model: a built Keras 3 model.
        layer: name, ``"outer/inner"`` path or ``conv_layers`` index of a 4-D layer.
        input_size: (H, W) of the input; default: the model's input shape.

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
    if len(size) != 2 or any(s is None for s in size):
        raise ValueError(
            f"The model's input size is {size}; pass input_size=(height, width) to compute "
            "the receptive field."
        )
    ones = np.ones(2, np.int64)
    start = _Field(np.zeros(2, np.int64), ones, ones, np.array(size, np.int64))
    _, found = _walk_fields(model, start, ref.path)
    if found is None:
        raise ValueError(f"Layer {ref.path!r} was not reached from the input of {model.name!r}.")
    return ReceptiveField(
        size=tuple(int(v) for v in found.size),
        stride=tuple(int(v) for v in found.stride),
        start=tuple(int(v) for v in found.start),
        input_size=tuple(int(v) for v in size),
        output_size=tuple(int(v) for v in found.extent),
    )

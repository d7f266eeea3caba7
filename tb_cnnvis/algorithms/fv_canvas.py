"""The canvas a layer's filter patterns are optimized on, and the part of it that is shown.

A unit of an early layer sees a few pixels; optimizing its pattern on the model's whole
input (224 px for a ``keras.applications`` network) costs a forward and backward pass of
the whole image per step and yields one small motif tiled over the canvas. Here each
layer gets a canvas of about twice its receptive field (Araujo et al., "Computing
Receptive Fields of Convolutional Neural Networks", Distill 2019; ``receptive_field``):

- height and width ``2 * field``, rounded up to a multiple of the layer's stride, at least
  ``MIN_CANVAS`` (and the smallest size the layers up to this one accept), at most the
  model's input size;
- the objective averages the units whose field lies inside the canvas
  (``interior_window``);
- what is stored and shown is the *display crop*: the field of the central unit,
  clipped to the canvas. A 3x3-field layer is shown as its 3x3 patch (the dashboard
  enlarges it), a layer whose field is larger than the input as the whole canvas.

A layer whose field cannot be computed, or whose prefix does not run at the smaller size
(a ``Flatten`` on the way), falls back to the model's input size and no crop.

Example:
    >>> canvas = plan_canvas(model, "conv1")            # a 3x3 conv on a 64 px model
    >>> canvas.size, canvas.crop
    ((16, 16), (6, 6, 9, 9))
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture
from tb_cnnvis.algorithms.receptive_field import ReceptiveField, free_input_size, layer_fields

MIN_CANVAS = 16
"""The smallest canvas side in pixels: random shifts and crops need room around the field."""


class Canvas(NamedTuple):
    """Where a layer's patterns are optimized and which part of them is shown.

    Attributes:
        size: (h, w) of the canvas the patterns are optimized on.
        crop: (top, left, bottom, right) of the display crop in the canvas, end exclusive.
        window: (top, bottom, left, right) of the layer's output averaged by the objective
            (``interior_window``), or None for all positions.
        field: the layer's ``ReceptiveField`` at the canvas size, or None if unknown.
    """

    size: tuple
    crop: tuple
    window: tuple | None
    field: object | None

    def crop_images(self, images):
        """The display crop of (..., h, w, C) canvas images."""
        top, left, bottom, right = self.crop
        return images[..., top:bottom, left:right, :]


def _field(model, path, size):
    """The receptive field at ``size`` (the call stopped after ``path``, so later layers
    need not take that size), or None when it cannot be computed."""
    try:
        found = layer_fields(model, size, stop_at=path).get(path)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError):
        return None
    return found if isinstance(found, ReceptiveField) else None


def trace_prefix(model, path, shape):
    """Trace the layers up to ``path`` on symbolic (1, *shape) images; raise if they refuse.

    Nothing is computed: an eager call would also compile some layers on the spot (Keras
    runs grouped convolutions through a new XLA function per eager call, which TensorFlow
    warns of as retracing).

    Raises:
        ValueError, TypeError or tf.errors.InvalidArgumentError: from the layer that
            refuses the shape.
    """
    capture.trace_calls(model, lambda record: None, image_size=tuple(shape[:2]), stop_at=[path])


def runs_at(model, path, shape):
    """True if the layers up to ``path`` can be computed on (1, *shape) images."""
    try:
        trace_prefix(model, path, shape)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError):
        return False
    return True


def _side(field_size, stride, limit):
    """``2 * field`` rounded up to a multiple of ``stride``, within [MIN_CANVAS, limit]."""
    want = 2 * int(field_size)
    want = -(-want // int(stride)) * int(stride)
    return int(min(max(want, MIN_CANVAS), limit))


def display_crop(field, size):
    """The central unit's field clipped to a canvas of ``size``: (top, left, bottom, right).

    The whole canvas when ``field`` is None or covers it.

    Example:
        >>> display_crop(receptive_field(model, "conv1", input_size=(16, 16)), (16, 16))
        (6, 6, 9, 9)
    """
    if field is None:
        return (0, 0, int(size[0]), int(size[1]))
    box = []
    for axis in range(2):
        centre = (field.output_size[axis] - 1) // 2
        first = field.start[axis] + centre * field.stride[axis]
        low = max(0, first)
        high = min(int(size[axis]), first + field.size[axis])
        if field.size[axis] >= size[axis] or high <= low:
            low, high = 0, int(size[axis])
        box.append((int(low), int(high)))
    return (box[0][0], box[1][0], box[0][1], box[1][1])


def working_size(model, path, images_size=None):
    """The (h, w) a layer's canvas is chosen within: the model's input size.

    A model that takes any size (``Input((None, None, 3))``) has none: then the size of
    the images it is shown (``images_size``, e.g. the probes'), else the smallest size at
    which the layer's receptive field fits (``receptive_field.free_input_size``).
    """
    height, width, _ = capture.input_shape(model)
    if height is not None and width is not None:
        return (int(height), int(width))
    if images_size is not None:
        return tuple(int(s) for s in images_size[:2])
    return free_input_size(model, path)


def plan_canvas(model, path, size=None, images_size=None):
    """The ``Canvas`` of layer ``path``: from its receptive field, or at ``size``.

    Args:
        model: the model.
        path: the layer's path.
        size: (h, w) to optimize at instead of the receptive-field canvas, or None.
        images_size: for a model that takes any size, the (h, w) of the images it is
            shown, the largest canvas (see ``working_size``); ignored otherwise.

    Returns:
        A ``Canvas``.

    Example:
        >>> plan_canvas(vgg16_at_224, "block3_conv1").size     # field 24 px
        (48, 48)
    """
    channels = capture.input_shape(model)[2]
    full = working_size(model, path, images_size) if size is None else tuple(int(s) for s in size)
    if size is None:
        field = _field(model, path, full)
        if field is not None:
            chosen = tuple(_side(field.size[a], field.stride[a], full[a]) for a in range(2))
            if chosen != full and runs_at(model, path, (*chosen, channels)):
                full = chosen
    field = _field(model, path, full)
    return Canvas(full, display_crop(field, full), interior_window(model, path, full), field)


def interior_window(model, path, size):
    """The positions of ``path``'s output whose receptive field lies inside the image.

    The objective averages a filter over these positions only. Units at the border see the
    zero padding, which breaks the symmetry of a flat start image: there the filter fires
    first, and the pattern grows in from the edges while the middle stays grey (the Keras
    tutorial trims two units for the same reason). Returns (top, bottom, left, right), or
    None (all positions) when the receptive field cannot be computed; the central unit
    when no unit lies wholly inside.
    """
    field = _field(model, path, tuple(size))
    if field is None:
        return None
    bounds = []
    for axis in range(2):
        start, stride, extent = field.start[axis], field.stride[axis], field.output_size[axis]
        first = max(0, -(start // stride) if start < 0 else 0)
        last = min(extent, (size[axis] - field.size[axis] - start) // stride + 1)
        if last <= first:  # no unit sees only the image: take the central one
            first = (extent - 1) // 2
            last = first + 1
        bounds += [int(first), int(last)]
    return bounds[0], bounds[1], bounds[2], bounds[3]


def centred_corners(field, positions, canvas, image_size):
    """Top-left corners of ``canvas``-sized windows centred on units' fields, inside the image.

    Args:
        field: the layer's ``ReceptiveField`` at ``image_size``.
        positions: (P, 2) unit positions (y, x) in layer coordinates.
        canvas: (h, w) of the windows.
        image_size: (H, W) of the images; each window is shifted to lie inside.

    Returns:
        An int array (P, 2).

    Example:
        >>> centred_corners(field, [[0, 0]], (16, 16), (64, 64))   # a corner unit
        array([[0, 0]])
    """
    positions = np.asarray(positions).reshape(-1, 2)
    centre = np.array(field.start) + positions * np.array(field.stride) + np.array(field.size) // 2
    corner = centre - np.array(canvas) // 2
    return np.clip(corner, 0, np.array(image_size) - np.array(canvas)).astype(np.int64)


def check_size(model, ref, size, images_size=None):
    """``(height, width, channels)`` to optimize at, checked against the layers up to ``ref``
    (``size`` None: ``working_size``)."""
    height, width, channels = capture.input_shape(model)
    if size is None:
        return (*working_size(model, ref.path, images_size), int(channels))
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in pair):
        raise ValueError(f"size must be a positive int or (height, width); got {size!r}.")
    shape = (int(pair[0]), int(pair[1]), int(channels))
    if shape[:2] != (height, width):
        try:
            trace_prefix(model, ref.path, shape)
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
            raise ValueError(
                f"Layer {ref.path!r} cannot be computed at size {shape[:2]} (the model takes "
                f"{(height, width)}): {error}"
            ) from None
    return shape


def auto_chunk(model, ref, shape, budget):
    """Slots per batch so that the estimated working memory stays under ``budget`` bytes."""
    height, width, _ = capture.input_shape(model)
    ratio = (shape[0] * shape[1]) / float((height or shape[0]) * (width or shape[1]))
    floats = np.prod(shape)
    for other in capture.layer_refs(model)[: ref.index + 1]:
        if other.output_shape and None not in other.output_shape[-1:]:
            spatial = [d for d in other.output_shape[:-1] if d is not None]
            floats += ratio * np.prod(spatial) * other.output_shape[-1]
    # Forward values, their gradients and the ReLU masks, in float32.
    per_slot = 3 * 4 * floats
    return max(1, int(budget // per_slot))

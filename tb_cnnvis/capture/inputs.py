"""What a model takes as input, and checks of the arrays given to it.

Example:
    >>> input_shape(model)
    (64, 64, 3)
    >>> batch = check_images(model, one_image)        # float32 (1, 64, 64, 3)
"""

import warnings

import numpy as np
import tensorflow as tf

from tb_cnnvis.capture.layers import is_graph_model, require_built


def _batch_shapes(model):
    """The shapes (with batch dimension) of the model's inputs, or None if unknown."""
    inputs = getattr(model, "inputs", None) if is_graph_model(model) else None
    if inputs:
        return [tuple(t.shape) for t in inputs]
    built = getattr(model, "_build_shapes_dict", None) or {}
    shapes = list(built.values())
    if len(shapes) == 1 and isinstance(shapes[0], (tuple, list)):
        shape = tuple(shapes[0])
        if shape and all(d is None or isinstance(d, int) for d in shape):
            return [shape]
        return [tuple(s) for s in shape]
    return None


def input_shape(model):
    """The model's input shape without the batch dimension (entries may be None).

    Raises:
        ValueError: if the model is not built, its input shape is unknown, or it has
            several inputs.
    """
    require_built(model)
    shapes = _batch_shapes(model)
    if not shapes:
        raise ValueError(
            f"Model {model.name!r} has no known input shape; build it on one, e.g. "
            "model.build((None, h, w, c)), or call it on a batch of images first."
        )
    if len(shapes) != 1:
        raise ValueError(
            f"tb-cnnvis supports models with one image input; {model.name!r} has {len(shapes)}."
        )
    return tuple(shapes[0][1:])


def build_shape(model):
    """A batch-of-one input shape to trace ``model`` with, e.g. ``(1, 64, 64, 3)``.

    Raises:
        ValueError: if the input size is not fixed.
    """
    shape = input_shape(model)
    if any(d is None for d in shape):
        raise ValueError(
            f"Model {model.name!r} was built for inputs of shape {(None, *shape)}; tb-cnnvis "
            "needs a fixed image size: build it with one, e.g. model.build((None, 64, 64, 3)), "
            "or call it once on a batch of your images."
        )
    return (1, *shape)


def check_images(model, images, what="images"):
    """Validate a batch for ``model`` and return it as float32 (N, H, W, C).

    A single image (H, W, C) becomes a batch of one.

    Raises:
        ValueError: wrong rank, channels or size, naming expected and received shapes.
    """
    if isinstance(images, tf.Tensor):
        images = images.numpy()
    array = np.asarray(images, dtype=np.float32)
    expected = input_shape(model)
    if array.ndim == len(expected):
        array = array[None]
    shown = "(N, " + ", ".join(str(d) for d in expected) + ")"
    if array.ndim != len(expected) + 1:
        raise ValueError(
            f"{what} must have shape {shown} or a single image {tuple(expected)}; got shape {np.shape(images)}."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{what} is empty; expected shape {shown}.")
    for got, want in zip(array.shape[1:], expected):
        if want is not None and got != want:
            raise ValueError(
                f"{what} must have shape {shown} or a single image {tuple(expected)} for model "
                f"{model.name!r}; got shape {np.shape(images)}."
            )
    return array


def finite_or_zero(maps, what):
    """Replace per-image non-finite maps by zeros, with a warning naming ``what``."""
    maps = np.asarray(maps, dtype=np.float32)
    bad = ~np.isfinite(maps.reshape(len(maps), -1)).all(axis=1)
    if bad.any():
        warnings.warn(
            f"{what}: non-finite values (NaN/Inf) for images {np.flatnonzero(bad).tolist()}; "
            "their maps are returned as zeros.",
            RuntimeWarning,
            stacklevel=3,
        )
        maps = maps.copy()
        maps[bad] = 0.0
    return maps

"""What a model takes as input and returns, and checks of the arrays given to it.

A model may take one image, or an image beside other inputs (a dict or a list: metadata,
a second modality). The *image input* is the one 4-D input, or the one ``image_input``
names. Arrays given by users are split into the image batch, which the methods explain,
and the *side inputs*, held at each image's own values (``split_images``); ``assemble``
puts them back together in the structure the model's ``call`` expects.

A model may also return several outputs (a list, or a dict of heads); ``output_keys``
names them and ``output_index`` resolves the ``output=`` argument of the methods that
explain a class score.

Example:
    >>> input_shape(model)
    (64, 64, 3)
    >>> pixels, side = split_images(model, {"image": x, "meta": m})   # side: {"meta": m}
    >>> output_index(model, "class")
    1
"""

import warnings
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis.capture.held import held_arrays
from tb_cnnvis.capture.layers import is_graph_model, require_built


class InputSpec(NamedTuple):
    """The inputs of a model.

    Attributes:
        names: input names, in the model's order (dict keys for dict inputs, ``"0"``,
            ``"1"``, ... for a subclassed model's list).
        shapes: their shapes without the batch dimension.
        structure: ``"single"``, ``"dict"`` or ``"list"``: how ``call`` takes them.
        image: the name of the image input.
    """

    names: tuple
    shapes: tuple
    structure: str
    image: str


def _declared(model):
    """``(names, shapes with batch, structure)`` of the model's inputs, or None if unknown."""
    inputs = getattr(model, "inputs", None) if is_graph_model(model) else None
    if inputs:
        names = tuple(t.name for t in inputs)
        shapes = tuple(tuple(t.shape) for t in inputs)
        return names, shapes, ("single" if len(inputs) == 1 else "dict")
    built = getattr(model, "_build_shapes_dict", None) or {}
    values = list(built.values())
    if len(values) != 1:
        return None
    shape = values[0]
    if isinstance(shape, dict):
        return tuple(shape), tuple(tuple(s) for s in shape.values()), "dict"
    shape = tuple(shape)
    if shape and all(d is None or isinstance(d, int) for d in shape):
        return ("input",), (shape,), "single"
    return tuple(str(i) for i in range(len(shape))), tuple(tuple(s) for s in shape), "list"


def input_spec(model, image_input=None):
    """The model's ``InputSpec``, with the image input chosen.

    Args:
        model: a built Keras model.
        image_input: the name (or position) of the image input; None: the one 4-D input.

    Raises:
        ValueError: if the model is not built or its inputs are unknown, or the image
            input is ambiguous or not 4-D; the message names the inputs.
    """
    require_built(model)
    declared = _declared(model)
    if declared is None:
        raise ValueError(
            f"Model {model.name!r} has no known input shape; build it on one, e.g. "
            "model.build((None, h, w, c)), or call it on a batch of images first."
        )
    names, shapes, structure = declared
    shown = {name: shape[1:] for name, shape in zip(names, shapes)}
    if image_input is not None:
        key = names[image_input] if isinstance(image_input, int) else str(image_input)
        if key not in names or len(shown[key]) != 3:
            raise ValueError(
                f"image_input={image_input!r} is not a 4-D (batch, h, w, c) input of model "
                f"{model.name!r}; its inputs: {shown}."
            )
        image = key
    elif len(names) == 1:
        image = names[0]  # a one-input model: its input (callers check that it is 4-D)
    else:
        four_d = [name for name in names if len(shown[name]) == 3]
        if len(four_d) != 1:
            raise ValueError(
                f"Model {model.name!r} has {len(four_d)} image-shaped (batch, h, w, c) inputs "
                f"among {shown}; name the one to explain with image_input=..."
            )
        image = four_d[0]
    return InputSpec(names, tuple(s[1:] for s in shapes), structure, image)


def input_shape(model, image_input=None):
    """The image input's shape without the batch dimension (entries may be None).

    Raises:
        ValueError: see ``input_spec``.
    """
    spec = input_spec(model, image_input)
    return tuple(spec.shapes[spec.names.index(spec.image)])


def build_shapes(model, image_size=None):
    """Batch-of-one shapes to trace ``model`` with: ``(InputSpec, {input name: shape})``.

    Args:
        model: a built Keras model.
        image_size: (H, W) to use for the image input instead of the model's own.

    Raises:
        ValueError: if an input's size is not fixed.
    """
    spec = input_spec_any(model)
    shapes = {}
    for name, shape in zip(spec.names, spec.shapes):
        if image_size is not None and name == spec.image:
            shape = (*image_size, shape[-1])
        if any(d is None for d in shape):
            raise ValueError(
                f"Model {model.name!r} was built for inputs of shape {(None, *shape)}; "
                "tb-cnnvis needs a fixed image size: build it with one, e.g. "
                "model.build((None, 64, 64, 3)), or call it once on a batch of your images."
            )
        shapes[name] = (1, *shape)
    return spec, shapes


def input_spec_any(model):
    """``input_spec`` without choosing an image input (for tracing a model as a whole)."""
    try:
        return input_spec(model)
    except ValueError:
        require_built(model)
        declared = _declared(model)
        if declared is None:
            raise
        names, shapes, structure = declared
        return InputSpec(names, tuple(s[1:] for s in shapes), structure, names[0])


def assemble(spec, image, side=None):
    """The model's input structure from the image batch and the side inputs.

    Args:
        spec: the model's ``InputSpec``.
        image: the image batch (a tensor).
        side: ``{name: tensor}`` for every other input, or None for a one-input model.

    Returns:
        What the model's ``call`` takes: the image itself, a dict or a list.
    """
    if spec.structure == "single":
        return image
    values = {**(side or {}), spec.image: image}
    if spec.structure == "dict":
        return {name: values[name] for name in spec.names}
    return [values[name] for name in spec.names]


def split_images(model, images, what="images", image_input=None):
    """Validate what a user passed for ``model`` and split it: image batch, side inputs.

    Args:
        model: a built Keras model.
        images: for a one-input model an array (N, H, W, C) or one image (H, W, C); for a
            model with several inputs a dict ``{input name: array}`` or a list in the
            model's input order, each with N rows.
        what: the argument's name, for messages.
        image_input: see ``input_spec``.

    Returns:
        ``(pixels float32 (N, H, W, C), side)``: ``side`` is None for a one-input model,
        else ``{name: float32 array (N, ...)}`` for every other input.

    Raises:
        ValueError: wrong rank, channels or size, missing inputs or row counts that
            differ, naming what was expected and what came.
    """
    spec = input_spec(model, image_input)
    if spec.structure == "single" and not isinstance(images, (dict, list, tuple)):
        return _checked_pixels(model, spec, images, what), None
    held = held_arrays(model)
    if held is not None and not isinstance(images, (dict, list, tuple)):
        pixels = _checked_pixels(model, spec, images, what)  # the other inputs are held
        return pixels, {name: np.repeat(value, len(pixels), axis=0) for name, value in held.items()}
    if spec.structure == "single" and isinstance(images, dict) and len(images) == 1:
        return _checked_pixels(model, spec, next(iter(images.values())), what), None
    given = _by_name(spec, images, what, model)
    pixels = _checked_pixels(model, spec, given[spec.image], f"{what}[{spec.image!r}]")
    side = {}
    for name, shape in zip(spec.names, spec.shapes):
        if name == spec.image:
            continue
        value = np.asarray(_numpy(given[name]), dtype=np.float32)
        if value.ndim != len(shape) + 1 or len(value) != len(pixels):
            raise ValueError(
                f"{what}[{name!r}] must have shape {(len(pixels), *shape)} (one row per image); "
                f"got {value.shape}."
            )
        side[name] = value
    return pixels, side


def _by_name(spec, images, what, model):
    """The user's arrays as ``{input name: array}``."""
    shown = dict(zip(spec.names, spec.shapes))
    if isinstance(images, dict):
        missing = [name for name in spec.names if name not in images]
        if missing:
            raise ValueError(
                f"{what} has no {missing}: model {model.name!r} takes the inputs {shown} "
                f"(given: {sorted(images)})."
            )
        return images
    if isinstance(images, (list, tuple)) and len(images) == len(spec.names):
        return dict(zip(spec.names, images))
    raise ValueError(
        f"Model {model.name!r} takes several inputs {shown}: pass {what} as a dict "
        "{input name: array} or a list in that order, each with one row per image."
    )


def _numpy(values):
    return values.numpy() if isinstance(values, tf.Tensor) else values


def _checked_pixels(model, spec, images, what):
    """The image batch as float32 (N, H, W, C), checked against the image input."""
    expected = tuple(spec.shapes[spec.names.index(spec.image)])
    images = _numpy(images)
    array = np.asarray(images, dtype=np.float32)
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


def check_images(model, images, what="images", image_input=None):
    """Validate a batch for a one-input ``model``; return it as float32 (N, H, W, C).

    A single image (H, W, C) becomes a batch of one. For models with several inputs use
    ``split_images``.

    Raises:
        ValueError: wrong rank, channels or size, naming expected and received shapes.
    """
    pixels, side = split_images(model, images, what, image_input)
    if side:
        raise ValueError(
            f"{what}: model {model.name!r} takes inputs {sorted(side)} besides the image."
        )
    return pixels


def take_rows(side, rows):
    """The side inputs of the images ``rows`` (numpy), or None for a one-input model."""
    return None if side is None else {name: value[rows] for name, value in side.items()}


def side_constants(side):
    """The side inputs as tensors (None stays None), to pass to a compiled function."""
    return None if side is None else {name: tf.constant(value) for name, value in side.items()}


def held_values(model, images, side_inputs, what, image_input=None):
    """The side inputs to hold for an optimization in input space, one row each.

    Args:
        model: the model.
        images: images the user gave (their side inputs' mean is held), or None.
        side_inputs: ``{input name: value}`` given by the user (one row), or None.
        what: the function's name, for messages.
        image_input: see ``input_spec``.

    Returns:
        ``{name: float32 (1, ...)}``, or None for a one-input model.

    Raises:
        ValueError: for a model with several inputs and no values to hold.
    """
    spec = input_spec(model, image_input)
    if spec.structure == "single":
        return None
    if side_inputs is not None:
        given = {name: np.asarray(value, np.float32) for name, value in side_inputs.items()}
        shapes = dict(zip(spec.names, spec.shapes))
        missing = [n for n in spec.names if n != spec.image and n not in given]
        if missing:
            raise ValueError(f"{what}: side_inputs has no {missing}; the model takes {shapes}.")
        return {n: v.reshape(1, *shapes[n]) for n, v in given.items() if n != spec.image}
    if isinstance(images, (dict, list, tuple)):
        _, side = split_images(model, images, what, image_input)
        return {name: value.mean(axis=0, keepdims=True) for name, value in side.items()}
    raise ValueError(
        f"{what}: model {model.name!r} takes inputs {[n for n in spec.names if n != spec.image]} "
        "besides the image; give side_inputs={name: value} to hold them at (the callback "
        "holds them at the probes' mean), or images with them."
    )


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

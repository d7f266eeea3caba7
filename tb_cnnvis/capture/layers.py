"""Find layers by name or ``"outer/inner"`` path, in every kind of Keras model.

Sequential and functional models are read from their graph: layers in model order, nested
models (a ``keras.applications`` base inside a classifier) flattened under their own
name, output shapes from the layers' symbolic outputs. A subclassed model (a
``keras.Model`` with its own ``call``) has no graph to read: its layers come from one
recorded call on an input of its build shape (``intercept.trace_calls``), in call order,
with the shapes they produced; custom layers holding layers of their own (blocks) are
searched too.

Example:
    >>> conv_layers(model)
    ['conv1', 'conv2', 'vgg16/block5_conv3']
    >>> resolve_layer(model, "block5_conv3").path
    'vgg16/block5_conv3'
"""

import re
from typing import NamedTuple

import keras
import numpy as np


class LayerRef(NamedTuple):
    """A resolved layer: its path, the layer object, its index in model order, its output shape."""

    path: str
    layer: keras.layers.Layer
    index: int
    output_shape: tuple


def is_graph_model(layer):
    """True for models whose graph can be read (Sequential and functional)."""
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth")
    )


def sublayers(layer):
    """The layers ``layer`` tracks directly (a model's layers, a block's attributes)."""
    if isinstance(layer, keras.Model):
        found = layer.layers
    else:
        found = layer._flatten_layers(include_self=False, recursive=False)
    return [item for item in found if not isinstance(item, keras.layers.InputLayer)]


def iter_layers(model, prefix=""):
    """Yield ``(path, layer)`` for every layer of a graph model, recursing into nested models.

    A nested model is yielded itself and then its layers, with paths ``"outer/inner"``.
    Input layers are skipped.
    """
    for layer in sublayers(model):
        path = prefix + layer.name
        yield path, layer
        if is_graph_model(layer):
            yield from iter_layers(layer, prefix=path + "/")


def all_layers(model, prefix=""):
    """Yield ``(path, layer)`` for every layer ``model`` holds at any depth (blocks too)."""
    for layer in sublayers(model):
        path = prefix + layer.name
        yield path, layer
        yield from all_layers(layer, prefix=path + "/")


def _output_shape(layer):
    """The layer's output shape without the batch dimension, or None if unknown."""
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(output, (list, tuple)):
        return None
    return tuple(output.shape[1:])


def layer_refs(model):
    """All layers of ``model`` as ``LayerRef`` in model order (nested models flattened).

    For a subclassed model: the layers its ``call`` used, in call order (recorded once
    per model).
    """
    require_built(model)
    by_path = dict(all_layers(model))
    if is_graph_model(model):
        found = [(path, _output_shape(layer)) for path, layer in iter_layers(model)]
        if any(_is_block(layer) for _, layer in iter_layers(model)):
            found = _with_block_layers(model, found)
    else:
        from tb_cnnvis.capture import intercept

        found = [item for item in intercept.structure(model).layers if item[0] in by_path]
    return [LayerRef(path, by_path[path], i, shape) for i, (path, shape) in enumerate(found)]


def _is_block(layer):
    """A layer of a graph model that holds layers of its own but is no graph model itself."""
    return not is_graph_model(layer) and bool(sublayers(layer))


def _with_block_layers(model, found):
    """``found`` with the layers inside blocks inserted after each block, in call order."""
    from tb_cnnvis.capture import intercept

    recorded = intercept.structure(model).layers
    listed = {path for path, _ in found}
    result = []
    for path, shape in found:
        result.append((path, shape))
        inner = [item for item in recorded if item[0].startswith(path + "/")]
        result.extend(item for item in inner if item[0] not in listed)
    return result


def conv_layers(model):
    """Paths of the layers with a 4-D output (batch, h, w, channels), in model order.

    Nested models are searched, but the nested model itself is not listed.

    Args:
        model: a built Keras 3 model (Sequential, functional or subclassed).

    Returns:
        A list of layer names, or ``"outer/inner"`` paths for layers of nested models.

    Example:
        >>> cv.conv_layers(model)
        ['conv2d', 'max_pooling2d', 'conv2d_1']
    """
    return [ref.path for ref in layer_refs(model) if is_conv_like(ref)]


def is_conv_like(ref):
    """True for a layer (not a nested model) with a (h, w, channels) output that computes
    features: preprocessing and augmentation layers (``is_preprocessing``) are left out."""
    return (
        ref.output_shape is not None
        and len(ref.output_shape) == 3
        and not isinstance(ref.layer, keras.Model)
        and not is_preprocessing(ref.layer)
    )


_PREPROCESSING_PACKAGE = "keras.src.layers.preprocessing"


def is_preprocessing(layer):
    """True for Keras's preprocessing and augmentation layers (``Random*``, ``Rescaling``,
    ``Normalization``, ``Resizing``, ``CenterCrop``, ...) and their subclasses.

    They transform the image rather than compute features (and the augmentations are
    identities in inference mode, where every trace runs them), so no view is shown of
    them. Keras defines them all in one package, which their classes' modules name.
    """
    return any(
        (cls.__module__ or "").startswith(_PREPROCESSING_PACKAGE) for cls in type(layer).__mro__
    )


_CONVOLUTIONS = (
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "SeparableConv2D",
    "DepthwiseConv2D",
    "Conv2DTranspose",
)


def is_convolution(ref):
    """True for a convolution layer (Conv2D, SeparableConv2D, ...) with a known output."""
    classes = tuple(getattr(keras.layers, name) for name in _CONVOLUTIONS)
    return isinstance(ref.layer, classes) and ref.output_shape is not None


def resolve_layer(model, name, *, need_4d=True):
    """Find a layer by name, by ``"outer/inner"`` path, or by the name of a unique nested layer.

    Args:
        model: a built Keras model.
        name: a layer name or path; an int is taken as an index into ``conv_layers(model)``.
        need_4d: whether the layer must have a (batch, h, w, channels) output.

    Returns:
        A ``LayerRef``.

    Raises:
        ValueError: if no layer matches, or the layer has no 4-D output when one is needed;
            the message lists the layers that would work.
    """
    refs = layer_refs(model)
    conv = [ref for ref in refs if is_conv_like(ref)]
    if isinstance(name, (int, np.integer)):
        if not -len(conv) <= name < len(conv):
            raise ValueError(
                f"Layer index {name} is out of range: the model has {len(conv)} layers with 4-D outputs: {[r.path for r in conv]}"
            )
        return conv[name]
    if isinstance(name, keras.layers.Layer):
        matches = [ref for ref in refs if ref.layer is name]
    else:
        matches = [ref for ref in refs if ref.path == name]
        if not matches:
            matches = [ref for ref in refs if ref.path.rsplit("/", 1)[-1] == name]
    if len(matches) != 1:
        what = "is ambiguous" if matches else "was not found"
        hint = [ref.path for ref in (matches or conv)]
        raise ValueError(
            f"Layer {name!r} {what} in model {model.name!r}. "
            f"{'Candidates' if matches else 'Layers with 4-D outputs'}: {hint}"
        )
    ref = matches[0]
    if need_4d and is_preprocessing(ref.layer):
        raise ValueError(
            f"Layer {ref.path!r} ({type(ref.layer).__name__}) is a preprocessing or "
            "augmentation layer, not a convolutional one: it transforms the input and is run "
            f"in inference mode. Layers with 4-D outputs: {[r.path for r in conv]}"
        )
    if need_4d and not is_conv_like(ref):
        raise ValueError(
            f"Layer {ref.path!r} ({type(ref.layer).__name__}) has output shape "
            f"{ref.output_shape}, but a (height, width, channels) output is needed here. "
            f"Layers with 4-D outputs: {[r.path for r in conv]}"
        )
    return ref


def select_layers(model, spec, *, need_4d=True):
    """Resolve ``spec`` (None, a name, a regex string, or a list of names) to ``LayerRef``s.

    None means every layer with a 4-D output. A string that names no layer is tried as a
    regular expression matched against full paths.
    """
    if spec is None:
        return [ref for ref in layer_refs(model) if is_conv_like(ref)]
    if isinstance(spec, (str, int, keras.layers.Layer)):
        try:
            return [resolve_layer(model, spec, need_4d=need_4d)]
        except ValueError as error:
            if not isinstance(spec, str):
                raise
            try:
                pattern = re.compile(spec)
            except re.error:
                raise error from None
            found = [
                ref
                for ref in layer_refs(model)
                if pattern.fullmatch(ref.path) and (is_conv_like(ref) or not need_4d)
            ]
            if not found:
                raise error from None
            return found
    refs = [resolve_layer(model, item, need_4d=need_4d) for item in spec]
    seen = {}
    for ref in refs:
        seen.setdefault(ref.path, ref)
    return list(seen.values())


def require_tensorflow_backend():
    """Raise ``ValueError`` unless Keras runs on TensorFlow, the backend tb-cnnvis computes with.

    On the JAX or PyTorch backend a model's layers make tensors TensorFlow cannot trace;
    every function and the callback's ``set_model`` check this first (one string compare).

    Raises:
        ValueError: naming the backend found and how to choose TensorFlow.

    Example:
        >>> require_tensorflow_backend()  # with KERAS_BACKEND=jax
        Traceback (most recent call last):
        ValueError: tb-cnnvis computes with TensorFlow, but Keras runs on the 'jax' backend...
    """
    found = keras.backend.backend()
    if found != "tensorflow":
        raise ValueError(
            f"tb-cnnvis computes with TensorFlow, but Keras runs on the {found!r} backend. "
            "Set KERAS_BACKEND=tensorflow in the environment before Keras is imported (or "
            '"backend": "tensorflow" in ~/.keras/keras.json).'
        )


def require_built(model):
    """Raise ``ValueError`` in the user's terms if ``model`` is not built, or is channels-first.

    Every method reads images and feature maps as (batch, height, width, channels); a
    model whose layers take ``data_format="channels_first"`` is refused here, the first
    thing every function checks, rather than misread later. Before that, Keras must run
    on TensorFlow (``require_tensorflow_backend``).
    """
    require_tensorflow_backend()
    if not getattr(model, "built", False) or not model.layers:
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} is not built. Build it first, e.g. by "
            "giving the first layer an input shape (keras.Input((h, w, c))), by calling "
            "model.build((None, h, w, c)), or by calling the model on a batch of images."
        )
    first = next(
        (path for path, layer in all_layers(model) if _data_format(layer) == "channels_first"),
        None,
    )
    if first is not None:
        raise ValueError(
            f"Layer {first!r} of model {model.name!r} uses data_format='channels_first'; "
            "tb-cnnvis reads images and feature maps as (batch, height, width, channels). "
            "Build the model channels-last (data_format='channels_last', the Keras default) "
            "and give it (N, H, W, C) images."
        )


def _data_format(layer):
    """A layer's ``data_format`` ("channels_last" / "channels_first"), or None."""
    value = getattr(layer, "data_format", None)
    return value if isinstance(value, str) else None

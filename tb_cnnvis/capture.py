"""Find layers (also inside nested models) and run a model's graph with taps and rules.

Keras tools usually build ``keras.Model(model.inputs, layer.output)``; that fails with
"Graph disconnected" for a layer inside a nested model (a ``keras.applications`` base in a
classifier), and modifying activations means cloning the model. Instead this module walks
the model's own graph, node by node, with the real input tensors (``run_graph``): every
layer's output can be tapped under its path ``"outer/inner"``, ReLUs can follow another
backward rule, and the final softmax can be skipped to read logits, all without touching
the user's model. Compiled functions built on top of it are cached per model.

Example:
    >>> conv_layers(model)
    ['conv1', 'conv2', 'vgg16/block5_conv3']
    >>> outputs, taps = run_graph(model, images, taps=["conv2"], logits=True)
"""

import contextlib
import re
import warnings
import weakref
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

_RELU_ARGS_DEFAULT = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}


class LayerRef(NamedTuple):
    """A resolved layer: its path, the layer object, its index in model order, its output shape."""

    path: str
    layer: keras.layers.Layer
    index: int
    output_shape: tuple


def _is_graph_model(layer):
    """True for models whose graph we can walk (Sequential and functional)."""
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth")
    )


def iter_layers(model, prefix=""):
    """Yield ``(path, layer)`` for every layer in model order, recursing into nested models.

    A nested model is yielded itself and then its layers, with paths ``"outer/inner"``.
    Input layers are skipped.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = prefix + layer.name
        yield path, layer
        if _is_graph_model(layer):
            yield from iter_layers(layer, prefix=path + "/")


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
    """All layers of ``model`` as ``LayerRef`` in model order (nested models flattened)."""
    _require_built(model)
    return [
        LayerRef(path, layer, index, _output_shape(layer))
        for index, (path, layer) in enumerate(iter_layers(model))
    ]


def conv_layers(model):
    """Paths of the layers with a 4-D output (batch, h, w, channels), in model order.

    Nested models are searched, but the nested model itself is not listed.

    Args:
        model: a built Keras 3 model.

    Returns:
        A list of layer names, or ``"outer/inner"`` paths for layers of nested models.

    Example:
        >>> cv.conv_layers(model)
        ['conv2d', 'max_pooling2d', 'conv2d_1']
    """
    return [ref.path for ref in layer_refs(model) if _is_conv_like(ref)]


def _is_conv_like(ref):
    return (
        ref.output_shape is not None
        and len(ref.output_shape) == 3
        and not isinstance(ref.layer, keras.Model)
    )


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
    conv = [ref for ref in refs if _is_conv_like(ref)]
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
    if need_4d and not _is_conv_like(ref):
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
        return [ref for ref in layer_refs(model) if _is_conv_like(ref)]
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
                if pattern.fullmatch(ref.path) and (_is_conv_like(ref) or not need_4d)
            ]
            if not found:
                raise error from None
            return found
    refs = [resolve_layer(model, item, need_4d=need_4d) for item in spec]
    seen = {}
    for ref in refs:
        seen.setdefault(ref.path, ref)
    return list(seen.values())


def _require_built(model):
    if not getattr(model, "built", False) or not model.layers:
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} is not built. Build it first, e.g. by "
            "giving the first layer an input shape (keras.Input((h, w, c))) or by calling "
            "model.build((None, h, w, c))."
        )


def input_shape(model):
    """The model's input shape without the batch dimension (entries may be None)."""
    _require_built(model)
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(f"Model {model.name!r} has no known inputs; build it on an input shape.")
    if len(inputs) != 1:
        raise ValueError(
            f"tb-cnnvis supports models with one image input; {model.name!r} has {len(inputs)}."
        )
    return tuple(inputs[0].shape[1:])


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


# ---------------------------------------------------------------------------------------
# Running the graph


def relu_role(layer):
    """How ``layer`` applies a ReLU: "layer" (ReLU / Activation('relu')), "activation"
    (a layer with ``activation=relu``), or None."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        plain = all(
            float(config.get(k) or 0.0) == float(v or 0.0) for k, v in _RELU_ARGS_DEFAULT.items()
        )
        return "layer" if plain else None
    activation = getattr(layer, "activation", None)
    if activation is keras.activations.relu:
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def _is_softmax(layer):
    if isinstance(layer, keras.layers.Softmax):
        return "layer"
    if getattr(layer, "activation", None) is keras.activations.softmax:
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def _final_layer(model):
    """The layer that produces the model's (first) output, looking inside nested models."""
    if isinstance(model, keras.Sequential):
        layer = [lay for lay in model.layers if not isinstance(lay, keras.layers.InputLayer)][-1]
    else:
        output_ids = {id(t) for t in model.outputs[:1]}
        nodes = model._nodes_by_depth.get(0, [])
        layer = next(
            (n.operation for n in nodes if any(id(t) in output_ids for t in n.outputs)), None
        )
    return _final_layer(layer) if layer is not None and _is_graph_model(layer) else layer


def final_activation(model):
    """How the model's output is squashed: "softmax", "sigmoid" or "linear" (anything else).

    ``run_graph(..., logits=True)`` skips a final softmax; with "softmax" the model's
    outputs are ``softmax(logits)``, with "linear" they are the logits themselves.
    """
    _require_built(model)
    layer = _final_layer(model)
    if layer is None:
        return "linear"
    if _is_softmax(layer):
        return "softmax"
    if getattr(layer, "activation", None) is keras.activations.sigmoid:
        return "sigmoid"
    return "linear"


@contextlib.contextmanager
def _linear_activation(layer):
    """Temporarily make ``layer.activation`` linear (only while a graph is traced)."""
    original = layer.activation
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = original


def _call(layer, args, kwargs):
    if getattr(layer, "_call_has_training_arg", False):
        kwargs = {**kwargs, "training": False}
    return layer(*args, **kwargs)


class _Walk:
    """State of one ``run_graph`` walk."""

    def __init__(self, taps, relu_fn, stop_at):
        self.taps = set(taps)
        self.found = {}
        self.relu_fn = relu_fn
        self.stop_at = set(stop_at or ())

    def done(self):
        return bool(self.stop_at) and self.stop_at <= set(self.found)

    def apply(self, path, layer, args, kwargs, final):
        if _is_graph_model(layer):
            inner = args[0] if args else next(iter(kwargs.values()))
            return self.model(layer, inner, prefix=path + "/", final=final)
        role = relu_role(layer) if self.relu_fn is not None else None
        soft = _is_softmax(layer) if final else None
        if soft == "layer":
            out = args[0]
        elif role == "layer":
            out = self.relu_fn(args[0])
        elif role == "activation" or soft == "activation":
            with _linear_activation(layer):
                out = _call(layer, args, kwargs)
            if role == "activation":
                out = self.relu_fn(out)
        else:
            out = _call(layer, args, kwargs)
        if path in self.taps:
            self.found[path] = out
        return out

    def model(self, model, inputs, prefix="", final=False):
        if isinstance(model, keras.Sequential):
            layers = [
                layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
            ]
            x = inputs
            for i, layer in enumerate(layers):
                x = self.apply(prefix + layer.name, layer, (x,), {}, final and i == len(layers) - 1)
                if self.done():
                    break
            return x
        tensors = {id(model.inputs[0]): inputs}
        final_ids = {id(t) for t in model.outputs} if final else set()
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if not node.operation or node.is_input:
                    continue
                if any(id(t) not in tensors for t in node.input_tensors):
                    continue
                args, kwargs = node.arguments.fill_in(tensors)
                is_final = any(id(t) in final_ids for t in node.outputs)
                layer = node.operation
                out = self.apply(prefix + layer.name, layer, args, kwargs, is_final)
                for ref, value in zip(node.outputs, tf.nest.flatten(out)):
                    tensors[id(ref)] = value
                if self.done():
                    return None
        outputs = [tensors.get(id(t)) for t in model.outputs]
        return outputs[0] if len(outputs) == 1 else outputs


def run_graph(model, images, *, taps=(), relu_fn=None, logits=False, stop_at=None):
    """Run ``model`` on ``images`` node by node, tapping layer outputs.

    Args:
        model: a built Sequential or functional Keras model.
        images: a float32 tensor (N, H, W, C).
        taps: layer paths whose outputs to return.
        relu_fn: if given, every ReLU (layer, ``Activation('relu')`` or ``activation=relu``)
            is replaced by ``relu_fn`` (used for the deconvnet / guided backprop rules).
        logits: skip a final softmax, returning the class scores before it.
        stop_at: layer paths after which the walk may stop (returns ``None`` as output).

    Returns:
        ``(output, {path: tensor})``.
    """
    walk = _Walk(taps, relu_fn, stop_at)
    output = walk.model(model, images, final=logits)
    missing = walk.taps - set(walk.found)
    if missing:
        raise ValueError(f"Layers {sorted(missing)} were not reached while running {model.name!r}.")
    return output, walk.found


# ---------------------------------------------------------------------------------------
# Compiled-function cache


class _Counted:
    """A Python function that counts its traces.

    A callable object rather than a closure: TensorFlow's "frequent retracing" warning
    groups functions by code object, and every cached function tracing once would trip it.
    """

    def __init__(self, python_fn, counters, key):
        self._python_fn = python_fn
        self._counters = counters
        self._key = key

    def __call__(self, *args, **kwargs):
        self._counters[self._key] += 1
        return self._python_fn(*args, **kwargs)


class CompiledCache:
    """``tf.function``s built once per (model, key) and reused; counts traces for tests."""

    def __init__(self):
        self._by_model = weakref.WeakKeyDictionary()
        self.traces = {}

    def get(self, model, key, build):
        """Return the function for ``(model, key)``, making it with ``build()`` the first time.

        ``build`` returns a Python function; it is wrapped in ``tf.function`` with a trace
        counter (``self.traces[(id(model), key)]``). The function should reach the model
        through ``weakref.ref(model)``: a strong reference would keep every model ever
        explained alive, since the cache maps the model to the function.
        """
        if model not in self._by_model:
            # A new model may reuse the id of a collected one: forget that one's counters.
            for stale in [k for k in self.traces if k[0] == id(model)]:
                del self.traces[stale]
        functions = self._by_model.setdefault(model, {})
        if key not in functions:
            counter_key = (id(model), key)
            self.traces[counter_key] = 0
            counted = _Counted(build(), self.traces, counter_key)
            functions[key] = tf.function(counted, reduce_retracing=True)
        return functions[key]

    def trace_count(self, model, key=None):
        """Traces so far for ``model`` (all keys, or one key)."""
        return sum(
            n
            for (mid, k), n in self.traces.items()
            if mid == id(model) and (key is None or k == key)
        )


CACHE = CompiledCache()
"""The process-wide cache used by the algorithms."""


def total_traces(model):
    """How many times compiled functions for ``model`` were traced (for no-retracing tests)."""
    return CACHE.trace_count(model)


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

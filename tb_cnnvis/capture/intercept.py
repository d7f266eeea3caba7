"""Run a model's own ``call`` with some of its layers intercepted, or record its calls.

Keras tools usually build ``keras.Model(model.inputs, layer.output)``: that fails with
"Graph disconnected" for a layer inside a nested model, cannot work for a subclassed model
(it has no graph), and changing activations means cloning the model. Here the model runs
its own ``call``; for the duration of that one call (normally while a ``tf.function``
traces) every layer it holds has its ``call`` wrapped on the instance, and the wrappers

- keep the outputs of the layers asked for (*taps*) under their paths ``"outer/inner"``;
- pass ReLUs through another backward rule (``relu_fn``: ``activation=relu`` arguments,
  ``ReLU`` and ``Activation("relu")`` layers);
- skip the final softmax of the model's outputs, to read logits;
- stop the call as soon as every layer in ``stop_at`` has run, so the rest of the model
  is neither computed nor traced.

The wrappers are removed in ``finally`` when the call returns: the user's model is not
changed. ``trace_calls`` records the calls instead (which layer ran on which tensors, in
call order, nested calls as children): the structure of subclassed models and receptive
fields are read from it.

Example:
    >>> outputs, taps = run_graph(model, images, taps=["conv2"], logits=True)
    >>> shapes = trace_calls(model, (1, 64, 64, 3), lambda calls, inputs, outputs: len(calls))
"""

import contextlib

import keras
import tensorflow as tf

from tb_cnnvis.capture.layers import all_layers
from tb_cnnvis.capture.roles import output_layers, relu_role, softmax_role


class _Stop(BaseException):
    """Ends a call once every layer in ``stop_at`` has run (not an ``Exception``: Keras's
    own handlers, which catch ``Exception`` to rewrite messages, let it pass)."""


class Call:
    """One layer call seen by ``trace_calls``.

    Attributes:
        path: the layer's path.
        layer: the layer.
        inputs: the tensors it was called on (flattened arguments).
        outputs: the tensors it returned (flattened).
        children: the calls made while it ran (for models and blocks).
    """

    __slots__ = ("children", "inputs", "layer", "outputs", "path")

    def __init__(self, path, layer, inputs):
        self.path, self.layer, self.inputs = path, layer, inputs
        self.outputs, self.children = [], []


class _Session:
    """What the wrappers of one call share."""

    def __init__(self, taps=(), relu_fn=None, stop_at=(), softmax_layers=(), record=False):
        self.taps = set(taps)
        self.found = {}
        self.relu_fn = relu_fn
        self.stop_at = set(stop_at or ())
        self.softmax_ids = {id(layer) for layer in softmax_layers}
        self.record = record
        self.calls = []
        self.stack = []

    def wrap(self, path, layer, original):
        """The replacement of ``layer.call``."""
        relu = relu_role(layer) if self.relu_fn is not None else None
        soft = softmax_role(layer) if id(layer) in self.softmax_ids else None

        def call(*args, **kwargs):
            entry = self._enter(path, layer, args, kwargs) if self.record else None
            try:
                if soft == "layer":
                    out = args[0]
                elif relu == "layer":
                    out = self.relu_fn(args[0])
                elif relu == "activation" or soft == "activation":
                    out = _with_linear_activation(layer, original, args, kwargs)
                    if relu == "activation":
                        out = self.relu_fn(out)
                else:
                    out = original(*args, **kwargs)
            finally:
                if entry is not None:
                    self.stack.pop()
            if entry is not None:
                entry.outputs = [t for t in tf.nest.flatten(out) if tf.is_tensor(t)]
            if path in self.taps:
                self.found[path] = out
            if self.stop_at and self.stop_at <= set(self.found):
                raise _Stop
            return out

        return call

    def _enter(self, path, layer, args, kwargs):
        """Start recording one call (as a child of the call that is running)."""
        flat = [t for t in tf.nest.flatten((args, kwargs)) if tf.is_tensor(t)]
        entry = Call(path, layer, flat)
        (self.stack[-1].children if self.stack else []).append(entry)
        self.calls.append(entry)
        self.stack.append(entry)
        return entry


def _with_linear_activation(layer, original, args, kwargs):
    """``original(*args, **kwargs)`` with ``layer.activation`` linear meanwhile."""
    activation = layer.activation
    layer.activation = keras.activations.linear
    try:
        return original(*args, **kwargs)
    finally:
        layer.activation = activation


def _has_input_spec_setter(layer):
    """True for models whose ``input_spec`` is derived from their inputs (functional)."""
    spec = getattr(type(layer), "input_spec", None)
    return isinstance(spec, property) and spec.fset is not None


@contextlib.contextmanager
def _intercepted(model, session):
    """Wrap the ``call`` of every layer of ``model`` (at any depth) while the block runs.

    Functional models also drop their input-shape check meanwhile: their inputs' fixed
    (height, width) would refuse a smaller canvas that their convolutions can take (the
    layers' own checks stay; the images were checked by ``capture.inputs``).
    """
    patched, relaxed = [], []
    try:
        for layer in [model, *(layer for _, layer in all_layers(model))]:
            if _has_input_spec_setter(layer) and not any(layer is r for r, _ in relaxed):
                relaxed.append((layer, layer.__dict__.get("_manual_input_spec", _MISSING)))
                object.__setattr__(layer, "_manual_input_spec", None)
        for path, layer in all_layers(model):
            own = layer.__dict__.get("call", _MISSING)
            original = layer.call
            object.__setattr__(layer, "call", session.wrap(path, layer, original))
            patched.append((layer, own))
        yield
    finally:
        for layer, own in reversed(patched):
            if own is _MISSING:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own)
        for layer, own in reversed(relaxed):
            if own is _MISSING:
                object.__delattr__(layer, "_manual_input_spec")
            else:
                object.__setattr__(layer, "_manual_input_spec", own)


_MISSING = object()


def _call_model(model, inputs, session):
    """Run the model on ``inputs`` in inference mode under ``session``; None if stopped."""
    with _intercepted(model, session):
        try:
            return model(inputs, training=False)
        except _Stop:
            return None


def run_graph(model, images, *, taps=(), relu_fn=None, logits=False, stop_at=None):
    """Run ``model`` on ``images`` through its own ``call``, tapping layer outputs.

    Args:
        model: a built Keras model (Sequential, functional or subclassed).
        images: a float32 tensor (N, H, W, C) (or the model's input structure).
        taps: layer paths whose outputs to return.
        relu_fn: if given, every ReLU (layer, ``Activation('relu')`` or ``activation=relu``)
            is replaced by ``relu_fn`` (used for the deconvnet / guided backprop rules).
        logits: skip the softmax that ends each output, returning the scores before it.
        stop_at: layer paths after which the call may stop (the output is then ``None``).

    Returns:
        ``(output, {path: tensor})``: the model's output (as ``call`` returns it).

    Raises:
        ValueError: if a tapped layer did not run.
    """
    softmax = [layer for layer in output_layers(model) if layer is not None] if logits else ()
    session = _Session(taps, relu_fn, stop_at, softmax)
    output = _call_model(model, images, session)
    missing = session.taps - set(session.found)
    if missing:
        raise ValueError(f"Layers {sorted(missing)} were not reached while running {model.name!r}.")
    return output, session.found


def trace_calls(model, shape, visit, stop_at=()):
    """Record one call of ``model`` on a symbolic input and read it with ``visit``.

    The model runs once inside a ``tf.function`` trace on a float32 input of ``shape``
    (with batch dimension); nothing is computed. ``visit(calls, inputs, outputs)`` is
    called during the trace with every ``Call`` in call order (parents before their
    children), the input tensor (in a list) and the model's flattened outputs; the symbolic
    tensors live only while it runs, so it must return plain data.

    Returns:
        What ``visit`` returned.
    """
    result = []

    def traced(x):
        session = _Session(taps=stop_at, stop_at=stop_at, record=True)
        output = _call_model(model, x, session)
        flat = [t for t in tf.nest.flatten(output) if tf.is_tensor(t)]
        result.append(visit(session.calls, [x], flat))
        return flat

    tf.function(traced).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    return result[0]

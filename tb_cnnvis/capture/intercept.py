"""Run a model's own ``call`` with some of its layers intercepted, or record its calls.

Keras tools usually build ``keras.Model(model.inputs, layer.output)``: that fails with
"Graph disconnected" for a layer inside a nested model, cannot work for a subclassed model
(it has no graph), and changing activations means cloning the model. Here the model runs
its own ``call``; for the duration of that one call (normally while a ``tf.function``
traces) every layer it holds has its ``call`` wrapped on the instance, and the wrappers

- keep the outputs of the layers asked for (*taps*) under their paths ``"outer/inner"``;
- pass ReLUs through another backward rule (``relu_fn``: ``activation=relu`` arguments,
  ``ReLU`` and ``Activation("relu")`` layers, capped ones such as MobileNetV2's ``ReLU(6.)``
  and ``relu6`` as ``min(relu_fn(x), 6)``, and ``tf.nn.relu`` / ``keras.ops.relu`` /
  ``keras.activations.relu`` (and their ``relu6``) called by the model's own code: a
  subclassed ``call``, a custom layer, a ``keras.ops.relu`` node of a functional model; a
  ReLU written otherwise, e.g. ``tf.maximum(x, 0)``, keeps its ordinary gradient);
- skip the final softmax or sigmoid of the model's outputs, to read logits;
- stop the call as soon as every layer in ``stop_at`` has run, so the rest of the model
  is neither computed nor traced.

The wrappers are removed in ``finally`` when the call returns: the user's model is not
changed. ``trace_calls`` records the calls instead (which layer ran on which tensors, in
call order, nested calls as children): the structure of subclassed models and receptive
fields are read from it.

Example:
    >>> outputs, taps = run_graph(model, images, taps=["conv2"], logits=True)
    >>> trace_calls(model, lambda record: len(record.calls))
    12
"""

import contextlib
import weakref
from typing import NamedTuple

import keras
import tensorflow as tf

from tb_cnnvis.capture import held, inputs
from tb_cnnvis.capture.cache import NO_AUTOGRAPH
from tb_cnnvis.capture.layers import all_layers
from tb_cnnvis.capture.roles import output_layers, relu_cap, relu_role, squash_role


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

    def __init__(
        self, taps=(), relu_fn=None, stop_at=(), softmax_layers=(), record=False, on_tap=None
    ):
        self.taps = set(taps)
        self.found = {}
        self.on_tap = on_tap
        self.relu_fn = relu_fn
        self.stop_at = set(stop_at or ())
        self.softmax_ids = {id(layer) for layer in softmax_layers}
        self.record = record
        self.calls = []
        self.stack = []
        self.suspended = 0  # > 0 while Keras's own layers (or a rule) run: tf.nn.relu is plain

    def rule(self, x, cap=None):
        """``relu_fn(x)`` (capped at ``cap``), with ``tf.nn.relu`` plain meanwhile (rules may
        use it). The cap keeps its own gradient: none through a unit at the cap."""
        self.suspended += 1
        try:
            out = self.relu_fn(x)
        finally:
            self.suspended -= 1
        return out if cap is None else tf.minimum(out, tf.cast(cap, out.dtype))

    def wrap(self, path, layer, original):
        """The replacement of ``layer.call``."""
        relu = relu_role(layer) if self.relu_fn is not None else None
        cap = relu_cap(layer) if relu else None
        soft = squash_role(layer) if id(layer) in self.softmax_ids else None
        own = _is_keras_leaf(layer)

        def call(*args, **kwargs):
            entry = self._enter(path, layer, args, kwargs) if self.record else None
            self.suspended += own
            try:
                if soft == "layer":
                    out = args[0]
                elif relu == "layer":
                    out = self.rule(args[0], cap)
                elif relu == "activation" or soft == "activation":
                    out = _with_linear_activation(layer, original, args, kwargs)
                    if relu == "activation":
                        out = self.rule(out, cap)
                else:
                    out = original(*args, **kwargs)
            finally:
                self.suspended -= own
                if entry is not None:
                    self.stack.pop()
            if entry is not None:
                entry.outputs = [t for t in tf.nest.flatten(out) if tf.is_tensor(t)]
            if path in self.taps:
                self.found[path] = out
                if self.on_tap is not None:
                    self.on_tap(out)
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


def _is_keras_leaf(layer):
    """True for Keras's own layers other than models (their ``tf.nn.relu`` calls are theirs)."""
    return type(layer).__module__.startswith("keras.") and not isinstance(layer, keras.Model)


@contextlib.contextmanager
def _relu_calls(session):
    """While the block runs, ``tf.nn.relu`` and ``tf.nn.relu6`` called by the model's own
    code follow the rule (``relu6`` as ``min(rule(x), 6)``).

    ``keras.ops.relu`` / ``relu6`` and ``keras.activations.relu`` / ``relu6`` reach them on
    the TensorFlow backend, so this catches them too. Keras's own layers are left alone
    (``session.suspended``): their ReLUs are handled by the wrappers, or are not plain.
    """
    if session.relu_fn is None:
        yield
        return
    relu, relu6 = tf.nn.relu, tf.nn.relu6

    def follows(original, cap):
        def replacement(features, name=None):
            if session.suspended:
                return original(features, name=name)
            return session.rule(features, cap)

        return replacement

    tf.nn.relu, tf.nn.relu6 = follows(relu, None), follows(relu6, 6.0)
    try:
        yield
    finally:
        tf.nn.relu, tf.nn.relu6 = relu, relu6


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


def _call_model(model, values, session):
    """Run the model on ``values`` in inference mode under ``session``; None if stopped."""
    with _intercepted(model, session), _relu_calls(session):
        try:
            return model(values, training=False)
        except _Stop:
            return None


def run_graph(
    model, images, *, side=None, taps=(), relu_fn=None, logits=False, stop_at=None, on_tap=None
):
    """Run ``model`` on ``images`` through its own ``call``, tapping layer outputs.

    Args:
        model: a built Keras model (Sequential, functional or subclassed).
        images: a float32 tensor (N, H, W, C): the image input.
        side: ``{input name: tensor}`` for the model's other inputs (see
            ``inputs.split_images``), or None for a one-input model.
        taps: layer paths whose outputs to return.
        relu_fn: if given, every ReLU (layer, ``Activation('relu')`` or ``activation=relu``)
            is replaced by ``relu_fn`` (used for the deconvnet / guided backprop rules).
        logits: skip the softmax or sigmoid that ends each output, returning the scores
            before it (the logits).
        stop_at: layer paths after which the call may stop (the output is then ``None``).
        on_tap: called with each tapped output as soon as its layer returns, e.g. a
            tape's ``watch``: a gradient with respect to a layer's output then records
            (and differentiates) only the operations after it.

    Returns:
        ``(output, {path: tensor})``: the model's output (as ``call`` returns it).

    Raises:
        ValueError: if a tapped layer did not run.
    """
    softmax = [layer for layer in output_layers(model) if layer is not None] if logits else ()
    session = _Session(taps, relu_fn, stop_at, softmax, on_tap=on_tap)
    if side is None:
        side = held.held_side(model, tf.shape(images)[0])
    spec = inputs.input_spec_any(model) if side is None else _spec_for(model, side)
    output = _call_model(model, inputs.assemble(spec, images, side), session)
    missing = session.taps - set(session.found)
    if missing:
        raise ValueError(f"Layers {sorted(missing)} were not reached while running {model.name!r}.")
    return output, session.found


class Record(NamedTuple):
    """One recorded call of a model (valid only inside ``trace_calls``'s ``visit``).

    Attributes:
        calls: every ``Call`` in call order (parents before their children).
        image: the image input's symbolic tensor.
        outputs: the model's outputs, flattened (``tf.nest`` order).
        output_keys: a name per output in that order (dict keys, or positions).
    """

    calls: list
    image: object
    outputs: list
    output_keys: tuple


def _spec_for(model, side):
    """The model's ``InputSpec`` with the image input being the one not in ``side``."""
    spec = inputs.input_spec_any(model)
    image = [name for name in spec.names if name not in side]
    return spec._replace(image=image[0]) if len(image) == 1 else spec


def trace_calls(model, visit, image_size=None, stop_at=(), relu_fn=None):
    """Record one call of ``model`` on symbolic inputs and read it with ``visit``.

    The model runs once inside a ``tf.function`` trace on float32 inputs of its build
    shapes with a batch of one (the image input at ``image_size`` if given); nothing is
    computed. ``visit(record)`` is called during the trace with a ``Record``; the symbolic
    tensors live only while it runs, so it must return plain data. With ``stop_at`` (layer
    paths), the call stops once they have run: a canvas smaller than what the whole model
    takes can still reach an early layer. With ``relu_fn``, every ReLU follows it as in
    ``run_graph`` (e.g. to count the ReLUs that run).

    Returns:
        What ``visit`` returned.
    """
    spec, shapes = inputs.build_shapes(model, image_size)
    result = []

    def traced(*flat):
        session = _Session(taps=stop_at, relu_fn=relu_fn, stop_at=stop_at, record=True)
        values = dict(zip(spec.names, flat))
        image = values.pop(spec.image)
        output = _call_model(model, inputs.assemble(spec, image, values), session)
        flat_out = [t for t in tf.nest.flatten(output) if tf.is_tensor(t)]
        result.append(visit(Record(session.calls, image, flat_out, _keys(output))))
        return flat_out

    specs = [tf.TensorSpec(shapes[name], tf.float32) for name in spec.names]
    tf.function(traced, autograph=NO_AUTOGRAPH).get_concrete_function(*specs)
    return result[0]


def _keys(output):
    """A name per flattened output: dict keys (sorted, as ``tf.nest`` flattens), positions."""
    if isinstance(output, dict):
        return tuple(str(key) for key in sorted(output))
    if isinstance(output, (list, tuple)):
        return tuple(str(i) for i in range(len(tf.nest.flatten(output))))
    return ("output",)


class Structure(NamedTuple):
    """What one recorded call tells of a subclassed model.

    Attributes:
        layers: ``[(path, output shape without batch or None)]``, first call of each path,
            in call order.
        producers: per output, the path of the innermost layer call that returned it.
        output_keys: per output, its name.
        output_shapes: per output, its shape without the batch dimension.
    """

    layers: list
    producers: list
    output_keys: tuple
    output_shapes: tuple


_STRUCTURES = weakref.WeakKeyDictionary()


def structure(model):
    """The ``Structure`` of ``model`` from one recorded call (cached per model)."""
    if model not in _STRUCTURES:
        _STRUCTURES[model] = trace_calls(model, _read_structure)
    return _STRUCTURES[model]


def _read_structure(record):
    """A ``trace_calls`` visitor that reads a ``Structure``."""
    layers = {}
    for call in record.calls:
        if call.path not in layers:
            out = call.outputs
            layers[call.path] = tuple(out[0].shape[1:]) if len(out) == 1 else None
    producers = []
    for output in record.outputs:
        leaves = [c for c in record.calls if not c.children and any(t is output for t in c.outputs)]
        producers.append(leaves[-1].path if leaves else None)
    shapes = tuple(tuple(t.shape[1:]) for t in record.outputs)
    return Structure(list(layers.items()), producers, record.output_keys, shapes)

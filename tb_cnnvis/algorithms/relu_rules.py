"""ReLUs whose gradient follows another rule: deconvnet, guided backpropagation, rescue.

Forward each is ``max(x, 0)``; backward each passes the incoming gradient ``dy`` its own
way (``RULES``). They replace the model's ReLUs in our traces (``capture.run_graph``'s
``relu_fn``); the user's model is never modified.

Why not ``tf.custom_gradient``: inside a compiled function it registers a new gradient
function, under a fresh name, in TensorFlow's global gradient registry at every trace, and
nothing ever removes it. The function holds the traced graph, so every projection or
filter-pattern function we compiled stayed in memory for the life of the process with
its whole graph (a TensorBoard serving explore requests, a notebook fitting one model
after another). Here each rule's gradient is registered once, at import, under a fixed
name, and the forward pass records the same rule on the gradient tape itself (as
``tf.custom_gradient`` does), so both a ``GradientTape`` and a symbolic gradient of a
compiled function that holds the ReLU apply it.

Example:
    >>> y = relu(x, "guided")                          # relu(dy) * (x > 0) backward
    >>> y = relu(x, "rescue", active=step < 20)        # redirected while step < 20
"""

import contextlib

import tensorflow as tf
from tensorflow.python.eager import record  # the tape's record_operation (private API)
from tensorflow.python.framework import ops


def _deconvnet(x, upstream, active):
    """``relu(dy)``, whatever the forward pass did (Zeiler & Fergus 2014)."""
    return tf.nn.relu(upstream)


def _guided(x, upstream, active):
    """``relu(dy) * (x > 0)`` (Springenberg et al. 2015)."""
    return tf.nn.relu(upstream) * tf.cast(x > 0, upstream.dtype)


def _rescue(x, upstream, active):
    """While ``active``: for each image whose ordinary ReLU gradient is zero everywhere here,
    ``dy`` also passes the units that are off where it is positive (where it would push
    them up: Lucid's ``redirected_relu_grad``); other images, and every image once
    ``active`` is false, get the ordinary gradient."""

    def redirect():  # where no image is stuck, this is the plain gradient
        plain = tf.raw_ops.ReluGrad(gradients=upstream, features=x)
        axes = list(range(1, plain.shape.rank))
        stuck = tf.equal(tf.reduce_max(tf.abs(plain), axis=axes, keepdims=True), 0.0)
        keep = (x > 0) | (stuck & (upstream > 0))
        return tf.where(keep, upstream, tf.zeros_like(upstream))

    return tf.cond(active, redirect, lambda: tf.raw_ops.ReluGrad(gradients=upstream, features=x))


RULES = {"deconvnet": _deconvnet, "guided": _guided, "rescue": _rescue}
"""Each rule: ``(x, dy, active) -> the gradient of x``."""

_NAMES = {rule: f"TbCnnvis{rule.title()}Relu" for rule in RULES}


def _input_gradients(rule, inputs, upstream):
    """The gradients of our IdentityN's inputs ``[relu(x), x, active]``: ``x`` gets the
    rule's, the forward ReLU none (so its own gradient is not followed)."""
    _, x, active = inputs
    return [None, RULES[rule](x, upstream, active), None]


def _register(rule):
    """Register ``rule``'s gradient of our IdentityN once (symbolic gradients use it)."""

    def gradient(op, upstream, *unused):
        return _input_gradients(rule, op.inputs, upstream)

    with contextlib.suppress(KeyError):  # registered already: the module was imported again
        ops.RegisterGradient(_NAMES[rule])(gradient)


for _rule in RULES:
    _register(_rule)


def relu(x, rule, active=None):
    """``max(x, 0)`` whose gradient follows ``rule`` (a key of ``RULES``).

    Args:
        x: a float tensor.
        rule: "deconvnet", "guided" or "rescue".
        active: for "rescue", a scalar bool tensor: the redirected gradient while true,
            the ordinary one while false (default: true).

    Returns:
        ``tf.nn.relu(x)``, with the rule's gradient on any tape and in symbolic gradients.
    """
    x = tf.convert_to_tensor(x)
    active = tf.constant(True) if active is None else tf.convert_to_tensor(active)
    inputs = [tf.nn.relu(x), x, active]
    with ops.get_default_graph().gradient_override_map({"IdentityN": _NAMES[rule]}):
        outputs = tf.identity_n(inputs)

    def backward(upstream, *unused):
        return _input_gradients(rule, inputs, upstream)

    # The last record of a tensor is the one the tape follows: this replaces IdentityN's.
    record.record_operation(_NAMES[rule], outputs, inputs, backward)
    return outputs[0]

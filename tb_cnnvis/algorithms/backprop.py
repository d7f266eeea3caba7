"""Project one unit back to the input: gradient, deconvnet and guided backpropagation.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014, project
the strongest activation of one channel (all other activations of the layer set to zero) down
to pixel space through unpooling with switches, rectified transposed convolutions and
ReLUs. Those are exactly the backward passes of max pooling and convolution, so the three
methods are one input gradient that differs only in how it passes each ReLU
(Springenberg et al., "Striving for Simplicity: The All Convolutional Net", ICLR 2015
workshop; Simonyan et al., "Deep Inside Convolutional Networks", 2013):

- ``"gradient"`` (saliency): ``dy * (x > 0)``, the plain gradient;
- ``"deconvnet"``: ``relu(dy)``, whatever the forward pass did;
- ``"guided"`` (guided backpropagation): ``relu(dy) * (x > 0)``.

The ReLU rule is applied by ``capture.run_graph(relu_fn=...)`` with ``relu_rules``
(gradients registered once, not per trace), catching ``activation="relu"``, ``ReLU`` and
``Activation("relu")`` layers; the user's model is never modified. Guided Grad-CAM (Selvaraju et al. 2017) multiplies guided
backpropagation of the class score by the upsampled Grad-CAM map.

Example:
    >>> projections = backprop(model, images, "conv2", rule="guided")   # (N, H, W, C)
    >>> details = projection_details(model, images, "conv2", channel=3)
"""

import weakref
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture, targets
from tb_cnnvis.algorithms import cam, relu_rules

RULES = ("gradient", "deconvnet", "guided")


def deconvnet_relu(x):
    """ReLU whose gradient is ``relu(dy)`` (Zeiler & Fergus 2014)."""
    return relu_rules.relu(x, "deconvnet")


def guided_relu(x):
    """ReLU whose gradient is ``relu(dy) * (x > 0)`` (Springenberg et al. 2015)."""
    return relu_rules.relu(x, "guided")


_RELU_FNS = {"gradient": None, "deconvnet": deconvnet_relu, "guided": guided_relu}


def relu_rule(rule):
    """The ReLU replacement for ``rule`` (None for the plain gradient).

    Raises:
        ValueError: for a rule other than "gradient", "deconvnet" or "guided".
    """
    if rule not in _RELU_FNS:
        raise ValueError(f"Unknown rule {rule!r}; expected one of {list(RULES)}.")
    return _RELU_FNS[rule]


def class_gradient(model, images, target, rule="guided", *, side=None, output=0, rows=None):
    """Input gradient of each image's target score under a ReLU ``rule``, (N, H, W, C_in).

    Compiled once per (model, rule, output, kind of target). ``images`` is a checked
    float32 batch, ``target`` a ``targets.Bound`` (its values for the images ``rows``, or
    for all when None), ``side`` the other inputs' rows (or None) and ``output`` the index
    of the output explained (``capture.output_index``).
    """
    relu_fn = relu_rule(rule)
    function = capture.CACHE.get(
        model,
        ("class_gradient", rule, output, target.key()),
        lambda model_ref: _build_class_gradient(model_ref, relu_fn, output, target),
    )
    side = capture.side_constants(side)
    return function(tf.constant(images), target.tensors(rows), side).numpy()


class Projection(NamedTuple):
    """Projections of one unit per image, and which unit (all arrays have N rows).

    Attributes:
        projections: float32 (N, H, W, C_in), raw (not normalized).
        channel: int32 (N,): the channel projected.
        activation: float32 (N,): the unit's activation (the channel's maximum).
        position: int32 (N, 2): the unit's (y, x) in the layer's output.
        layer: the layer's path.
        rule: "gradient", "deconvnet" or "guided": the rule asked for.
        applied: the rule that really shaped the result: ``rule``, or "gradient" when no
            ReLU runs on the way to the layer (every rule is then the plain gradient).
    """

    projections: np.ndarray
    channel: np.ndarray
    activation: np.ndarray
    position: np.ndarray
    layer: str
    rule: str
    applied: str = ""

    @property
    def notes(self):
        """Sentences for the dashboard: which rule really ran, when it is not the one asked."""
        if self.applied and self.applied != self.rule:
            return [NO_RELU_NOTE]
        return []


NO_RELU_NOTE = "No ReLU on the path to this layer: this is a plain gradient."
"""What a deconvnet or guided-backprop projection says when it ran as a plain gradient."""

_RELU_COUNTS = weakref.WeakKeyDictionary()


def relus_up_to(model, layer):
    """How many ReLUs run from the input up to ``layer`` (layers, ``activation="relu"``,
    ``tf.nn.relu`` calls, capped ones too), counted in one trace and cached per model.

    0 means the deconvnet and guided rules are the plain gradient there (a network of
    GELUs, SiLUs or LayerNorms, e.g. ConvNeXt or EfficientNet). None when the model cannot
    be traced to the layer alone.

    Example:
        >>> relus_up_to(convnext, "convnext_tiny_stage_3_block_2_depthwise_conv")
        0
    """
    path = capture.resolve_layer(model, layer).path
    per_model = _RELU_COUNTS.setdefault(model, {})
    if path not in per_model:
        seen = []

        def counting(x):
            seen.append(1)
            return tf.nn.relu(x)

        try:
            capture.trace_calls(model, lambda record: None, stop_at=(path,), relu_fn=counting)
        except (ValueError, TypeError, tf.errors.InvalidArgumentError):
            return None
        per_model[path] = len(seen)
    return per_model[path]


def layers_without_relu(model, refs):
    """The paths among ``refs`` (``LayerRef`` in model order) with no ReLU before them.

    A layer after a ReLU layer in model order has one; the others are counted with one
    trace to the last of them (a count of 0 there holds for every earlier layer).
    """
    before, unsure = False, []
    order = capture.layer_refs(model)
    wanted = {ref.path for ref in refs}
    for ref in order:
        before |= capture.relu_role(ref.layer) is not None
        if ref.path in wanted and not before:
            unsure.append(ref.path)
    if not unsure:
        return []
    if relus_up_to(model, unsure[-1]) == 0:
        return unsure
    return [path for path in unsure if relus_up_to(model, path) == 0]


def _build_projection(model_ref, path, relu_fn):
    """Input gradient of each image's strongest activation of its channel in ``path``."""

    def run(images, channel, side):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            _, taps = capture.run_graph(
                model_ref(), images, side=side, taps=[path], relu_fn=relu_fn, stop_at=[path]
            )
            acts = tf.cast(taps[path], tf.float32)
            strongest = tf.argmax(tf.reduce_max(acts, axis=(1, 2)), axis=-1, output_type=tf.int32)
            chosen = tf.where(channel < 0, strongest, channel)
            planes = tf.gather(tf.transpose(acts, (0, 3, 1, 2)), chosen, axis=1, batch_dims=1)
            flat = tf.reshape(planes, (tf.shape(planes)[0], -1))
            where = tf.argmax(flat, axis=-1, output_type=tf.int32)
            peak = tf.gather(flat, where, axis=1, batch_dims=1)
            target = tf.reduce_sum(peak)
        grads = tape.gradient(target, images)
        width = tf.shape(planes)[2]
        position = tf.stack([where // width, where % width], axis=-1)
        return grads, chosen, peak, position

    return run


def _build_class_gradient(model_ref, relu_fn, output, bound):
    """Input gradient of each image's target score under a ReLU rule."""

    def run(images, values, side):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            outputs, _ = capture.run_graph(
                model_ref(), images, side=side, relu_fn=relu_fn, logits=True
            )
            logits = tf.cast(capture.select_output(outputs, output), tf.float32)
            score = tf.reduce_sum(bound.score(logits, values))
        return tape.gradient(score, images)

    return run


def projection_details(model, images, layer, channel=None, rule="deconvnet", *, image_input=None):
    """Project each image's strongest activation of a channel back to the input.

    Zeiler & Fergus 2014 (deconvnet), Springenberg et al. 2015 (guided backpropagation),
    Simonyan et al. 2013 (gradient); see the module docstring. Images whose projection or
    unit activation is not finite get zero projections and a warning.

    Args:
        model: a built Keras 3 model (Sequential, functional, nested or subclassed).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them (the other
            inputs are held at each image's values).
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output.
        channel: None (per image, the channel with the largest activation), an int, or one
            int per image.
        rule: "gradient", "deconvnet" or "guided".
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A ``Projection``.

    Raises:
        ValueError: unknown rule or layer, a layer without a 4-D output, images of the
            wrong shape, channel out of range.

    Example:
        >>> details = projection_details(model, images, "conv2", rule="guided")
        >>> details.channel, details.position
    """
    relu_rule(rule)
    ref = capture.resolve_layer(model, layer)
    batch, side = capture.split_images(model, images, image_input=image_input)
    channels = cam.class_indices(channel, len(batch), ref.output_shape[-1], what="channel")
    function = capture.CACHE.get(
        model,
        ("projection", ref.path, rule),
        lambda model_ref: _build_projection(model_ref, ref.path, _RELU_FNS[rule]),
    )
    grads, chosen, peak, position = (
        t.numpy()
        for t in function(tf.constant(batch), tf.constant(channels), capture.side_constants(side))
    )
    grads[~np.isfinite(peak)] = np.nan  # a non-finite unit has no meaningful projection
    applied = rule if rule == "gradient" or relus_up_to(model, ref.path) != 0 else "gradient"
    return Projection(
        projections=capture.finite_or_zero(grads, f"{rule} projection of {ref.path!r}"),
        channel=chosen.astype(np.int32),
        activation=peak.astype(np.float32),
        position=position.astype(np.int32),
        layer=ref.path,
        rule=rule,
        applied=applied,
    )


def backprop(model, images, layer, channel=None, rule="deconvnet", *, image_input=None):
    """Deconvnet / guided backpropagation / gradient projection of one unit per image.

    Zeiler & Fergus 2014; Springenberg et al. 2015; Simonyan et al. 2013. The target is the
    single strongest activation of ``channel`` in ``layer`` (the rest of the layer zeroed);
    it is projected to the input through the network's own backward pass, with each ReLU
    passed according to ``rule``.

    Args:
        model: a built Keras 3 model (Sequential, functional, nested or subclassed).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them.
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output.
        channel: None (per image, the channel with the largest activation), an int, or one
            int per image.
        rule: "gradient", "deconvnet" or "guided".
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        float32 numpy array (N, H, W, C_in), raw (not normalized).

    Raises:
        ValueError: see ``projection_details``.

    Example:
        >>> import tb_cnnvis as cv
        >>> cv.backprop(model, images, "conv2", channel=5, rule="guided").shape
        (4, 32, 32, 3)
    """
    return projection_details(
        model, images, layer, channel, rule, image_input=image_input
    ).projections


def guided_grad_cam(
    model, images, layer=None, class_index=None, *, target=None, output=None, image_input=None
):
    """Guided Grad-CAM: guided backpropagation of the target's score times upsampled Grad-CAM.

    Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
    Localization", ICCV 2017, section 3.1. The score is a target's (``tb_cnnvis.targets``)
    of the logits (a final softmax or sigmoid is skipped).

    Args:
        model: a built Keras 3 model (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them.
        layer: the Grad-CAM layer (name or path); None: the last layer with a 4-D output.
        class_index: None (the predicted class), an int, or one int per image.
        target: a ``targets.Target`` or a callable ``logits -> (N,)``; None: ``class_index``'s.
        output: the output explained (a name, dict key or index); needed with several.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        float32 numpy array (N, H, W, C_in), raw (not normalized).

    Raises:
        ValueError: see ``cam.cam_details``.

    Example:
        >>> import tb_cnnvis as cv
        >>> cv.guided_grad_cam(model, images, "conv2").shape
        (4, 32, 32, 3)
    """
    choice = {"target": target, "output": output, "image_input": image_input}
    details = cam.cam_details(model, images, layer, class_index, "gradcam", **choice)
    batch, side = capture.split_images(model, images, image_input=image_input)
    index = capture.output_index(model, output)
    bound = targets.bind(model, index, len(batch), target, class_index)
    fixed = targets.with_classes(bound.target, details.class_index)
    fixed = targets.Bound(fixed, bound.head, fixed.values(len(batch)))
    grads = class_gradient(model, batch, fixed, rule="guided", side=side, output=index)
    guided = capture.finite_or_zero(grads, "guided backpropagation of the target's score")
    return (guided * details.maps[..., None]).astype(np.float32)

"""The compiled optimization of one batch of filter patterns (one ``tf.function`` per key).

``optimizer_loop`` builds the Python function that ``filters.filter_patterns`` compiles
through ``capture.CACHE`` once per (model, layer, batch, canvas, preset, diversity): the
whole gradient ascent of a batch, slot ``i`` maximizing filter ``filters[i]`` (Erhan et al.
2009; Olah et al. 2017), runs inside it. One loop holds both phases of the ascent: during
the first ``rescue_steps`` steps, only when some slot starts dead, ReLUs pass redirected
gradients (``fv_objectives.rescue_relu``); after them, the model's own ReLU gradients.
The model is traced twice per function, not four times: once with its gradient (the
loop's body) and once forward (the start and final activations share one inner
function). First traces dominate what a view costs at the first logged step of a large
network (about 3 s per trace of MobileNetV2 on 2 cores), so each saved trace counts.

Each step transforms the unit images at random (``fv_transforms``; a ``RandomCrops``
multiplies the batch and the objective averages each slot's copies), maximizes the mean
activation over the interior window minus, with ``members > 1``, Lucid's diversity
penalty (``fv_objectives.gram_similarity``, weighted by the slot's own activation so
that it means the same at every layer), and steps with the preset's rule. With
``recipe.attribution`` the absolute gradients reaching the unit image are summed over the
steps: MaCo's attribution of the pattern (Fel et al. 2023).

Example:
    >>> run = capture.CACHE.get(model, key, lambda model_ref: optimizer_loop(model_ref, ...))
    >>> out = run(params, filters, seed, steps, spectrum)
    >>> out["images"], out["final"], out["start"], out["attribution"]
"""

import tensorflow as tf

from tb_cnnvis import capture
from tb_cnnvis.algorithms.fv_objectives import channel_means, gram_similarity, rescue_relu
from tb_cnnvis.algorithms.fv_params import PixelImage
from tb_cnnvis.algorithms.fv_transforms import apply_transforms
from tb_cnnvis.capture.cache import NO_AUTOGRAPH

DIVERSITY_WEIGHT = 1.0
"""Weight of the diversity penalty, relative to each slot's own activation."""


def optimizer_loop(model_ref, path, recipe, input_range, shape, windows, members=1, jit=False):
    """The Python function compiled per cache key (see the module docstring).

    Args:
        model_ref: a weak reference to the model (``capture.CACHE``).
        path: the layer's path.
        recipe: the ``Preset``.
        input_range: the model's ``InputRange``.
        shape: (h, w, C) of the canvas.
        windows: the interior windows of the layer's output (or None) for the canvas and
            for the transformed images the steps see (pads and jitters change the size).
        members: patterns per filter (consecutive slots of one filter form a group).
        jit: compile the update step with XLA.

    Returns:
        ``run(params, filters, seed, steps, spectrum)`` returning a dict of ``images``
        (B, h, w, C) in the model's scale, ``final`` and ``start`` (B,) activations,
        ``start_images`` and ``attribution`` ((B, h, w), zeros unless the preset asks).
    """
    param, optimizer = recipe.parametrization, recipe.optimizer
    canvas_window, seen_window = windows

    def activations(seen, relu_fn):
        """The layer's output for unit images."""
        x = input_range.from_unit(seen)
        _, taps = capture.run_graph(model_ref(), x, taps=[path], stop_at=[path], relu_fn=relu_fn)
        return taps[path]

    def objective(seen, filters, relu_fn, window):
        """Per-slot objective (B,) and mean activation (B,) of (possibly expanded) images."""
        batch = filters.shape[0]
        copies = seen.shape[0] // batch
        act = activations(seen, relu_fn)
        means = channel_means(act, tf.repeat(filters, copies), window)
        means = tf.reduce_mean(tf.reshape(means, [batch, copies]), axis=1)
        if members < 2:
            return means, means
        similar = gram_similarity(act, batch // members, copies)
        scale = tf.stop_gradient(tf.abs(means)) + 1e-6
        return means - DIVERSITY_WEIGHT * scale * similar, means

    def penalty_grad(unit):
        if not recipe.regularizers:
            return None
        return tf.add_n([regularizer.grad(unit) for regularizer in recipe.regularizers])

    def update(params, grad, cost_grad, state, step):
        if cost_grad is None:
            cost_grad = tf.zeros_like(grad)
        params, state = optimizer.step(params, grad, cost_grad, state, step)
        return param.project(params), state

    fused_update = tf.function(update, jit_compile=True, autograph=NO_AUTOGRAPH) if jit else update

    def body_for(filters, seed, spectrum, rescue):
        def body(step, params, state, attribution):
            relu_fn = rescue_relu(step < rescue)
            if isinstance(
                param, PixelImage
            ):  # the unit image is the parameter: no chain rule, penalty fused
                with tf.GradientTape() as tape:
                    tape.watch(params)
                    seen = apply_transforms(recipe.transforms, params, seed, step)
                    value = tf.reduce_sum(objective(seen, filters, relu_fn, seen_window)[0])
                grad = tape.gradient(value, params)
                unit_grad, cost_grad = grad, penalty_grad(params)
            else:
                with tf.GradientTape(persistent=True) as outer:
                    outer.watch(params)
                    unit = param.to_unit(params, shape, spectrum)
                with tf.GradientTape() as tape:
                    tape.watch(unit)
                    seen = apply_transforms(recipe.transforms, unit, seed, step)
                    value = tf.reduce_sum(objective(seen, filters, relu_fn, seen_window)[0])
                unit_grad = tape.gradient(value, unit)
                grad = outer.gradient(unit, params, output_gradients=unit_grad)
                cost_grad = None
                if recipe.regularizers:
                    cost = penalty_grad(unit)
                    cost_grad = outer.gradient(unit, params, output_gradients=cost)
            if recipe.attribution:
                attribution += tf.reduce_mean(tf.abs(unit_grad), axis=-1)
            params, state = fused_update(params, grad, cost_grad, state, step)
            return step + 1, params, state, attribution

        return body

    # The start and the final activations: one inner function, traced once for both calls
    # (without AutoGraph, as every compiled function here: with it, its first trace
    # rewrote the source of every Keras layer it reached, seconds on a large network).
    measured = tf.function(
        lambda unit, filters: objective(unit, filters, None, canvas_window)[1],
        autograph=NO_AUTOGRAPH,
    )

    def run(params, filters, seed, steps, spectrum):
        start_unit = param.to_unit(params, shape, spectrum)
        start = measured(start_unit, filters)
        attribution = tf.zeros([params.shape[0], shape[0], shape[1]])
        rescue = tf.constant(0)
        if recipe.rescue_steps:  # redirected ReLU gradients, only when some slot starts dead
            rescue = tf.where(tf.reduce_any(start <= 0), tf.minimum(steps, recipe.rescue_steps), 0)
        _, params, _, attribution = tf.while_loop(
            lambda step, *_: step < steps,
            body_for(filters, seed, spectrum, rescue),
            (tf.constant(0), params, optimizer.init(params), attribution),
        )
        unit = param.to_unit(params, shape, spectrum)
        return {
            "images": input_range.from_unit(unit),
            "final": measured(unit, filters),
            "start": start,
            "start_images": input_range.from_unit(start_unit),
            "attribution": attribution,
        }

    return run

"""Filter patterns: one synthesized image per filter, all filters of a layer at once.

Activation maximization (Erhan et al. 2009; Simonyan et al. 2013; Yosinski et al. 2015;
Olah et al. 2017, "Feature Visualization", Distill): gradient ascent in input space on the
mean activation of one channel. Slot ``i`` of one batch optimizes the image of filter
``filters[i]``, and the whole optimization loop of a batch runs inside one compiled
``tf.function``, cached per (model, layer, batch shape, preset) and reused across calls and
epochs; it reads the model's current weights every time.

A preset (``fv_presets``: ``"fast"``, the callback's default, and ``"quality"``, Lucid's
defaults) combines composable pieces: a parametrization (``fv_params``), random transforms
(``fv_transforms``), regularizers and a step rule (``fv_objectives``). During the first
steps ReLU gradients are redirected (``fv_objectives.redirected_relu``) so that filters
which are off for the start image still get a pattern; filters whose activation stays
<= 0 are listed in ``FilterPatterns.dead`` instead of showing noise.

Start images depend only on (seed, filter index) and the random transforms only on
(seed, step), so the pattern of a filter at two epochs differs only because the model did.

Example:
    >>> result = cv.filter_patterns(model, "conv3", filters=[0, 5, 7], preset="fast")
    >>> result.images.shape, result.activations.shape
    ((3, 64, 64, 3), (3,))
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture
from tb_cnnvis.algorithms.fv_objectives import channel_means, rescue_relu
from tb_cnnvis.algorithms.fv_presets import PRESETS, Preset
from tb_cnnvis.algorithms.fv_transforms import apply_transforms
from tb_cnnvis.algorithms.receptive_field import receptive_field
from tb_cnnvis.input_range import InputRange, to_display_rgb

CHUNK_BYTES = 1 << 30
"""Estimated working memory allowed for one compiled batch; larger requests are chunked."""

JIT_UPDATE = False
"""Compile each step's update (regularizer gradients, step rule, clipping) with XLA. Off by
default: on 2 CPU cores the XLA compile at the first call (once per layer) costs more than
the fused update saves over a training run's logged epochs."""


@dataclass
class FilterPatterns:
    """The result of ``filter_patterns``.

    Attributes:
        layer: the layer path.
        filters: (F,) int, the filter indices in the order asked.
        images: (F, H, W, C) float32 in the model's input scale; image ``i`` maximizes
            filter ``filters[i]``.
        activations: (F,) the mean activation of filter ``filters[i]`` for image ``i``.
        start_activations: (F,) the same for the start images.
        input_range: the ``InputRange`` the images live in.
        steps: optimization steps run.

    Example:
        >>> rgb = result.display()          # (F, H, W, 3) uint8, ready to show
        >>> result.dead                     # filters that never fired
    """

    layer: str
    filters: np.ndarray
    images: np.ndarray
    activations: np.ndarray
    start_activations: np.ndarray
    input_range: InputRange
    steps: int

    @property
    def dead(self):
        """Filter indices whose activation stayed <= 0 (no pattern found), in order."""
        return self.filters[self.activations <= 0]

    def display(self, dtype="uint8"):
        """The images as display RGB (see ``input_range.to_display_rgb``)."""
        return to_display_rgb(self.images, self.input_range, dtype=dtype)


def filter_patterns(
    model,
    layer,
    filters=None,
    *,
    steps=None,
    size=None,
    preset="fast",
    seed=0,
    input_range=None,
    chunk_size=None,
):
    """Synthesize, for each filter of ``layer``, an image that maximizes its mean activation.

    Args:
        model: a built Keras model with one image input.
        layer: the layer name, ``"outer/inner"`` path or index into ``conv_layers(model)``.
        filters: filter (channel) indices, an int, or None for all; kept in the order given.
        steps: optimization steps; None uses the preset's default.
        size: ``(height, width)`` or an int; None uses the model's input size. Another size
            works when every layer up to ``layer`` accepts it (convolutions, pooling).
        preset: ``"fast"``, ``"quality"`` or a ``Preset``.
        seed: fixes the start images and the random transforms.
        input_range: the model's input scale (``InputRange``, a name, ``(low, high)``);
            None means [0, 1], or [0, 255] for a model that starts with ``Rescaling(1/255)``.
        chunk_size: filters per compiled batch; None picks it from ``CHUNK_BYTES``.

    Returns:
        A ``FilterPatterns``.

    Raises:
        ValueError: for a layer without (height, width, channels) output, a filter index out
            of range, ``steps < 1``, an unknown preset, or a size the layers cannot take.

    Example:
        >>> result = cv.filter_patterns(model, "conv2", steps=32)
        >>> result.dead
        array([], dtype=int64)
    """
    ref = capture.resolve_layer(model, layer, need_4d=True)
    channels = ref.output_shape[-1]
    filters = _check_filters(filters, channels, ref.path)
    recipe = _check_preset(preset)
    steps = recipe.steps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}.")
    shape = _check_size(model, ref, size)
    rng = InputRange.resolve(input_range, model)
    rng.bounds(shape[2])
    if chunk_size is None:
        chunk_size = _auto_chunk(model, ref, shape)
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be an int >= 1 or None; got {chunk_size!r}.")
    batch = int(min(chunk_size, len(filters)))
    key = ("filter_patterns", ref.path, batch, shape, recipe, rng, JIT_UPDATE)
    window = interior_window(model, ref.path, shape[:2])
    run = capture.CACHE.get(
        model,
        key,
        lambda model_ref: _optimizer_loop(model_ref, ref.path, recipe, rng, shape, window),
    )
    parts = []
    for begin in range(0, len(filters), batch):
        chunk = filters[begin : begin + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk))])
        params = recipe.parametrization.init(padded, shape, seed)
        out = run(
            tf.constant(params),
            tf.constant(padded, tf.int32),
            tf.constant(int(seed) & 0x7FFFFFFF, tf.int32),
            tf.constant(int(steps), tf.int32),
        )
        parts.append([np.asarray(t)[: len(chunk)] for t in out])
    images, final, start = (np.concatenate(column) for column in zip(*parts))
    return FilterPatterns(
        layer=ref.path,
        filters=filters,
        images=images.astype(np.float32),
        activations=final.astype(np.float32),
        start_activations=start.astype(np.float32),
        input_range=rng,
        steps=int(steps),
    )


def interior_window(model, path, size):
    """The positions of ``path``'s output whose receptive field lies inside the image.

    The objective averages a filter over these positions only. Units at the border see the
    zero padding, which breaks the symmetry of a flat start image: there the filter fires
    first, and the pattern grows in from the edges while the middle stays grey (the Keras
    tutorial trims two units for the same reason). Returns (top, bottom, left, right), or
    None (all positions) when the receptive field cannot be computed; the central unit
    when no unit lies wholly inside.
    """
    try:
        field = receptive_field(model, path, input_size=size)
    except ValueError:
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


def _optimizer_loop(model_ref, path, recipe, input_range, shape, window=None):
    """The Python function compiled per cache key: the whole optimization of one batch.

    One loop: for the first ``rescue_steps`` steps (only when some slot starts dead) the
    ReLUs pass redirected gradients (``fv_objectives.rescue_relu``), ordinary ones after.
    """
    param, optimizer = recipe.parametrization, recipe.optimizer

    def objective(unit, filters, relu_fn):
        x = input_range.from_unit(unit)
        _, taps = capture.run_graph(model_ref(), x, taps=[path], stop_at=[path], relu_fn=relu_fn)
        return channel_means(taps[path], filters, window)

    def penalty_grad(unit):
        if not recipe.regularizers:
            return None
        return tf.add_n([regularizer.grad(unit) for regularizer in recipe.regularizers])

    def update(params, grad, cost_grad, state, step, pixels):
        if pixels:  # the unit image is the parameter: the penalty is taken here, fused
            cost_grad = penalty_grad(params)
        if cost_grad is None:
            cost_grad = tf.zeros_like(grad)
        params, state = optimizer.step(params, grad, cost_grad, state, step)
        return param.project(params), state

    fused_update = tf.function(update, jit_compile=True) if JIT_UPDATE else update

    def loop(filters, seed, rescue):
        def body(step, params, state):
            relu_fn = rescue_relu(step < rescue) if recipe.rescue_steps else None
            with tf.GradientTape(persistent=True) as outer:
                outer.watch(params)
                unit = param.to_unit(params, shape)
            with tf.GradientTape() as tape:
                tape.watch(unit)
                seen = apply_transforms(recipe.transforms, unit, seed, step)
                value = tf.reduce_sum(objective(seen, filters, relu_fn))
            grad, cost_grad = tape.gradient(value, unit), None
            pixels = unit is params
            if not pixels:  # chain the unit-image gradients to the parameters
                grad = outer.gradient(unit, params, output_gradients=grad)
                if recipe.regularizers:
                    cost = penalty_grad(unit)
                    cost_grad = outer.gradient(unit, params, output_gradients=cost)
            params, state = fused_update(params, grad, cost_grad, state, step, pixels)
            return step + 1, params, state

        return body

    def run(params, filters, seed, steps):
        start = objective(param.to_unit(params, shape), filters, None)
        carry = (tf.constant(0), params, optimizer.init(params))
        # Redirected ReLU gradients for the first steps, only when some slot starts dead.
        rescue = tf.where(tf.reduce_any(start <= 0), tf.minimum(steps, recipe.rescue_steps), 0)
        _, params, _ = tf.while_loop(
            lambda step, *_: step < steps, loop(filters, seed, rescue), carry
        )
        unit = param.to_unit(params, shape)
        return input_range.from_unit(unit), objective(unit, filters, None), start

    return run


def _check_filters(filters, channels, path):
    """Filter indices as an int array, each in [0, channels)."""
    if filters is None:
        return np.arange(channels)
    values = np.atleast_1d(np.asarray(filters))
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"filters must be an int or a non-empty list of ints in [0, {channels}); got {filters!r}."
        )
    bad = values[(values < 0) | (values >= channels)]
    if bad.size:
        raise ValueError(
            f"Filter indices {bad.tolist()} are out of range: layer {path!r} has {channels} "
            f"filters (0..{channels - 1})."
        )
    return values.astype(np.int64)


def _check_preset(preset):
    """The ``Preset`` for a name or instance."""
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    raise ValueError(f"Unknown preset {preset!r}; expected one of {sorted(PRESETS)} or a Preset.")


def _check_size(model, ref, size):
    """``(height, width, channels)`` to optimize at, checked against the layers up to ``ref``."""
    height, width, channels = capture.input_shape(model)
    if size is None:
        if height is None or width is None:
            raise ValueError(
                f"Model {model.name!r} has no fixed input size {(height, width)}; pass size=(h, w)."
            )
        return (int(height), int(width), int(channels))
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in pair):
        raise ValueError(f"size must be a positive int or (height, width); got {size!r}.")
    shape = (int(pair[0]), int(pair[1]), int(channels))
    if shape[:2] != (height, width):
        try:
            capture.run_graph(model, tf.zeros((1, *shape)), taps=[ref.path], stop_at=[ref.path])
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
            raise ValueError(
                f"Layer {ref.path!r} cannot be computed at size {shape[:2]} (the model takes "
                f"{(height, width)}): {error}"
            ) from None
    return shape


def _auto_chunk(model, ref, shape):
    """Filters per batch so that the estimated working memory stays under ``CHUNK_BYTES``."""
    height, width, _ = capture.input_shape(model)
    ratio = (shape[0] * shape[1]) / float((height or shape[0]) * (width or shape[1]))
    floats = np.prod(shape)
    for other in capture.layer_refs(model)[: ref.index + 1]:
        if other.output_shape and None not in other.output_shape[-1:]:
            spatial = [d for d in other.output_shape[:-1] if d is not None]
            floats += ratio * np.prod(spatial) * other.output_shape[-1]
    # Forward values, their gradients and the ReLU masks, in float32.
    per_slot = 3 * 4 * floats
    return max(1, int(CHUNK_BYTES // per_slot))

"""DeepDream: amplify what a layer sees in each probe image.

Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", Google
Research blog, 2015. Starting from a real image, gradient ascent on the mean squared
activation of a layer makes whatever the layer responds to in that image stronger: its
features are painted into the image. As in their notebook, the ascent runs over a few
*octaves* (the image at ``octave_scale`` times smaller sizes, smallest first, the
details gained at one octave carried to the next), each step's gradient is divided by
its mean absolute value (so the step size means the same at every layer) and taken on a
randomly shifted copy (jitter), and the image is kept in the model's input range. The
gradient is that of the objective's log: the same direction, at a size that does not
vanish with the activations (so a dream does not depend on the layer's scale).

The objective is the mean squared *positive* activation, ``mean(relu(a) ** 2)``: for the
ReLU layers of the original, the mean square itself; for signed activations (a
LayerNorm's or a GELU's output in ConvNeXt, a convolution before its ReLU) it amplifies
what the layer responds to rather than its negative values, and after a LayerNorm, whose
mean square over channels is 1 whatever the image, it can still rise. Each image's ascent
stops once its objective has not risen by ``MIN_GAIN`` for ``PATIENCE`` steps at an
octave: more steps would only add noise, and cost. ``notes`` says when that happened.

All probes are dreamt in one batch by one compiled ``tf.function`` per (model, layer,
batch, size, settings), through the same interception (``capture.run_graph``, stopped at
the layer) and cache (``capture.CACHE``) as the filter patterns. The shifts depend only on
(seed, octave, step), so two epochs' dreams of a probe differ because the model did.

Example:
    >>> dream = cv.deepdream(model, probes, "conv3")
    >>> dream.images.shape, dream.objective > dream.start_objective
    ((8, 64, 64, 3), array([ True,  True, ...]))
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture
from tb_cnnvis.algorithms.fv_canvas import MIN_CANVAS, runs_at
from tb_cnnvis.algorithms.fv_objectives import TINY
from tb_cnnvis.input_range import InputRange, to_display_rgb

MIN_GAIN = 0.01
"""The least rise of an image's log objective in one step that counts as rising (1 %)."""

PATIENCE = 3
"""Steps without rising after which an image's ascent stops at an octave."""


class DeepDream(NamedTuple):
    """The result of ``deepdream``.

    Attributes:
        layer: the layer path.
        images: (N, H, W, C) float32 dreams in the model's input scale.
        objective: (N,) the layer's mean squared positive activation for each dream.
        start_objective: (N,) the same for each probe image.
        octaves: the (h, w) sizes dreamt at, smallest first.
        steps: ascent steps per octave (at most).
        input_range: the ``InputRange`` of the images.
        steps_run: (N, octaves) the steps each image's ascent really took at each octave
            (fewer than ``steps`` where its objective stopped rising), or None.
    """

    layer: str
    images: np.ndarray
    objective: np.ndarray
    start_objective: np.ndarray
    octaves: tuple
    steps: int
    input_range: InputRange
    steps_run: np.ndarray | None = None

    @property
    def notes(self):
        """A sentence for the dashboard when ascents stopped early (see ``PATIENCE``)."""
        if self.steps_run is None or np.all(self.steps_run >= self.steps):
            return []
        mean = float(np.mean(self.steps_run))
        return [
            f"The objective stopped rising, so the ascent stopped early: {mean:.1f} of "
            f"{self.steps} steps per octave on average."
        ]

    def display(self, dtype="uint8"):
        """The dreams as display RGB (``input_range.to_display_rgb``)."""
        return to_display_rgb(self.images, self.input_range, dtype=dtype)


def _octave_sizes(model, path, size, channels, octaves, scale):
    """The octave sizes (smallest first) at which the layers up to ``path`` run."""
    sizes = [tuple(int(s) for s in size)]
    for k in range(1, int(octaves)):
        smaller = tuple(round(s / scale**k) for s in size)
        if min(smaller) < MIN_CANVAS or not runs_at(model, path, (*smaller, channels)):
            break
        sizes.append(smaller)
    return tuple(reversed(sizes))


def _build(model_ref, path, input_range, sizes, steps, step_size, jitter):
    """The Python function compiled per key: every octave of the ascent for one batch."""

    def objective(unit):
        x = input_range.from_unit(unit)
        _, taps = capture.run_graph(model_ref(), x, taps=[path], stop_at=[path])
        positive = tf.nn.relu(tf.cast(taps[path], tf.float32))
        return tf.reduce_mean(tf.square(positive), axis=[1, 2, 3])

    def ascend(image, seed, octave):
        count = tf.shape(image)[0]

        def body(step, image, best, stale, ran):
            pair = tf.stack([seed, octave * 1000 + step])
            shift = tf.random.stateless_uniform(
                (2,), pair, minval=-jitter, maxval=jitter + 1, dtype=tf.int32
            )
            with tf.GradientTape() as tape:
                rolled = tf.roll(image, shift, axis=[1, 2])
                tape.watch(rolled)
                # The log's gradient is the objective's divided by the objective: the same
                # direction per image once normalized below, but of a size that does not
                # shrink with the activations. Deep layers of untrained networks have
                # objectives of 1e-23, whose gradients the 1e-8 below would swamp.
                logs = tf.math.log(objective(rolled) + TINY)
                total = tf.reduce_sum(logs)
            grad = tf.roll(tape.gradient(total, rolled), -shift, axis=[1, 2])
            scale = tf.reduce_mean(tf.abs(grad), axis=[1, 2, 3], keepdims=True) + 1e-8
            # Each image on its own: it stops once PATIENCE steps in a row did not rise.
            active = stale < PATIENCE
            rising = logs > best + MIN_GAIN
            stale = tf.where(active, tf.where(rising, 0, stale + 1), stale)
            best = tf.where(active, tf.maximum(best, logs), best)
            moved = tf.clip_by_value(image + step_size * grad / scale, 0.0, 1.0)
            image = tf.where(active[:, None, None, None], moved, image)
            return step + 1, image, best, stale, ran + tf.cast(active, tf.int32)

        start = (
            tf.constant(0),
            image,
            tf.fill([count], -np.inf),
            tf.zeros([count], tf.int32),
            tf.zeros([count], tf.int32),
        )
        _, image, _, _, ran = tf.while_loop(
            lambda step, _i, _b, stale, _r: (step < steps) & tf.reduce_any(stale < PATIENCE),
            body,
            start,
        )
        return image, ran

    def run(images, seed):
        unit = tf.clip_by_value(input_range.to_unit(images), 0.0, 1.0)
        bases = [tf.image.resize(unit, size, antialias=True) for size in sizes[:-1]] + [unit]
        detail = tf.zeros_like(bases[0])
        runs = []
        for octave, base in enumerate(bases):
            if octave:
                detail = tf.image.resize(detail, sizes[octave])
            image, ran = ascend(tf.clip_by_value(base + detail, 0.0, 1.0), seed, octave)
            runs.append(ran)
            detail = image - base
        ran = tf.stack(runs, axis=1)
        return input_range.from_unit(image), objective(image), objective(unit), ran

    return run


def deepdream(
    model,
    images,
    layer,
    *,
    octaves=3,
    octave_scale=1.4,
    steps=10,
    step_size=0.02,
    jitter=4,
    seed=0,
    input_range=None,
    image_input=None,
):
    """Amplify the activations of ``layer`` in each image (DeepDream, Mordvintsev et al. 2015).

    Args:
        model: a built Keras model.
        images: float32 (N, H, W, C) in the model's input scale (the probe images); for a
            model with several inputs a dict or list of them: the other inputs are held at
            the images' mean (the octaves change the image's size, not the other inputs).
        layer: the layer name, ``"outer/inner"`` path or index into ``conv_layers(model)``.
        octaves: how many sizes to dream at (fewer when the layers cannot take smaller
            images, or they would be under ``MIN_CANVAS`` pixels).
        octave_scale: the ratio between two octaves' sizes.
        steps: ascent steps per octave.
        step_size: each step, in display units ([0, 1]) per unit of the gradient's mean
            absolute value.
        jitter: the largest random shift in pixels, either way.
        seed: fixes the shifts.
        input_range: the model's input scale (see ``InputRange.resolve``).
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A ``DeepDream``.

    Raises:
        ValueError: for a layer without (height, width, channels) output, images that do
            not fit the model, or settings out of range.

    Example:
        >>> dream = cv.deepdream(model, x_val[:8], "conv4", octaves=3, steps=10)
        >>> rgb = dream.display()      # (8, 64, 64, 3) uint8
    """
    ref = capture.resolve_layer(model, layer, need_4d=True)
    held = capture.held_values(model, images, None, "deepdream", image_input)
    images, _ = capture.split_images(model, images, "images", image_input)
    if int(octaves) < 1 or int(steps) < 1 or octave_scale <= 1 or step_size <= 0 or jitter < 0:
        raise ValueError(
            "deepdream needs octaves >= 1, steps >= 1, octave_scale > 1, step_size > 0 and "
            f"jitter >= 0; got {octaves}, {steps}, {octave_scale}, {step_size}, {jitter}."
        )
    rng = InputRange.resolve(input_range, model)
    rng.bounds(images.shape[-1])
    with capture.holding(model, held):
        sizes = _octave_sizes(
            model, ref.path, images.shape[1:3], images.shape[-1], octaves, octave_scale
        )
        settings = (sizes, int(steps), float(step_size), int(jitter))
        key = ("deepdream", ref.path, images.shape, rng, settings, capture.fingerprint(held))
        run = capture.CACHE.get(
            model, key, lambda model_ref: _build(model_ref, ref.path, rng, *settings)
        )
        seed = tf.constant(int(seed) & 0x7FFFFFFF, tf.int32)
        dreams, final, start, ran = run(tf.constant(images), seed)
    return DeepDream(
        layer=ref.path,
        images=np.asarray(dreams, np.float32),
        objective=np.asarray(final, np.float32),
        start_objective=np.asarray(start, np.float32),
        octaves=sizes,
        steps=int(steps),
        input_range=rng,
        steps_run=np.asarray(ran, np.int64),
    )

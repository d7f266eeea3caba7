"""Speed of ``filter_patterns`` against the per-filter tutorial loop, tf-keras-vis and the limit.

Measured side by side in one run, on the demo CNN (``demo.model.build_model``, trained for
one short epoch on ``demo.shapes``) and on a VGG16-sized layer (``keras.applications.VGG16``
with random weights, 16 of the 256 filters of ``block3_conv1`` at 64x64 input; a full
224x224 layer would take many minutes on two cores), all at equal steps:

1. ``tutorial``: a faithful TF2 port of the seed tutorial's loop (Chollet 2016, "How
   convolutional neural networks see the world"): per filter, a new gradient function
   (a fresh ``tf.function``, so one trace per filter) and 40 gradient-ascent steps of the
   RMS-normalized gradient from grey + noise, batch 1, driven from Python. Goal: ours >= 4x
   faster on a 64-filter layer.
2. ``tf-keras-vis``: ``ActivationMaximization`` 0.8.7 with its default input modifiers
   and regularizers (Jitter(4), Rotate2D(1 degree) through scipy on NumPy every step,
   TotalVariation2D(1.0), Norm(0.3, p=1), RMSprop(1.0)), all filters in one batch, the
   layer extracted with its documented ``ExtractIntermediateLayer`` + ``ReplaceToLinear``;
   its set-up (a model clone) is not counted. Goal: ours >= 3x faster.
3. ``limit``: the same number of plain forward + backward passes of the sub-model
   ``keras.Model(model.inputs, layer.output)`` at the same batch size, all inside one
   compiled loop (no regularizers, no transforms, no Python). Efficiency = limit / ours
   with the ``fast`` preset's regularization on; goal >= 0.8.

Ours runs on the whole input here (``size=`` the model's), as the others do: since the
receptive-field canvas, ``filter_patterns`` would otherwise work on a smaller canvas and
the ratios would not compare equal work. ``benchmarks.filter_presets`` adds, in the same
run, the presets compared (specificity, seconds, activation per second; the default
preset chosen from them) and MobileNetV2's cost before / after the canvas.

``act`` is the mean over filters of each filter's mean activation for its own image,
measured the same way for every method on the images clipped to the model's input range
(what a viewer sees), so speed cannot come from doing less. Ours is timed after its one
trace (the callback reuses it every epoch); its first call is printed too. On this CPU
the speed of one compiled instance of the very same graph varies up to 2x from one
instance to the next (oneDNN; stable within an instance), so ours and the limit are each
compiled on ``--instances`` copies of the model and the best instance counts (the spread
is printed); the methods take turns, ``--rounds`` times, so that all see the same load
from other processes, and each one's best time counts.

Run: ``python -m benchmarks.bench_filters [--quick]``.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from benchmarks.common import print_rows, row, use_peers
from benchmarks.filter_presets import (
    best_time,
    choose_default,
    demo_images,
    mobilenet_rows,
    preset_case,
)
from tb_cnnvis import capture
from tb_cnnvis.algorithms.filters import filter_patterns
from tb_cnnvis.algorithms.fv_objectives import channel_means
from tb_cnnvis.input_range import InputRange


def _reached(model, layer, filters, images, input_range):
    """Mean over filters of filter i's mean activation for image i (images clipped to range)."""
    images = input_range.clip(np.asarray(images, np.float32))
    _, taps = capture.run_graph(model, tf.constant(images), taps=[layer], stop_at=[layer])
    return float(tf.reduce_mean(channel_means(taps[layer], tf.constant(filters))))


def tutorial_loop(model, layer, filters, steps, input_range, seed=0):
    """The seed tutorial's loop: per filter a new gradient function and ``steps`` steps."""
    sub_model = keras.Model(model.inputs, model.get_layer(layer).output)
    height, width, channels = model.input_shape[1:]
    low, high = input_range.bounds(channels)
    step = (high - low) / 255.0  # the tutorial's step of 1 on a 0..255 scale
    rng = np.random.default_rng(seed)
    images = []
    for index in filters:

        @tf.function
        def iterate(image, index=index):
            with tf.GradientTape() as tape:
                tape.watch(image)
                loss = tf.reduce_mean(sub_model(image)[..., index])
            grads = tape.gradient(loss, image)
            return loss, grads / (tf.sqrt(tf.reduce_mean(tf.square(grads))) + 1e-5)

        grey = rng.random((1, height, width, channels)) * 20 + 128.0
        image = (low + grey / 255.0 * (high - low)).astype(np.float32)
        for _ in range(steps):
            _, grads = iterate(tf.constant(image))
            image += step * grads.numpy()
        images.append(image[0])
    return np.stack(images)


def keras_vis(model, layer, filters, steps, input_range, seed=0):
    """tf-keras-vis ActivationMaximization at its defaults; None when it is not installed."""
    use_peers()
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer, ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    visualizer = ActivationMaximization(
        model, model_modifier=[ExtractIntermediateLayer(layer), ReplaceToLinear()], clone=True
    )
    low, high = (float(np.min(input_range.low)), float(np.max(input_range.high)))
    start = tf.random.stateless_uniform(
        (len(filters), *model.input_shape[1:]), (seed, 0), low, high
    )

    def run():
        return np.asarray(
            visualizer(
                CategoricalScore(list(filters)),
                seed_input=start,
                input_range=(low, high),
                steps=steps,
            )
        )

    return run


def plain_passes(model, layer, filters, steps):
    """The limit: ``steps`` plain forward + backward passes in one compiled loop."""
    sub_model = keras.Model(model.inputs, model.get_layer(layer).output)
    indices = tf.constant(filters)

    @tf.function
    def run(images):
        def body(i, images):
            with tf.GradientTape() as tape:
                tape.watch(images)
                value = tf.reduce_sum(channel_means(sub_model(images), indices))
            return i + 1, images + 1e-3 * tape.gradient(value, images)

        return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), images))[1]

    start = tf.random.uniform((len(filters), *model.input_shape[1:]))
    run(start)
    return lambda: run(start).numpy()


def _clone(model):
    """A copy of ``model`` with the same weights: a fresh compiled instance of everything."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _case(case, model, layer, filters, steps, input_range, timing, tutorial_filters, rows):
    """Measure every method on one layer and append its rows (see ``benchmarks.common.row``).

    ``timing`` is ``(instances, rounds)``: ours and the limit are compiled on ``instances``
    copies of the model; every method runs once per round, methods taking turns so that
    they see the same load; each method's best time counts.
    """
    instances, rounds = timing
    filters = list(filters)
    subset = filters[:tutorial_filters]
    scale = len(filters) / len(subset)  # the tutorial's cost is the same for every filter
    copies = [model] + [_clone(model) for _ in range(instances - 1)]
    start = time.perf_counter()
    size = model.input_shape[1:3]  # equal settings: the whole input, as the others use

    def ours(copy):
        return filter_patterns(
            copy, layer, filters, steps=steps, input_range=input_range, size=size
        ).images

    ours(model)
    first = time.perf_counter() - start
    for copy in copies[1:]:  # trace the other instances before timing
        ours(copy)
    runs = {f"ours {i}": (lambda copy=copy: ours(copy)) for i, copy in enumerate(copies)}
    runs.update(
        {f"limit {i}": plain_passes(copy, layer, filters, steps) for i, copy in enumerate(copies)}
    )
    runs["tutorial"] = lambda: tutorial_loop(model, layer, subset, steps, input_range)
    vis = keras_vis(model, layer, filters, steps, input_range)
    if vis is None:
        print("tf-keras-vis is not installed: make peers (its row is skipped)")
    else:
        runs["tf-keras-vis"] = vis
    seconds, images = {key: [] for key in runs}, {}
    for _ in range(rounds):
        for key, run in runs.items():
            took, images[key] = best_time(run, 1)
            seconds[key].append(took)

    def best(prefix):
        return min(min(v) for k, v in seconds.items() if k.startswith(prefix))

    def spread(prefix):
        values = [min(v) for k, v in seconds.items() if k.startswith(prefix)]
        return f"instances {min(values):.2f}..{max(values):.2f} s"

    ours = best("ours")
    act = _reached(model, layer, filters, images["ours 0"], input_range)
    name = f"{case} {layer} ({len(filters)} filters, {steps} steps)"
    rows.append(
        row(
            "filters",
            f"{name}: ours (fast), traced",
            ours,
            "s",
            None,
            f"act {act:.3f}; {spread('ours')}; first call (trace) {first:.2f} s",
        )
    )
    limit = best("limit")
    rows.append(
        row(
            "filters",
            f"{name}: efficiency, limit / ours",
            limit / ours,
            "x",
            ">= 0.8",
            f"plain fwd+bwd {limit:.2f} s; {spread('limit')}",
        )
    )
    tutorial = best("tutorial") * scale
    tutorial_act = _reached(model, layer, subset, images["tutorial"], input_range)
    rows.append(
        row(
            "filters",
            f"{name}: speed-up over the tutorial loop",
            tutorial / ours,
            "x",
            ">= 4",
            f"tutorial {tutorial:.2f} s ({len(subset)} filters timed, x{scale:g}); "
            f"act {tutorial_act:.3f} vs ours {act:.3f}",
        )
    )

    def canvas_run():
        return filter_patterns(model, layer, filters, steps=steps, input_range=input_range)

    canvas = canvas_run().canvas.size
    if canvas != tuple(size):  # as the callback runs it: on the receptive-field canvas
        on_canvas = best_time(canvas_run, 2)[0]
        rows.append(
            row(
                "filters",
                f"{name}: speed-up over the tutorial loop, ours on its canvas {canvas}",
                tutorial / on_canvas,
                "x",
                None,
                f"ours {on_canvas:.2f} s on the receptive-field canvas (not equal settings)",
            )
        )
    if vis is not None:
        seconds_vis = best("tf-keras-vis")
        vis_act = _reached(model, layer, filters, images["tf-keras-vis"], input_range)
        rows.append(
            row(
                "filters",
                f"{name}: speed-up over tf-keras-vis",
                seconds_vis / ours,
                "x",
                ">= 3",
                f"tf-keras-vis {seconds_vis:.2f} s; act {vis_act:.3f} vs ours {act:.3f}",
            )
        )


def _demo_model(quick):
    """The demo CNN, trained one short epoch so that its filters mean something."""
    from demo.model import build_model
    from demo.shapes import make_shapes

    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    images, labels, _ = make_shapes(256 if quick else 1024, seed=0)
    model.fit(images, labels, epochs=1, batch_size=64, verbose=0)
    return model


def main(argv=None):
    """Run the benchmark, print its table and return its rows.

    Args:
        argv: command-line arguments (``--quick``, ``--instances``, ``--rounds``); None
            reads ``sys.argv``.

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer layers, filters and steps")
    parser.add_argument("--instances", type=int, default=2, help="compiled copies timed")
    parser.add_argument("--rounds", type=int, default=None, help="timed turns per method")
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")  # the limit's compiled copies warn of retracing
    quick = args.quick
    timing = (args.instances, args.rounds or (1 if quick else 2))
    steps = 40
    rows = []
    demo = _demo_model(quick)
    unit = InputRange()
    for layer in ["conv3"] if quick else ["conv2", "conv3", "conv4"]:
        count = demo.get_layer(layer).filters
        _case("demo 64px", demo, layer, range(count), steps, unit, timing, 8 if quick else 16, rows)
    probes = demo_images(quick)
    found = {}
    for layer in ["conv3"] if quick else ["conv2", "conv3", "conv4"]:
        found[f"demo {layer}"] = preset_case("demo 64px", demo, layer, unit, probes, rows, quick)
    size = 48 if quick else 64
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    found["vgg"] = preset_case(
        f"VGG16 {size}px", vgg, "block3_conv1", InputRange.named("caffe"), None, rows, quick
    )
    best, reason = choose_default(found)
    rows.append(
        row("filters", f"default preset by measurement: {best}", float("nan"), "", None, reason)
    )
    mobilenet_rows(rows, quick)
    _case(
        f"VGG16 {size}px",
        vgg,
        "block3_conv1",
        range(8 if quick else 16),
        5 if quick else 10,
        InputRange.named("caffe"),
        timing,
        2 if quick else 4,
        rows,
    )
    print_rows(
        "filter patterns benchmark: act = mean activation reached (same measure for all)", rows
    )
    return rows


if __name__ == "__main__":
    main()

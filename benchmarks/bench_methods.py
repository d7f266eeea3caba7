"""Speed of the newer CAM and attribution methods against the peer implementations that run here.

Measured side by side in one run on the demo CNN (``demo.model.build_model``, trained one
short epoch on ``demo.shapes``), 8 probe images of 64x64 pixels, each method at equal
settings with its peer:

1. LayerCAM at ``conv4``: ours (``cam_details(method="layercam")``) against tf-keras-vis
   0.8.7's ``Layercam`` with its documented ``ReplaceToLinear`` (logits, as ours), same
   layer and classes. Its set-up (a model clone) is not counted.
2. SmoothGrad, 25 samples, noise 0.2 of the input range: ours (``attribution``) against
   tf-keras-vis's ``Saliency(smooth_samples=25, smooth_noise=0.2)`` with ``ReplaceToLinear``.
   The same 200 gradients; the maps differ by design (tf-keras-vis takes ``|g|``'s maximum
   over channels, ours the signed sum; different noise draws).
3. Integrated gradients, 64 steps from black; 4. occlusion, 8x8 patches, stride 4 (225
   occluded copies per image), grey baseline: ours against two loops written here (no peer
   of these runs on Keras 3): a straightforward per-copy loop (one compiled call of batch 1
   per path point or occluded copy, as tf-explain's callback loops over patches), and the
   per-image loop tf-explain's own explainers use (all points or copies of one image in one
   call: a compiled gradient for integrated gradients, ``model.predict`` for occlusion).
   The loops run the same model with its softmax made linear (a clone, not counted), so
   all compute the same maps: the note gives the largest difference to ours.

Ours is timed after its first call (the callback reuses its compiled functions every
epoch; the first call is printed). Every method runs once per round, methods taking
turns so that all see the same load; each one's best time counts. Goal: ours >= 2x
faster than each peer.

The peer is imported from ``artifacts/peers`` (``make peers``), never from the test
environment; without it the tf-keras-vis rows are skipped, with a note.

Run: ``python -m benchmarks.bench_methods [--quick] [--rounds 3]``.
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

from benchmarks.common import print_rows, row, use_peers
from tb_cnnvis.algorithms import attribution, cam, drift

LAYER = "conv4"


def _linear_clone(model):
    """A copy of ``model`` whose final softmax is linear: its outputs are the logits."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.layers[-1].activation = keras.activations.linear
    return copy


def _tf_keras_vis():
    """tf-keras-vis's modules, or None when ``make peers`` was not run."""
    if not use_peers():
        return None
    try:
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError:
        return None
    return Layercam, Saliency, ReplaceToLinear, CategoricalScore


def ig_per_copy(linear, images, classes, steps):
    """Integrated gradients with one compiled gradient call (batch of one) per path point."""

    @tf.function
    def gradient(point, index):
        with tf.GradientTape() as tape:
            tape.watch(point)
            score = linear(point, training=False)[0, index]
        return tape.gradient(score, point)

    maps = []
    for image, index in zip(images, classes):
        total = np.zeros_like(image)
        for k in range(steps):
            point = (k + 0.5) / steps * image  # the baseline is black: zeros
            total += gradient(tf.constant(point[None]), tf.constant(index)).numpy()[0]
        maps.append((image * total / steps).sum(axis=-1))
    return np.stack(maps)


def ig_per_image(linear, images, classes, steps):
    """Integrated gradients with all path points of one image in one compiled call."""

    @tf.function
    def mean_gradient(points, index):
        with tf.GradientTape() as tape:
            tape.watch(points)
            score = tf.reduce_sum(linear(points, training=False)[:, index])
        return tf.reduce_mean(tape.gradient(score, points), axis=0)

    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)[:, None, None, None]
    maps = []
    for image, index in zip(images, classes):
        mean = mean_gradient(tf.constant(alphas * image), tf.constant(index)).numpy()
        maps.append((image * mean).sum(axis=-1))
    return np.stack(maps)


def _occluded(image, patch, stride, grey):
    """Every occluded copy of one image and the windows, the last patch flush with the edge."""
    size = image.shape[0]
    starts = list(range(0, size - patch + 1, stride))
    starts += [size - patch] if starts[-1] + patch < size else []
    windows = [(top, left) for top in starts for left in starts]
    copies = []
    for top, left in windows:
        copy = image.copy()
        copy[top : top + patch, left : left + patch] = grey
        copies.append(copy)
    return np.stack(copies), windows


def _sensitivity(score, drops, windows, patch, size):
    """Drops averaged over the windows covering each pixel."""
    total, covered = np.zeros((size, size)), np.zeros((size, size))
    for drop, (top, left) in zip(drops, windows):
        total[top : top + patch, left : left + patch] += score - drop
        covered[top : top + patch, left : left + patch] += 1
    return total / covered


def occlusion_per_copy(linear, images, classes, patch, stride):
    """Occlusion with one compiled forward call (batch of one) per occluded copy."""
    logits = tf.function(lambda x: linear(x, training=False))
    maps = []
    for image, index in zip(images, classes):
        copies, windows = _occluded(image, patch, stride, 0.5)
        score = logits(tf.constant(image[None])).numpy()[0, index]
        drops = [logits(tf.constant(copy[None])).numpy()[0, index] for copy in copies]
        maps.append(_sensitivity(score, drops, windows, patch, image.shape[0]))
    return np.stack(maps)


def occlusion_per_image(linear, images, classes, patch, stride):
    """Occlusion with every occluded copy of one image in one ``model.predict``."""
    maps = []
    for image, index in zip(images, classes):
        copies, windows = _occluded(image, patch, stride, 0.5)
        score = linear.predict(image[None], verbose=0)[0, index]
        drops = linear.predict(copies, verbose=0)[:, index]
        maps.append(_sensitivity(score, drops, windows, patch, image.shape[0]))
    return np.stack(maps)


def _race(runs, rounds):
    """Best seconds and last result of each run, the runs taking turns ``rounds`` times."""
    seconds, results = {name: float("inf") for name in runs}, {}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    return seconds, results


def _first(run):
    """Seconds of the first call (tracing included)."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _speedups(case, runs, rounds, rows, compare):
    """Time ``runs`` (``"ours"`` first) and append one speed-up row per peer."""
    first = _first(runs["ours"])
    seconds, results = _race(runs, rounds)
    ours = seconds["ours"]
    rows.append(row("methods", f"{case}: ours", ours, "s", None, f"first call {first:.2f} s"))
    for name in [name for name in runs if name != "ours"]:
        rows.append(
            row("methods", f"{case}: speed-up over {name}", seconds[name] / ours, "x", ">= 2",
                f"{name} {seconds[name]:.2f} s; {compare(results['ours'], results[name])}")
        )  # fmt: skip


def _largest_difference(ours, other):
    """The largest difference between two sets of maps, relative to ours' largest value."""
    scale = float(np.abs(ours).max()) or 1.0
    return f"maps agree to {np.abs(np.asarray(ours) - other).max() / scale:.1e} of their range"


def _rank_agreement(ours, other):
    """The mean Spearman correlation of two sets of maps."""
    return f"mean rank correlation of the maps {float(drift.spearman(ours, other).mean()):.3f}"


def _demo(quick):
    """The demo CNN trained one short epoch, and probe images with their predicted classes."""
    from demo.model import build_model
    from demo.shapes import make_shapes

    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    images, labels, _ = make_shapes(256 if quick else 1024, seed=0)
    model.fit(images, labels, epochs=1, batch_size=64, verbose=0)
    probes, _, _ = make_shapes(4 if quick else 8, seed=1)
    return model, probes.astype(np.float32), model.predict(probes, verbose=0).argmax(axis=1)


def main(argv=None):
    """Run the benchmark, print its table and return its rows.

    Args:
        argv: command-line arguments (``--quick``, ``--rounds``); None reads ``sys.argv``.

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer probes, samples and steps")
    parser.add_argument("--rounds", type=int, default=None, help="timed turns per method")
    args = parser.parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    # tf-keras-vis calls the model on a list of one tensor, which Keras warns about.
    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
    rounds = args.rounds or (1 if args.quick else 3)
    samples, steps = (8, 16) if args.quick else (25, 64)
    model, x, classes = _demo(args.quick)
    linear = _linear_clone(model)
    peer = _tf_keras_vis()
    rows = []
    n = len(x)
    if peer is None:
        print("tf-keras-vis is not in artifacts/peers: make peers (its rows are skipped)")
    else:
        layercam, saliency, linearize, score = peer
        cam_peer = layercam(model, model_modifier=linearize(), clone=True)
        runs = {
            "ours": lambda: cam.cam_details(model, x, LAYER, classes, method="layercam").maps,
            "tf-keras-vis": lambda: cam_peer(score(list(classes)), x, penultimate_layer=LAYER),
        }
        _speedups(f"LayerCAM {LAYER}, {n} probes", runs, rounds, rows, _rank_agreement)
        grad_peer = saliency(model, model_modifier=linearize(), clone=True)
        runs = {
            "ours": lambda: attribution.attribution(
                model, x, "smoothgrad", classes, samples=samples, noise=0.2
            ),
            "tf-keras-vis": lambda: grad_peer(
                score(list(classes)), x, smooth_samples=samples, smooth_noise=0.2
            ),
        }
        _speedups(f"SmoothGrad, {n} probes x {samples} samples", runs, rounds, rows,
                  lambda ours, other: "different noise draws and reductions")  # fmt: skip
    runs = {
        "ours": lambda: attribution.attribution(
            model, x, "integrated_gradients", classes, steps=steps
        ),
        "a per-copy loop": lambda: ig_per_copy(linear, x, classes, steps),
        "a per-image loop": lambda: ig_per_image(linear, x, classes, steps),
    }
    _speedups(f"integrated gradients, {n} probes x {steps} steps", runs, rounds, rows,
              _largest_difference)  # fmt: skip
    patch, stride = 8, 4
    runs = {
        "ours": lambda: attribution.attribution(
            model, x, "occlusion", classes, patch_size=patch, stride=stride
        ),
        "a per-copy loop": lambda: occlusion_per_copy(linear, x, classes, patch, stride),
        "a per-image loop": lambda: occlusion_per_image(linear, x, classes, patch, stride),
    }
    _speedups(f"occlusion 8x8 stride 4, {n} probes x 225 copies", runs, rounds, rows,
              _largest_difference)  # fmt: skip
    print_rows("CAM and attribution methods benchmark (ratios measured in this run)", rows)
    return rows


if __name__ == "__main__":
    main()

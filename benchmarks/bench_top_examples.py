"""Cost of top-activating examples per logged epoch: 500 reference images, the demo CNN.

For each conv layer of the demo model (``demo.model.build_model``), ``top_examples`` is
run on 500 shape images (``demo.shapes.make_shapes``), k = 9, every filter, once to trace
(first call) and then timed, without and with the deconvnet projections (one backward
pass per (filter, example) pair). For scale, one training epoch of the same model on
``--train-images`` images is timed too; the ratios are measured in this one run. The
rows give each layer's time with projections (the note: without them, and the first
call) and the total over the layers in seconds and in training epochs of 10,000 images
(the demo's epoch, scaled from the measured one).

Run: ``python -m benchmarks.bench_top_examples [--quick] [--images 500 --k 9]``.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from benchmarks.common import print_rows, row
from demo.model import build_model
from demo.shapes import make_shapes
from tb_cnnvis import capture
from tb_cnnvis.algorithms.top_examples import top_examples

DEMO_IMAGES = 10000
"""Training images per epoch in the demo."""


def _timed(function, *args, **kwargs):
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def measure(images, k, batch_size, train_images, layers=None):
    """Rows: per conv layer the time of ``top_examples``, and the total per logged epoch.

    Args:
        images: reference images searched.
        k: examples per filter.
        batch_size: images per forward pass (and pairs per projection pass).
        train_images: images of the training epoch timed for scale.
        layers: the conv layers to measure (default: every ``conv*`` layer).

    Returns:
        A list of rows (see ``benchmarks.common.row``).
    """
    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    train_x, train_y, _ = make_shapes(train_images, seed=0)
    reference, _, _ = make_shapes(images, seed=1)
    model.fit(train_x[:64], train_y[:64], epochs=1, batch_size=64, verbose=0)  # compile
    epoch, _ = _timed(model.fit, train_x, train_y, epochs=1, batch_size=64, verbose=0)
    demo_epoch = epoch * DEMO_IMAGES / train_images
    rows, totals = [], [0.0, 0.0]
    chosen = layers or [name for name in capture.conv_layers(model) if name.startswith("conv")]
    options = {"k": k, "batch_size": batch_size}
    for layer in chosen:
        first, _ = _timed(top_examples, model, reference, layer, **options)
        plain, _ = _timed(top_examples, model, reference, layer, with_projections=False, **options)
        full, result = _timed(top_examples, model, reference, layer, **options)
        totals[0] += plain
        totals[1] += full
        field = "x".join(str(s) for s in result.receptive_field.size)
        rows.append(
            row("top_examples", f"{layer}: {len(result.filters)} filters, with projections",
                full, "s", None, f"without projections {plain:.3g} s; first call {first:.3g} s; "
                f"receptive field {field}; {result.count} images read")
        )  # fmt: skip
    scope = f"{len(chosen)} conv layers, {images} reference images, k={k}"
    rows += [
        row("top_examples", "all layers per logged epoch, with projections", totals[1], "s",
            None, f"{scope}; without projections {totals[0]:.3g} s"),
        row("top_examples", "all layers per logged epoch / demo training epoch",
            totals[1] / demo_epoch, "epochs", None,
            f"demo epoch {demo_epoch:.1f} s (10,000 images, scaled from {train_images}); "
            f"without projections {totals[0] / demo_epoch:.3g}"),
    ]  # fmt: skip
    return rows


def main(argv=None):
    """Run the benchmark, print its table and return its rows.

    Args:
        argv: command-line arguments (``--quick``, ``--images``, ``--k``, ``--batch-size``,
            ``--train-images``); None reads ``sys.argv``.

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 images, k=4, conv1 and conv2")
    parser.add_argument("--images", type=int, default=None, help="reference images (500)")
    parser.add_argument("--k", type=int, default=None, help="examples per filter (9)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=None, help="images per fit epoch")
    args = parser.parse_args(argv)
    images = args.images or (64 if args.quick else 500)
    k = args.k or (4 if args.quick else 9)
    train_images = args.train_images or (256 if args.quick else 2000)
    layers = ["conv1", "conv2"] if args.quick else None
    rows = measure(images, k, args.batch_size, train_images, layers)
    print_rows(f"top_examples benchmark: {images} reference images, k={k}", rows)
    return rows


if __name__ == "__main__":
    main()

"""Cost of top-activating examples per logged epoch: 500 reference images, the demo CNN.

For each conv layer of the demo model (``demo.model.build_model``), ``top_examples`` is
run on 500 shape images (``demo.shapes.make_shapes``), k = 9, every filter, once to trace
(first call) and then timed, without and with the deconvnet projections (one backward
pass per (filter, example) pair). For scale, one training epoch of the same model on
``--train-images`` images is timed too; the ratios are measured in this one run.

Run: ``python -m benchmarks.bench_top_examples [--images 500 --k 9 --train-images 2000]``.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras

from demo.model import build_model
from demo.shapes import make_shapes
from tb_cnnvis import capture
from tb_cnnvis.algorithms.top_examples import top_examples


def _timed(function, *args, **kwargs):
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="reference images")
    parser.add_argument("--k", type=int, default=9, help="examples per filter")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=2000, help="images per fit epoch")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    train_x, train_y, _ = make_shapes(args.train_images, seed=0)
    reference, _, _ = make_shapes(args.images, seed=1)
    model.fit(train_x[:64], train_y[:64], epochs=1, batch_size=64, verbose=0)  # compile
    epoch, _ = _timed(model.fit, train_x, train_y, epochs=1, batch_size=64, verbose=0)

    print(f"top_examples: {args.images} reference images {reference.shape[1:]}, k={args.k}")
    print(f"one training epoch on {args.train_images} images: {epoch:.2f} s")
    header = "layer   filters  field   first call  no projections  with projections  ratio"
    print(header)
    totals = [0.0, 0.0]
    for layer in capture.conv_layers(model):
        if not layer.startswith("conv"):
            continue
        options = {"k": args.k, "batch_size": args.batch_size}
        first, _ = _timed(top_examples, model, reference, layer, **options)
        plain, _ = _timed(top_examples, model, reference, layer, with_projections=False, **options)
        full, result = _timed(top_examples, model, reference, layer, **options)
        totals[0] += plain
        totals[1] += full
        field = "x".join(str(s) for s in result.receptive_field.size)
        print(
            f"{layer:7s} {len(result.filters):7d}  {field:6s} {first:9.2f} s {plain:12.2f} s "
            f"{full:14.2f} s  {full / plain:6.1f}"
        )
    print(
        f"all conv layers per logged epoch: {totals[0]:.2f} s without projections "
        f"({totals[0] / epoch:.2f} training epochs), {totals[1]:.2f} s with "
        f"({totals[1] / epoch:.2f} training epochs)"
    )


if __name__ == "__main__":
    main()

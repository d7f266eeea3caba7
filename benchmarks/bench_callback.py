"""Cost of CnnVisCallback during ``fit``: training-time overhead and memory over many epochs.

1. Overhead: the demo CNN (``demo.model.build_model``) on the synthetic shapes
   (``demo.shapes.make_shapes``) is trained twice from the same seed, without and with the
   callback at its defaults; the ratio of the two fit times is printed (goal: < 1.15).
2. Per view: the seconds each view took per logged step (from the callback's own timings),
   and their sum as a fraction of the rest of the fit: unlike the ratio of two fits, this
   share is not skewed when other processes load the machine during one of them.
3. Memory: a small model is trained for 30 epochs with every view logged every epoch; the
   growth of resident memory after warm-up (epoch 5) is printed (goal: a few MB).

Run: ``python -m benchmarks.bench_callback [--epochs 15 --images 10000]`` (the demo's
size; smaller runs weigh the one-off tracing at step 0 more). Numbers depend
on the machine; the ratios are measured within one run.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from tb_cnnvis import CnnVisCallback, views


def _demo_model_and_data(images, size=64):
    """The demo's model and data, or a stand-in of the same shape while they are missing."""
    try:
        from demo.shapes import CLASS_NAMES, make_shapes

        x, y, _ = make_shapes(images, seed=0)
        names = list(CLASS_NAMES)
    except ImportError:
        rng = np.random.default_rng(0)
        x, y = rng.random((images, size, size, 3), dtype=np.float32), rng.integers(0, 6, images)
        names = [f"class{i}" for i in range(6)]
    try:
        from demo.model import build_model

        builder = build_model
    except ImportError:

        def builder():
            layers = [keras.Input(x.shape[1:])]
            for filters in (16, 32, 64, 64):
                layers += [
                    keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
                    keras.layers.MaxPooling2D(),
                ]
            layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(names))]
            model = keras.Sequential(layers)
            model.compile(
                "adam",
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            return model

    return builder, x.astype(np.float32), y, names


def _fit_seconds(builder, x, y, epochs, callbacks):
    """Seconds of one ``fit`` of a fresh model from seed 0."""
    keras.utils.set_random_seed(0)
    model = builder()
    if not getattr(model, "compiled", False):
        model.compile("adam", "sparse_categorical_crossentropy")
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=64, callbacks=callbacks, verbose=0)
    return time.perf_counter() - start


def overhead(epochs, images):
    """Print the fit-time ratio with/without the default callback and the per-view costs."""
    builder, x, y, names = _demo_model_and_data(images)
    probes, labels = x[:8], y[:8]
    base = _fit_seconds(builder, x, y, epochs, [])
    with tempfile.TemporaryDirectory() as logdir:
        cb = CnnVisCallback(logdir, probes, labels, class_names=names)
        with_cb = _fit_seconds(builder, x, y, epochs, [cb])
        timings = _timings(logdir)
    print(f"overhead: {epochs} epochs x {len(x)} images of {x.shape[1:]}")
    print(f"  fit without callback   {base:8.2f} s")
    print(f"  fit with CnnVisCallback {with_cb:7.2f} s   ratio {with_cb / base:.3f}  (goal < 1.15)")
    spent = sum(sum(seconds) for seconds in timings.values())
    print(
        f"  time inside the callback's views {spent:7.2f} s = {spent / (with_cb - spent):.3f} of "
        "the training time in the same fit (robust to other load on the machine)"
    )
    for view, seconds in sorted(timings.items()):
        first, rest = seconds[0], seconds[1:] or [float("nan")]
        print(
            f"  {view:<18} step 0 (traces) {first:6.3f} s, later steps {np.mean(rest):6.3f} s "
            f"({len(seconds)} logged steps)"
        )


def _timings(logdir):
    """``{view: [seconds per logged step]}`` read back from the ``cnnvis_seconds`` scalars."""
    from tb_cnnvis.metadata import TIMING_TAG_PREFIX
    from tb_cnnvis.testing import data_provider

    provider, ctx, eid = data_provider(logdir, {"scalars": 1000})
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=1000)
    return {
        tag[len(TIMING_TAG_PREFIX) :]: [datum.value for datum in series]
        for tag, series in scalars.get("cnnvis", {}).items()
        if tag.startswith(TIMING_TAG_PREFIX)
    }


def memory(epochs=30, warmup=5):
    """Print the RSS growth over ``epochs`` epochs with every view logged every epoch."""
    size = 32
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.random((128, size, size, 3), dtype=np.float32), rng.integers(0, 3, 128)
    rss = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: rss.append(_rss()))
    with tempfile.TemporaryDirectory() as logdir:
        cb = CnnVisCallback(
            logdir, x[:4], y[:4], views=views.VIEWS, filters_every_n_epochs=1, filter_steps=8
        )
        model.fit(x, y, epochs=epochs, batch_size=32, callbacks=[cb, record], verbose=0)
    growth = (rss[-1] - rss[warmup - 1]) / 2**20
    print(f"memory: {epochs} epochs, every view every epoch")
    print(
        f"  RSS after epoch {warmup}: {rss[warmup - 1] / 2**20:.1f} MiB, after epoch "
        f"{epochs}: {rss[-1] / 2**20:.1f} MiB, growth {growth:+.1f} MiB (goal: a few MiB)"
    )


def _rss():
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    overhead(args.epochs, args.images)
    if not args.skip_memory:
        memory()


if __name__ == "__main__":
    main()

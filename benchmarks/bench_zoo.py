"""The default callback on the networks people train: a zoo of ``keras.applications`` families.

Each network (``weights=None``) is a base inside a small classifier (global pooling, 10
classes); one fully-convolutional model (``Input((None, None, 3))``) is shown 128 px
probes. With the callback at its defaults (its cost budget included) and 8 probes, a real
``fit`` of 2 epochs is measured in one process:

- one training step of batch 32 (``train_on_batch``, median of 3 after 2 warm-ups): the
  unit of the ratios, so they hold on a slower or faster machine;
- step 0 (every default view, filter patterns included, with the first traces) and an
  ordinary logged epoch (step 1: the views due between filter-pattern epochs), in
  training steps; the event-file MB of that ordinary epoch;
- step 0 against Keras's own first training step (its compile included), for scale;
- the same two against the allowances the budget plans to (``Budget()``'s defaults on the
  measured step: 30 training steps; 3 training steps or 5 % of the epoch's training time;
  ``--floors``: at least 10 s and 1 s);
- what the budget reduced (the ``budget`` facts of the steps), and the warnings the
  callback gave during ``fit`` (a view or metric that failed).

Each network runs in a process of its own, as a user's training script would: in one
process each network's traces ran slower after the others' (Keras keeps every training
step it traced: TensorFlow's gradient registry holds them), up to 2x on MobileNetV3Small's
step 0 after four networks. ``--one-process`` runs them all in this one.

Goals (issue "Every network users train"): step 0 <= 30 and an ordinary epoch <= 3
training steps on every network; no failure.

Run: ``python -m benchmarks.bench_zoo [--size 96] [--models VGG16,ResNet50]``.
"""

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.bench_applications import run_bytes, train_step_seconds
from benchmarks.common import print_rows, row

FAMILIES = (
    "VGG16",
    "ResNet50",
    "ResNet50V2",
    "MobileNetV2",
    "MobileNetV3Small",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ConvNeXtTiny",
    "DenseNet121",
    "InceptionV3",
    "Xception",
    "NASNetMobile",
    "FullyConvolutional",
)
"""The networks, in the order of the table (Keras 3's applications have no RegNet)."""

SMALLEST = {"InceptionV3": 75, "Xception": 71}
"""Networks that refuse smaller inputs: their smallest size."""


def fully_convolutional(classes=10):
    """A classifier that takes images of any size: five convolutions, pooling, a head."""
    import keras

    x = keras.Input((None, None, 3))
    y = x
    for i, width in enumerate((16, 32, 32, 64, 64)):
        y = keras.layers.Conv2D(width, 3, strides=2 if i else 1, padding="same")(y)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.ReLU()(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(classes, activation="softmax")(y))


def classifier(name, size, classes=10, **kwargs):
    """A ``keras.applications`` base (weights=None) with global pooling and a dense head."""
    import keras

    if name == "FullyConvolutional":
        model = fully_convolutional(classes)
    else:
        size = max(size, SMALLEST.get(name, 0))
        base = getattr(keras.applications, name)(
            weights=None, include_top=False, input_shape=(size, size, 3), **kwargs
        )
        x = keras.Input((size, size, 3))
        y = keras.layers.GlobalAveragePooling2D()(base(x))
        model = keras.Model(x, keras.layers.Dense(classes, activation="softmax")(y))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, size


def reductions(logdir, step):
    """``"view: what it reduced"`` for the views the budget reduced at ``step`` (the
    callback's ``log_dir``)."""
    from tb_cnnvis.testing import read_run

    found = {}
    for tag, steps in read_run(logdir).items():
        facts = steps.get(step, ({}, []))[0]
        if facts.get("budget"):
            kind = tag.split("/")[0]
            found[kind] = ", ".join(f"{k} {v}" for k, v in sorted(facts["budget"].items()))
    return "; ".join(f"{kind}: {said}" for kind, said in sorted(found.items())) or "none"


class _Retracing(logging.Handler):
    """Keeps TensorFlow's "triggered tf.function retracing" warnings."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        if "retracing" in record.getMessage():
            self.messages.append(record.getMessage())


def measure(
    name, size, workdir, batches=4, budgeted=True, all_views=False, verbose=0, floors=False
):
    """Rows of one network (``budgeted``: with the default budget, else ``budget=None``;
    ``all_views``: every view, top examples on 64 reference images, not the defaults;
    ``floors``: the default budget with floors of 10 s at step 0 and 1 s later)."""
    from tb_cnnvis import CnnVisCallback
    from tb_cnnvis.budget import Budget

    model, size = classifier(name, size)
    began = time.perf_counter()  # Keras's first training step: its own compile included
    model.train_on_batch(np.zeros((32, size, size, 3), np.float32), np.zeros(32))
    keras_first = time.perf_counter() - began
    train = train_step_seconds(model, size)
    rng = np.random.default_rng(0)
    shown = 128 if name == "FullyConvolutional" else size
    probes = rng.random((8, shown, shown, 3)).astype(np.float32)
    logdir = Path(workdir) / name
    timed, epoch_training = {}, []

    class Timed(CnnVisCallback):
        def on_epoch_begin(self, epoch, logs=None):
            super().on_epoch_begin(epoch, logs)  # step 0 is logged here, before training
            self._began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_training.append(time.perf_counter() - self._began)
            super().on_epoch_end(epoch, logs)

        def _log(self, step, due):
            start = time.perf_counter()
            before = run_bytes(self.run_dir)
            super()._log(step, due)
            timed[step] = (time.perf_counter() - start, run_bytes(self.run_dir) - before)

    rule = Budget(min_seconds=(10.0, 1.0)) if floors else Budget()
    kwargs = {"verbose": verbose, "budget": rule if budgeted else None}
    if all_views:
        from tb_cnnvis import views

        kwargs["views"] = views.ALL_VIEWS
        kwargs["reference_images"] = rng.random((64, shown, shown, 3)).astype(np.float32)
    x = rng.random((32 * batches, size, size, 3)).astype(np.float32)
    y = np.arange(len(x)) % 10
    retraced = _Retracing()
    logging.getLogger("tensorflow").addHandler(retraced)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            callback = Timed(str(logdir), probes, np.arange(8) % 10, **kwargs)
            model.fit(x, y, epochs=2, batch_size=32, callbacks=[callback], verbose=0)
    finally:
        logging.getLogger("tensorflow").removeHandler(retraced)
    said = [str(w.message) for w in caught if str(w.message).startswith("cnnvis:")]
    cost_warnings = [text for text in said if "per logged step even reduced" in text]
    failed = [text for text in said if "failed at step" in text]
    step0, _ = timed[0]
    epoch, epoch_bytes = timed.get(1, (float("nan"), 0))
    first = rule.allowance(True, train)  # the allowances planned to, on the measured step
    ordinary = rule.allowance(False, train, epoch_training[0] if epoch_training else None)
    note = f"{size} px" + (" (probes 128 px)" if name == "FullyConvolutional" else "")
    name = name if budgeted else f"{name} (budget=None)"
    name = f"{name} (floors 10 s / 1 s)" if floors else name
    return [
        row("zoo", f"{name}: training step (batch 32)", train, "s", None, note),
        row("zoo", f"{name}: step 0 / training step", step0 / train, "x", "<= 30",
            f"{step0:.1f} s; reduced: {reductions(logdir, 0)}"),
        row("zoo", f"{name}: ordinary epoch / training step", epoch / train, "x", "<= 3",
            f"{epoch:.1f} s; reduced: {reductions(logdir, 1)}"),
        row("zoo", f"{name}: step 0 / Keras's first training step", step0 / keras_first, "x",
            None, f"Keras's first step (its compile) {keras_first:.1f} s"),
        row("zoo", f"{name}: step 0 / its allowance", step0 / first, "x", "<= 1",
            f"allowance {first:.1f} s: {rule.first_steps:g} training steps"
            + (f", at least {rule.min_seconds[0]:g} s" if floors else "")),
        row("zoo", f"{name}: ordinary epoch / its allowance", epoch / ordinary, "x", "<= 1",
            f"allowance {ordinary:.1f} s: {rule.steps:g} training steps or "
            f"{rule.fraction:.0%} of the epoch"
            + (f", at least {rule.min_seconds[1]:g} s" if floors else "")),
        row("zoo", f"{name}: MB per ordinary epoch", epoch_bytes / 1e6, "MB", None,
            "event file"),
        row("zoo", f"{name}: failures in fit", float(len(failed)), "", "<= 0",
            failed[0][:160] if failed else f"{len(said)} cnnvis warnings in all"),
        row("zoo", f"{name}: cost warnings at set_model", float(len(cost_warnings)), "", None,
            cost_warnings[0][:160] if cost_warnings else "none"),
        row("zoo", f"{name}: TensorFlow retracing warnings", float(len(retraced.messages)), "",
            "<= 0", retraced.messages[0][:160] if retraced.messages else "none"),
    ]  # fmt: skip


def _in_own_process(name, size, workdir, settings):
    """``measure`` in a fresh Python process (spawned: nothing of this one is shared)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (name, size, workdir), settings)


def main(argv=None):
    """Measure the zoo and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--models", default=",".join(FAMILIES))
    parser.add_argument("--quick", action="store_true", help="two networks only")
    parser.add_argument("--no-budget", action="store_true", help="budget=None, to compare")
    parser.add_argument("--all-views", action="store_true", help="every view, not the defaults")
    parser.add_argument("--verbose", action="store_true", help="the callback's verbose lines")
    parser.add_argument("--floors", action="store_true", help="Budget(min_seconds=(10, 1))")
    parser.add_argument("--one-process", action="store_true", help="every network in this one")
    args = parser.parse_args(argv)
    names = args.models.split(",") if not args.quick else ["MobileNetV2", "FullyConvolutional"]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            settings = {
                "budgeted": not args.no_budget, "all_views": args.all_views,
                "verbose": int(args.verbose), "floors": args.floors,
            }  # fmt: skip
            try:
                if args.one_process:
                    rows += measure(name, args.size, workdir, **settings)
                else:
                    rows += _in_own_process(name, args.size, workdir, settings)
            except Exception as error:  # one network must not stop the table
                rows.append(row("zoo", f"{name}: failed", float("nan"), "", None,
                                f"{type(error).__name__}: {str(error)[:160]}"))  # fmt: skip
            print_rows(f"zoo so far ({name} done)", rows[-10:])
    print_rows("Default callback on the zoo", rows)
    return rows


if __name__ == "__main__":
    main()

"""Cost of CnnVisCallback during ``fit``: time overhead and event bytes on the demo, memory.

1. Overhead, on the demo as ``python -m demo.run`` sets it up: the demo CNN
   (``demo.model.build_model``) on the generated shapes (``demo.shapes``) with a validation
   split, Adam with cosine decay, batch 64; the callback at its defaults plus the demo's
   settings (``demo.run.DEMO_CNNVIS_OPTIONS``, and as ``demo.train`` builds it: 8 probes
   from every class, their object masks, 300 held-out reference images, input range 0..1).
   Fresh models from the same seed, on the same data, are fitted without (A) and with (B)
   the callback, taking turns A B B A ... (so that a load that drifts during the run weighs
   on both alike; other processes may share the machine). Reported: the ratio of the summed
   fit times B / A (goal < 1.15); the share of B's fit time spent inside the callback's
   views and metrics (its ``cnnvis_seconds/*`` scalars), which other load skews less; and
   the bytes the callback wrote per logged epoch (size of ``<logdir>/cnnvis`` / steps).
   The demo trains 15 epochs on 10,000 images (about 2 x 2 minutes on two cores); this
   runs 6 epochs on its 10,000 images by default (``--epochs``, ``--images``), which makes
   the ratio larger, not smaller: step 0 (with the one-off tracing) and the last step
   (every view) weigh more in a short fit, as do filter patterns (every 3 epochs) and top
   examples (every 5). A row projects the ratio to the demo's 15 epochs from the measured
   epoch and per-view times. When ``demo/logs`` holds a run of ``python -m demo.run``,
   its own share of time inside the views and bytes per logged epoch are read back too.
2. Memory: a small model is trained for 30 epochs with every view logged every epoch; the
   growth of resident memory after warm-up (epoch 5) is reported (goal < 5 MiB).

Run: ``python -m benchmarks.bench_callback [--quick] [--epochs 15 --images 10000]``.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from benchmarks.common import print_rows, row
from tb_cnnvis import CnnVisCallback, metadata, views

DEMO_EPOCHS, DEMO_IMAGES = 15, 10000
DEMO_LOGS = Path(__file__).resolve().parents[1] / "demo" / "logs"


def demo_setup(images, seed=0):
    """``(train, validation, callback options)`` as the demo sets them up, at ``images`` size."""
    from demo.run import DEMO_CNNVIS_OPTIONS
    from demo.shapes import CLASS_NAMES, make_shapes
    from demo.train import N_REFERENCE, pick_probes

    n_val = images // 5  # the demo's 10,000 + 2,000
    x, y, masks = make_shapes(images + n_val, seed=seed)
    order = np.random.default_rng(seed).permutation(len(y))
    val, fit = order[:n_val], order[n_val:]
    probes = pick_probes(y[val], 8, seed)
    options = {
        "class_names": list(CLASS_NAMES),
        "input_range": (0.0, 1.0),
        "reference_images": x[val][:N_REFERENCE],
        "probe_masks": masks[val][probes],
        **DEMO_CNNVIS_OPTIONS,
    }
    return (x[fit], y[fit]), (x[val], y[val]), (x[val][probes], y[val][probes], options)


def fit_seconds(train, validation, epochs, callbacks, seed=0):
    """``(seconds, [seconds per epoch])`` of one ``fit`` of a fresh demo CNN from ``seed``.

    The model is compiled as the demo does; an epoch's time includes the callbacks' work.
    """
    from demo.model import build_model
    from demo.train import DEMO_LEARNING_RATE

    keras.utils.set_random_seed(seed)
    model = build_model()
    steps = epochs * -(-len(train[1]) // 64)
    schedule = keras.optimizers.schedules.CosineDecay(DEMO_LEARNING_RATE, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    ends = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter())
    )
    start = time.perf_counter()
    model.fit(*train, epochs=epochs, batch_size=64, validation_data=validation,
              callbacks=[*callbacks, timer], verbose=0)  # fmt: skip
    return time.perf_counter() - start, list(np.diff([start, *ends]))


def timings(logdir):
    """``{view: {step: seconds}}`` read back from the callback's ``cnnvis_seconds`` scalars."""
    from tb_cnnvis.testing import data_provider

    provider, ctx, eid = data_provider(logdir, {"scalars": 1000})
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=1000)
    prefix = metadata.TIMING_TAG_PREFIX
    return {
        tag[len(prefix) :]: {datum.step: datum.value for datum in series}
        for tag, series in scalars.get(metadata.RUN_SUBDIR, {}).items()
        if tag.startswith(prefix)
    }


def _due_steps(view, options, epochs):
    """The steps at which the callback logs ``view`` in a fit of ``epochs`` epochs."""
    every = {
        "filter_patterns": options.get("filters_every_n_epochs", 10),
        "top_examples": options.get("top_examples_every_n_epochs", 5),
    }.get(view, options.get("every_n_epochs", 1))
    return [s for s in range(epochs + 1) if s == 0 or s == epochs or s % every == 0]


def projected_ratio(per_view, first_epoch, epoch, options, epochs=DEMO_EPOCHS):
    """The fit-time ratio for ``epochs`` epochs, from measured epoch and per-view times.

    Without the callback, the fit takes ``first_epoch`` (one-off tracing included) plus
    ``epoch`` seconds per later epoch. With it, each view adds its step-0 time once
    (tracing included) and the median of its later steps at every other step it is due
    (metrics: at every logged step).
    """
    total = 0.0
    for view, by_step in per_view.items():
        later = [s for step, s in by_step.items() if step > 0] or [by_step[0]]
        due = _due_steps(view, options, epochs) if view != "metrics" else range(epochs + 1)
        total += by_step.get(0, 0.0) + (len(due) - 1) * float(np.median(later))
    base = first_epoch + (epochs - 1) * epoch
    return (base + total) / base


def overhead(epochs, images, rounds):
    """Rows: fit-time ratio with / without the callback, view share, bytes per logged epoch."""
    train, validation, (probes, labels, options) = demo_setup(images)
    fit_seconds((train[0][:256], train[1][:256]), None, 1, [])  # process-wide one-off costs
    seconds, epoch_seconds = {"A": [], "B": []}, []
    with tempfile.TemporaryDirectory(prefix="bench_callback_") as workdir:
        for turn in range(rounds):
            for kind in "AB" if turn % 2 == 0 else "BA":
                logdir = os.path.join(workdir, f"{kind}{turn}")
                callbacks = []
                if kind == "B":
                    callbacks = [CnnVisCallback(logdir, probes, labels, **options)]
                total, per_epoch = fit_seconds(train, validation, epochs, callbacks)
                seconds[kind].append(total)
                if kind == "A":
                    epoch_seconds.append(per_epoch)
        run_dir = Path(workdir) / f"B{rounds - 1}" / metadata.RUN_SUBDIR
        size = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file())
        per_view = timings(str(run_dir.parent))
    base, with_cb = sum(seconds["A"]), sum(seconds["B"])
    steps = {step for by_step in per_view.values() for step in by_step}
    inside = sum(sum(by_step.values()) for by_step in per_view.values())
    share = inside / seconds["B"][-1]
    size_note = f"{epochs} epochs x {len(train[1])} images + {len(validation[1])} validation"
    turns = ", ".join(f"{b / a:.3f}" for a, b in zip(seconds["A"], seconds["B"]))
    order = " ".join("AB" if t % 2 == 0 else "BA" for t in range(rounds))
    scale = DEMO_IMAGES / len(train[1])  # epoch times scale with the images, not one-off costs
    epoch = float(np.median([e for fit in epoch_seconds for e in fit[1:]] or [np.nan]))
    first = float(np.median([fit[0] for fit in epoch_seconds])) + (scale - 1) * epoch
    projected = projected_ratio(per_view, first, epoch * scale, options)
    slowest = max(per_view, key=lambda view: sum(per_view[view].values()))
    return [
        row("callback", "demo fit time, with / without callback", with_cb / base, "x", "< 1.15",
            f"{size_note}; order {order}; per turn {turns}; summed fits {with_cb:.0f} s / "
            f"{base:.0f} s"),
        row("callback", "demo fit time spent inside views and metrics", share, "share",
            "< 0.13", f"{inside:.1f} s of {seconds['B'][-1]:.0f} s (last B fit; "
            f"share 0.13 = ratio 1.15); most: {slowest} {sum(per_view[slowest].values()):.1f} s"),
        row("callback", "demo ratio projected to 15 epochs x 10,000 images", projected, "x",
            "< 1.15", f"from this run's epoch times (first {first:.1f} s, then "
            f"{epoch * scale:.1f} s) and per-view step times (step 0 once, median of later "
            "steps at each due step)"),
        row("callback", "event bytes per logged epoch (demo)", size / len(steps), "bytes", None,
            f"{size / 2**20:.2f} MiB in the last B fit's cnnvis run over {len(steps)} logged steps"),
    ]  # fmt: skip


def demo_log_rows(logdir):
    """Rows read back from a log directory written by ``python -m demo.run`` ([] if none).

    The fit's span runs from the start of step 0 (the wall time of its timing scalars less
    the seconds they record) to the last timing scalar (written after the last epoch).
    """
    run_dir = Path(logdir) / metadata.RUN_SUBDIR
    if not any(run_dir.glob("events.out.tfevents.*")):
        return []
    from tb_cnnvis.testing import data_provider

    provider, ctx, eid = data_provider(str(logdir), {"scalars": 1000})
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=1000)
    data = [
        datum
        for tag, values in scalars.get(metadata.RUN_SUBDIR, {}).items()
        if tag.startswith(metadata.TIMING_TAG_PREFIX)
        for datum in values
    ]
    if not data:
        return []
    first = [datum for datum in data if datum.step == 0]
    start = min(d.wall_time for d in first) - sum(d.value for d in first)
    span = max(d.wall_time for d in data) - start
    inside = sum(d.value for d in data)
    steps = len({d.step for d in data})
    size = sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file())
    shown = os.path.relpath(logdir, DEMO_LOGS.parents[1])
    source = f"{shown} as written by python -m demo.run ({steps - 1} epochs), read back"
    return [
        row("callback", "demo logs: fit time spent inside views and metrics", inside / span,
            "share", "< 0.13", f"{source}: {inside:.1f} s of a {span:.0f} s fit; ratio about "
            f"{span / (span - inside):.3f} if the views' time adds to training"),
        row("callback", "demo logs: event bytes per logged epoch", size / steps, "bytes", None,
            f"{size / 2**20:.2f} MiB in {shown}/{metadata.RUN_SUBDIR} over {steps} logged steps"),
    ]  # fmt: skip


def memory(epochs=30, warmup=5):
    """Rows: resident memory after warm-up and its growth over ``epochs`` epochs."""
    size = 32
    keras.utils.set_random_seed(0)
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
    with tempfile.TemporaryDirectory(prefix="bench_callback_memory_") as logdir:
        cb = CnnVisCallback(
            logdir, x[:4], y[:4], views=views.ALL_VIEWS, filters_every_n_epochs=1, filter_steps=8,
            reference_images=x[:64], top_examples_every_n_epochs=1,
        )  # fmt: skip
        model.fit(x, y, epochs=epochs, batch_size=32, callbacks=[cb, record], verbose=0)
    growth = (rss[-1] - rss[warmup - 1]) / 2**20
    note = f"small CNN, every view ({len(cb.views)}) every epoch, {epochs} epochs"
    return [
        row("callback", f"RSS after warm-up (epoch {warmup})", rss[warmup - 1] / 2**20, "MiB",
            None, note),
        row("callback", f"RSS growth, epoch {warmup} to {epochs}", growth, "MiB", "< 5",
            f"{growth / (epochs - warmup) * 1024:+.0f} KiB per epoch"),
    ]  # fmt: skip


def _rss():
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv=None):
    """Run the benchmark, print its table and return its rows.

    Args:
        argv: command-line arguments (``--quick``, ``--epochs``, ``--images``, ``--rounds``,
            ``--skip-memory``); None reads ``sys.argv``.

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs x 1,000 images")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 6)")
    parser.add_argument("--images", type=int, default=None, help="training images (10,000)")
    parser.add_argument("--rounds", type=int, default=None, help="A/B turns (default 2: A B B A)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--demo-logs", default=str(DEMO_LOGS), help="a demo log directory to read back, if any"
    )
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 6)
    images = args.images or (1000 if args.quick else DEMO_IMAGES)
    rounds = args.rounds or (1 if args.quick else 2)
    rows = overhead(epochs, images, rounds) + demo_log_rows(args.demo_logs)
    if not args.skip_memory:
        rows += memory(10, 3) if args.quick else memory()
    print_rows(f"callback benchmark: overhead on the demo ({epochs} epochs), memory", rows)
    return rows


if __name__ == "__main__":
    main()

"""The callback on real-size networks: MobileNetV2, ResNet50 and EfficientNetB0 at 224 px.

Each network (``keras.applications``, ``weights=None``: no weights can be downloaded here)
is a base inside a small classifier (global pooling, 10 classes), as people fine-tune them.
With the callback at its defaults and 8 probes, measured in one process:

- one training step of batch 32 (``train_on_batch``, median of 5 after 2 warm-ups): the
  unit the view costs are divided by, so the ratios hold on a slower or faster machine;
- step 0 (every default view, filter patterns included, with the first traces) and an
  ordinary logged epoch (the views due between filter-pattern epochs: feature maps,
  Grad-CAM, deconvnet), in seconds and in training steps;
- the event-file bytes of step 0 and of an ordinary epoch;
- for MobileNetV2, a log of 50 logged epochs (the ordinary epoch's records repeated with
  their steps renumbered) served by ``tensorboard`` under both loaders: its resident
  memory once every series and image has been read.

Goals (issue "Real-size networks"): MobileNetV2 step 0 at most 60 training steps, an
ordinary epoch at most 5, at most 20 MB at step 0 and 8 MB per ordinary epoch.

Run: ``python -m benchmarks.bench_applications [--quick] [--models MobileNetV2,ResNet50]``.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.common import print_rows, row

MODELS = {
    "MobileNetV2": "tf",
    "ResNet50": "caffe",
    "EfficientNetB0": "byte",
}
"""Each network and the input range its ``preprocess_input`` expects."""

GOALS = {"step0": 60, "epoch": 5, "step0_mb": 20, "epoch_mb": 8}


def classifier(name, size, classes=10):
    """A ``keras.applications`` base (weights=None) with global pooling and a dense head."""
    import keras

    base = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    x = keras.Input((size, size, 3))
    y = keras.layers.GlobalAveragePooling2D()(base(x))
    model = keras.Model(x, keras.layers.Dense(classes, activation="softmax")(y))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def images_for(input_range, count, size, seed=0):
    """Smooth random images in the model's input scale."""
    from tb_cnnvis.input_range import InputRange

    rng = np.random.default_rng(seed)
    coarse = rng.random((count, size // 16, size // 16, 3)).astype(np.float32)
    unit = np.kron(coarse, np.ones((1, 16, 16, 1), np.float32))
    return np.asarray(InputRange.resolve(input_range).from_unit(unit), np.float32)


def train_step_seconds(model, size, repeats=3, batch=32, seconds=2.0):
    """Median seconds of ``train_on_batch`` on a batch of ``batch`` (after two warm-up steps):
    ``repeats`` steps, more (up to 15) while they sum to under ``seconds`` (a 0.1 s step
    varies by 2x from one run to the next on a shared machine)."""
    x = np.random.default_rng(1).random((batch, size, size, 3)).astype(np.float32)
    y = np.arange(batch) % 10
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    while len(times) < repeats or (sum(times) < seconds and len(times) < 15):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_bytes(run_dir):
    """Bytes of a run's log: its event files and its pixel files (format 2), not the model
    snapshots the callback keeps for the explore mode."""
    root = Path(run_dir)
    logged = [*root.glob("events.out.tfevents.*"), *root.glob("plugins/cnnvis/pixels/*")]
    return sum(path.stat().st_size for path in logged if path.is_file())


def measure(name, size, repeats, workdir):
    """Rows of one network, and its log directory."""
    from tb_cnnvis import CnnVisCallback

    input_range = MODELS[name]
    model = classifier(name, size)
    train = train_step_seconds(model, size, repeats)
    probes = images_for(input_range, 8, size)
    logdir = Path(workdir) / name
    callback = CnnVisCallback(str(logdir), probes, np.arange(8) % 10, input_range=input_range)
    start = time.perf_counter()
    callback.set_model(model)
    set_up = time.perf_counter() - start
    start = time.perf_counter()
    callback.log_step(0)
    step0 = time.perf_counter() - start
    bytes0 = run_bytes(callback.run_dir)
    ordinary = [view for view in callback.views if view != "filter_patterns"]
    start = time.perf_counter()
    callback.log_step(1, ordinary)
    epoch = time.perf_counter() - start
    callback.close()
    bytes1 = run_bytes(callback.run_dir) - bytes0
    layers = {kind: len(refs) for kind, refs in callback._plan.layers.items()}
    note = f"{size} px, 8 probes; default layers per view {layers}"
    goals = GOALS if name == "MobileNetV2" else {}
    rows = [
        row("applications", f"{name}: one training step (batch 32)", train, "s", None, note),
        row("applications", f"{name}: set_model", set_up, "s", None, "layer choice, one pass"),
        row("applications", f"{name}: step 0", step0, "s", None, "every default view"),
        row("applications", f"{name}: step 0 / training step", step0 / train, "x",
            goals.get("step0") and f"<= {goals['step0']}", "filter patterns included"),
        row("applications", f"{name}: ordinary epoch", epoch, "s", None, ", ".join(ordinary)),
        row("applications", f"{name}: ordinary epoch / training step", epoch / train, "x",
            goals.get("epoch") and f"<= {goals['epoch']}", "traced already"),
        row("applications", f"{name}: bytes at step 0", bytes0 / 1e6, "MB",
            goals.get("step0_mb") and f"<= {goals['step0_mb']}", "event file, probes included"),
        row("applications", f"{name}: bytes per ordinary epoch", bytes1 / 1e6, "MB",
            goals.get("epoch_mb") and f"<= {goals['epoch_mb']}", "event file"),
    ]  # fmt: skip
    return rows, logdir


def repeat_epochs(source_run, target_run, epochs):
    """A run with step 0 and ``epochs`` copies of step 1's records, steps renumbered 1..epochs."""
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    records = [
        bytes(r.numpy()) for r in tf.data.TFRecordDataset(sorted(source_run.glob("events*")))
    ]
    events = [event_pb2.Event.FromString(record) for record in records]
    first = [e for e in events if e.step == 0 or not e.HasField("summary")]
    ordinary = [e for e in events if e.step == 1 and e.HasField("summary")]
    target_run.mkdir(parents=True, exist_ok=True)
    path = target_run / "events.out.tfevents.1700000000.bench"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for event in first:
            writer.write(event.SerializeToString())
        for step in range(1, epochs + 1):
            for event in ordinary:
                copy = event_pb2.Event()
                copy.CopyFrom(event)
                copy.step = step
                copy.wall_time = event.wall_time + step
                writer.write(copy.SerializeToString())
    return path.stat().st_size


def wait_for_epochs(url, base, epochs, timeout=1800):
    """Poll ``/tags`` until the ordinary views' tags reach ``epochs``; return the tags."""
    from benchmarks.bench_plugin import get

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            runs = json.loads(get(url + base + "tags")[1])["runs"]
        except OSError:
            runs = []
        tags = runs[0]["tags"] if runs else []
        ordinary = [tag for tag in tags if tag["kind"] == "feature_maps"]
        if ordinary and all(tag["max_step"] == epochs for tag in ordinary):
            return tags
        time.sleep(0.5)
    raise TimeoutError(f"the served log did not reach epoch {epochs} in {timeout} s")


def server_memory(logdir, epochs, workdir):
    """Rows: resident memory of ``tensorboard`` serving ``epochs`` logged epochs, both loaders."""
    from benchmarks.bench_plugin import BASE, get, rss_mib, start_server

    served = Path(workdir) / "served"
    size = repeat_epochs(Path(logdir) / "cnnvis", served / "cnnvis", epochs)
    rows = []
    for load_fast in ("false", "true"):
        process, url = start_server(served, load_fast, Path(workdir) / f"tb_{load_fast}.log")
        try:
            listing = wait_for_epochs(url, BASE, epochs)
            for tag in listing:
                query = urllib.parse.urlencode({"run": "cnnvis", "tag": tag["tag"]})
                steps = json.loads(get(f"{url}{BASE}steps?{query}")[1])["steps"]
                for step in steps:
                    for image in step["images"]:
                        get(url + BASE + image)
            time.sleep(3)
            loader = "Python loader" if load_fast == "false" else "Rust data server"
            rows.append(
                row("applications", f"MobileNetV2 log of {epochs} epochs: server memory, {loader}",
                    rss_mib(process.pid), "MiB", None,
                    f"{size / 1e6:.0f} MB of events, every series and image read")
            )  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=60)
    return rows


def main(argv=None):
    """Run the benchmark, print its table and return its rows.

    Args:
        argv: command-line arguments (``--quick``, ``--models``, ``--size``, ``--epochs``);
            None reads ``sys.argv``.

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MobileNetV2 at 96 px, 5 epochs")
    parser.add_argument("--models", default=None, help="comma-separated (all three)")
    parser.add_argument("--size", type=int, default=None, help="input size (224)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs served (50)")
    args = parser.parse_args(argv)
    names = args.models.split(",") if args.models else (
        ["MobileNetV2"] if args.quick else list(MODELS)
    )  # fmt: skip
    size = args.size or (96 if args.quick else 224)
    epochs = args.epochs or (5 if args.quick else 50)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            found, logdir = measure(name, size, 2 if args.quick else 5, workdir)
            rows += found
            if name == "MobileNetV2":
                rows += server_memory(logdir, epochs, workdir)
    print_rows(f"applications benchmark: {', '.join(names)} at {size} px", rows)
    return rows


if __name__ == "__main__":
    main()

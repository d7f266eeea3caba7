"""Benchmark: the cnnvis plugin in a real TensorBoard over a large log directory.

The log directory has 3 runs x 100 epochs x 20 layers x 4 views (feature maps, filter
patterns, Grad-CAM, guided backprop) plus the probes, 4 probe images. It is written fast:
``write_synthetic_run`` renders one small run with five layers (4 to 64 channels), and its
blob sequences (references to facts and PNGs in a pixel file, stored format version 3) are reused
for every layer, epoch and run, as raw TFRecord frames appended to the event files, with the
source run's pixel files copied into each run. ``benchmarks.bench_server_memory`` measures
memory against the log's size.

For each loader (``--load_fast=false``: the Python loader; ``auto``: the Rust data server) it
measures the time from start to the first ``/tags`` answer and to the complete listing, the
median and 95th-percentile latency of ``/tags``, ``/steps`` (first request per series, then
cached) and an image, and the server's resident memory (TensorBoard plus the data server) as
the same log directory grows from a quarter of the epochs to all of them.
Targets: ``/tags`` and ``/steps`` under 50 ms median, an image under 10 ms median.

Usage::

    python -m benchmarks.bench_plugin            # the full size (a few minutes)
    python -m benchmarks.bench_plugin --quick    # 1 run x 20 epochs x 5 layers
    python -m benchmarks.bench_plugin --runs 2 --epochs 50 --layers 10 --loaders auto
"""

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.common import print_rows, row

VIEWS = ("feature_maps", "filter_patterns", "grad_cam", "guided_backprop")
TARGET_MS = {"tags": 50.0, "steps": 50.0, "steps_cold": None, "image": 10.0, "image_uncached": None}
BASE = "/data/plugin/cnnvis/"


def source_frames(scratch):
    """{(kind, layer_number): (content, tensor)} from a small synthetic run, and its probes."""
    from tensorboard.compat.proto import event_pb2

    from tb_cnnvis.testing import write_synthetic_run

    write_synthetic_run(scratch, epochs=1, layers=5, probes=4, size=64, nested=False)
    [name] = [name for name in os.listdir(os.path.join(scratch, "cnnvis")) if "tfevents" in name]
    with open(os.path.join(scratch, "cnnvis", name), "rb") as events:
        data = events.read()
    blobs, offset = {}, 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += 16 + length
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "cnnvis":
                blobs.setdefault(value.tag, value.tensor)
    return blobs


def run_frames(blobs, epochs, layers):
    """Event records per step (a list of serialized ``Event`` protos) for one run."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from tb_cnnvis import metadata, summary

    common = {"input_shape": (64, 64, 3), "probe_count": 4, "class_names": ["a", "b", "c"]}
    series = [("probes", summary.content("probes", **common), blobs["probes"], True)]
    for index in range(layers):
        source = f"conv{index % 5 + 1}"
        for kind in VIEWS:
            tensor = blobs.get(f"{kind}/{source}") or blobs[f"{kind}/conv5"]
            content = summary.content(
                kind, f"block{index}/conv", layer_index=index, layer_class="Conv2D",
                output_shape=(8, 8, 16), **common,
            )  # fmt: skip
            series.append((metadata.tag_name(kind, f"block{index}/conv"), content, tensor, False))
    steps = []
    for step in range(epochs):
        events = []
        for number, (tag, content, tensor, only_first) in enumerate(series):
            if only_first and step:
                continue
            value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
            if step == 0:
                value.metadata.CopyFrom(metadata.create_summary_metadata(content))
            event = event_pb2.Event(
                wall_time=1.7e9 + step * 60 + number * 0.01,
                step=step,
                summary=summary_pb2.Summary(value=[value]),
            )
            events.append(event.SerializeToString())
        steps.append(events)
    return steps


def write_steps(logdir, runs, steps, first, last):
    """Append steps ``first..last-1`` of every run's event file, as whole TFRecord frames."""
    import tensorflow as tf

    for run in range(runs):
        run_dir = Path(logdir) / f"run{run}"
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "plugins").exists():  # the pixel files every step's facts name
            shutil.copytree(
                Path(logdir).parent / "source" / "cnnvis" / "plugins", run_dir / "plugins"
            )
        path = run_dir / "events.out.tfevents.1700000000.bench"
        # Outside the run: a second "*tfevents*" file there would become the Python loader's
        # current file, and it would ignore the real one from then on.
        scratch = str(Path(logdir).parent / f"{Path(logdir).name}_run{run}.part")
        with tf.io.TFRecordWriter(scratch) as writer:
            if first == 0:
                writer.write(b"\x09\x00\x00\x00\x00\x00\x00\x00\x00\x1a\rbrain.Event:2")
            for events in steps[first:last]:
                for record in events:
                    writer.write(record)
        with open(scratch, "rb") as part, open(path, "ab") as events_file:
            events_file.write(part.read())
        os.remove(scratch)


def start_server(logdir, load_fast, log_path):
    """A ``tensorboard`` process on 127.0.0.1 at a free port, and its URL."""
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", "0", f"--load_fast={load_fast}"]
    command += ["--reload_interval", "2"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    while not (match := re.search(r"http://127\.0\.0\.1:\d+", Path(log_path).read_text())):
        if process.poll() is not None:
            raise RuntimeError(Path(log_path).read_text()[-3000:])
        time.sleep(0.05)
    return process, match.group(0)


def get(url):
    """(seconds, body) of one GET."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - start, body


def wait_loaded(url, runs, max_step, timeout=1800):
    """Poll ``/tags`` until every run lists every tag at ``max_step``; return the seconds."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            listing = json.loads(get(url + BASE + "tags")[1])["runs"]
        except OSError:
            listing = []
        tags = [tag for run in listing for tag in run["tags"] if tag["kind"] != "probes"]
        if len(listing) == runs and tags and all(tag["max_step"] == max_step for tag in tags):
            return time.monotonic() - start
        time.sleep(0.2)
    raise TimeoutError(f"not loaded after {timeout} s")


def rss_mib(pid):
    """Resident memory of a process and its descendants (the Rust data server), in MiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total / 1024


def latencies(url, quick):
    """{route: [seconds]} for /tags, /steps (cold, then cached) and images."""
    listing = json.loads(get(url + BASE + "tags")[1])["runs"]
    rng = random.Random(0)
    series = [(run["run"], tag["tag"]) for run in listing for tag in run["tags"]]
    series = rng.sample(series, min(len(series), 10 if quick else 40))
    times = {"tags": [get(url + BASE + "tags")[0] for _ in range(20 if quick else 50)]}
    times["steps_cold"], images = [], []
    for run, tag in series:
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        seconds, body = get(f"{url}{BASE}steps?{query}")
        times["steps_cold"].append(seconds)
        images += [
            url + BASE + image for step in json.loads(body)["steps"] for image in step["images"]
        ]
    times["steps"] = []
    for run, tag in series * 2:
        query = urllib.parse.urlencode({"run": run, "tag": tag})
        times["steps"].append(get(f"{url}{BASE}steps?{query}")[0])
    sample = rng.sample(images, min(len(images), 100))
    times["image"] = [get(image)[0] for image in sample]  # as the frontend asks for them
    # Without the version parameter the plugin's image cache is bypassed: every request
    # goes to the data provider.
    times["image_uncached"] = [get(re.sub(r"&t=[^&]*", "", image))[0] for image in sample[:50]]
    return times


def bench_loader(load_fast, runs, epochs, steps, workdir):
    """Rows for one loader: start-up, latencies, memory as the epochs grow."""
    rows = []
    logdir = Path(workdir) / f"full_{load_fast}"
    write_steps(logdir, runs, steps, 0, epochs)
    start = time.monotonic()
    process, url = start_server(logdir, load_fast, Path(workdir) / f"tb_{load_fast}.log")
    try:
        while True:
            try:
                get(url + BASE + "tags")
                break
            except OSError:
                time.sleep(0.05)
        rows.append(
            _row(load_fast, "first /tags answer after start", time.monotonic() - start, "s")
        )
        wait_loaded(url, runs, epochs - 1)
        rows.append(_row(load_fast, "all epochs listed after start", time.monotonic() - start, "s"))
        for route, samples in latencies(url, quick=epochs < 50).items():
            ms = sorted(1000 * s for s in samples)
            p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
            target = TARGET_MS[route]
            rows.append(_row(load_fast, f"{route} median", statistics.median(ms), "ms", target,
                             f"{len(ms)} requests"))  # fmt: skip
            rows.append(_row(load_fast, f"{route} p95", p95, "ms"))
        memory = rss_mib(process.pid)  # with the plugin's caches filled by the requests above
        rows.append(_row(load_fast, "memory after the requests", memory, "MiB"))
    finally:
        process.terminate()
        process.wait(timeout=60)
    rows += memory_growth(load_fast, runs, epochs, steps, workdir)
    return rows


def memory_growth(load_fast, runs, epochs, steps, workdir):
    """Resident memory after 0, 1/4, 1/2 and all epochs appear in a served log directory."""
    logdir = Path(workdir) / f"growing_{load_fast}"
    logdir.mkdir()
    process, url = start_server(logdir, load_fast, Path(workdir) / f"grow_{load_fast}.log")
    rows, written = [], 0
    try:
        time.sleep(3)
        rows.append(_row(load_fast, "memory at 0 epochs", rss_mib(process.pid), "MiB"))
        for count in (epochs // 4, epochs // 2, epochs):
            write_steps(logdir, runs, steps, written, count)
            written = count
            wait_loaded(url, runs, count - 1)
            time.sleep(2.5)  # one more reload interval, for the memory to settle
            rows.append(_row(load_fast, f"memory at {count} epochs", rss_mib(process.pid), "MiB"))
    finally:
        process.terminate()
        process.wait(timeout=60)
    first, last = rows[1]["value"], rows[-1]["value"]
    per_epoch = (last - first) / (epochs - epochs // 4)
    rows.append(_row(load_fast, "memory per added epoch", per_epoch, "MiB"))
    return rows


def _row(loader, metric, value, unit, target=None, note=""):
    """One result row; the loader (``--load_fast`` value) names itself in the metric."""
    name = {"false": "python", "auto": "rust"}[loader]
    return row("plugin", f"{name} loader: {metric}", value, unit, target, note)


def main(argv=None):
    """Run the benchmark and print a table; returns the rows (dicts).

    Args:
      argv: command-line arguments (``--quick``, ``--loaders false,auto``).

    Returns:
      A list of rows (see ``benchmarks.common.row``); each metric starts with the loader.

    Example:
      >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run x 20 epochs x 5 layers")
    parser.add_argument("--loaders", default="false,auto", help="--load_fast values to run")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 100)")
    parser.add_argument("--layers", type=int, default=None, help="layers per run (default 20)")
    args = parser.parse_args(argv)
    runs, epochs, layers = (1, 20, 5) if args.quick else (3, 100, 20)
    runs, epochs, layers = args.runs or runs, args.epochs or epochs, args.layers or layers
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_plugin_") as workdir:
        start = time.monotonic()
        steps = run_frames(source_frames(os.path.join(workdir, "source")), epochs, layers)
        write_steps(Path(workdir) / "size", runs, steps, 0, epochs)
        size = sum(f.stat().st_size for f in (Path(workdir) / "size").rglob("*")) / 2**20
        shape = f"{runs} runs x {epochs} epochs x {layers} layers x {len(VIEWS)} views"
        rows.append(row("plugin", "log directory size", size, "MiB", None, shape))
        rows.append(row("plugin", "log directory write time", time.monotonic() - start, "s"))
        for loader in args.loaders.split(","):
            rows += bench_loader(loader, runs, epochs, steps, workdir)
    title = (
        f"plugin benchmark: {runs} runs x {epochs} epochs x {layers} layers x {len(VIEWS)} views"
    )
    print_rows(title, rows)
    return rows


if __name__ == "__main__":
    main()

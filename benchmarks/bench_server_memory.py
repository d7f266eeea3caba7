"""Benchmark: TensorBoard's resident memory against the size of a cnnvis log, and latency
under concurrent clients, for stored formats and both loaders.

For each stored format (1: PNGs inside the event files, as tb-cnnvis 0.1 wrote them; 3: the
current one, PNGs and facts in pixel files of the run's plugin directory, the events holding
a reference per tag and step, ``tb_cnnvis.blobstore``) a small run is rendered once by
``write_synthetic_run`` (steps 0 and 1) and its step 1 is repeated, as raw event records
with new step numbers (format 3: each step with its own pixel file, a hard link to the
source's), to logs of each size (default 10, 100 and 1,000 logged epochs). The default run
(3 layers, 4 probes of 96 px, every view) writes about 1 MB per epoch, near the 1.35 MB of
the logs measured in issue 20; of that, format 3's event files are about 3.5% (a reference
per tag and step, and the scalars), and what is left in TensorBoard's memory grows with
them.

For each loader (``--load_fast=false``: Python; ``auto``: the Rust data server) and size, a
fresh ``tensorboard`` process loads the log; every series' ``/steps`` is read (checking
that every epoch is served) and images are fetched; then the resident memory of TensorBoard
and its data server is taken. Printed per format and loader: the memory at each size, and
the slope, MiB of memory per MB of log between the smallest and the largest log (the
issue's goal for the current format: at most 0.15). On the largest log, 8 client threads
ask for ``/steps`` and images at random: p50 and p95 of each (goal: p95 within 50 ms).

Usage::

    python -m benchmarks.bench_server_memory                         # 10, 100, 1000 epochs
    python -m benchmarks.bench_server_memory --epochs 10,100,300 --formats 3
    python -m benchmarks.bench_server_memory --quick                 # 5 and 30 epochs, small
"""

import argparse
import concurrent.futures
import gzip
import json
import os
import random
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.bench_plugin import BASE, rss_mib, start_server
from benchmarks.common import print_rows, row

CLIENTS = 8
"""Concurrent client threads in the latency measurement."""

REQUESTS_PER_CLIENT = 60
"""Requests per client thread (half ``/steps``, half images)."""


def get(url):
    """(seconds, body) of one GET that accepts gzip, as a browser does (body as sent)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return time.perf_counter() - start, body


def source_run(workdir, format_version, layers, probes, size):
    """Render steps 0 and 1 once: ``(records by step, run dir)`` of the source run."""
    from tb_cnnvis.testing import write_synthetic_run

    logdir = Path(workdir) / f"source_v{format_version}"
    write_synthetic_run(
        str(logdir), epochs=1, layers=layers, probes=probes, size=size,
        in_events=format_version == 1,
    )  # fmt: skip
    run_dir = logdir / "cnnvis"
    [name] = [name for name in os.listdir(run_dir) if "tfevents" in name]
    data, offset, by_step = (run_dir / name).read_bytes(), 0, {}
    from tensorboard.compat.proto import event_pb2

    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += 16 + length
        if event.HasField("summary"):
            by_step.setdefault(event.step, []).append(event)
    return by_step, run_dir


def write_log(logdir, by_step, source_dir, epochs):
    """A log of ``epochs`` logged epochs, steps 0..epochs-1: step 0 as rendered, step 1
    repeated with new numbers (so 1,000 epochs are exactly ``fix_flags``'s 1,000 samples)."""
    import tensorflow as tf

    run_dir = Path(logdir) / "cnnvis"
    pixels = run_dir / "plugins" / "cnnvis" / "pixels"
    pixels.mkdir(parents=True)
    source_pixels = source_dir / "plugins" / "cnnvis" / "pixels"
    files = {}
    if source_pixels.exists():
        files = {int(name.split("-")[0]): name for name in os.listdir(source_pixels)}
        os.link(source_pixels / files[0], pixels / files[0])
    path = str(run_dir / "events.out.tfevents.1700000000.bench")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"\x09\x00\x00\x00\x00\x00\x00\x00\x00\x1a\rbrain.Event:2")
        for event in by_step[0]:
            writer.write(event.SerializeToString())
        for step in range(1, epochs):
            name = f"{step}-{step:012x}.bin"
            if files:
                os.link(source_pixels / files[1], pixels / name)
            for event in by_step[1]:
                copy = type(event)()
                copy.CopyFrom(event)
                copy.step, copy.wall_time = step, 1.7e9 + step * 60
                for value in copy.summary.value:
                    _rename_pixel_file(value, f"pixels/{name}")
                writer.write(copy.SerializeToString())
    return sum(f.stat().st_size for f in Path(logdir).rglob("*") if f.is_file()) / 1e6


def _rename_pixel_file(value, file):
    """Point a step's event blob at ``file`` (its own pixel file; a format 3 step's facts
    in the file name their source's file, which a format 3 reader overrides)."""
    if value.metadata.plugin_data.plugin_name not in ("", "cnnvis") or not value.HasField("tensor"):
        return
    strings = value.tensor.string_val
    if len(strings) != 1:
        return
    facts = json.loads(strings[0])
    for key in ("pixels", "facts"):  # format 2: the facts name the file; 3: the reference
        if isinstance(facts, dict) and isinstance(facts.get(key), dict):
            facts[key]["file"] = file
            strings[0] = json.dumps(facts, sort_keys=True).encode("utf-8")


def wait_loaded(url, epochs, timeout=1800):
    """Poll ``/tags`` until every layer tag is listed at step ``epochs - 1``; return the tags."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            [run] = json.loads(get(url + BASE + "tags")[1])["runs"]
        except (OSError, ValueError):
            time.sleep(0.2)
            continue
        tags = [tag for tag in run["tags"] if tag["kind"] != "probes"]
        if tags and all(tag["max_step"] == epochs - 1 for tag in tags):
            return [tag["tag"] for tag in run["tags"]]
        time.sleep(0.2)
    raise TimeoutError(f"not loaded after {timeout} s")


def read_everything(url, tags, epochs, images_per_tag):
    """Read every series' ``/steps`` and some images; whether every epoch was served, and
    ``{tag: [image URLs]}``."""
    complete, urls = True, {}
    for tag in tags:
        query = urllib.parse.urlencode({"run": "cnnvis", "tag": tag})
        steps = json.loads(get(f"{url}{BASE}steps?{query}")[1])["steps"]
        expected = [0] if tag == "probes" else list(range(epochs))
        complete &= [step["step"] for step in steps] == expected
        urls[tag] = [image for step in steps for image in step["images"]]
    rng = random.Random(0)
    for images in urls.values():
        for image in rng.sample(images, min(len(images), images_per_tag)):
            get(url + BASE + image)
    return complete, urls


def concurrent_latency(url, urls):
    """``{"steps": [s], "image": [s]}`` from ``CLIENTS`` threads asking at random."""
    tags = sorted(urls)

    def client(seed):
        rng, times = random.Random(seed), {"steps": [], "image": []}
        for number in range(REQUESTS_PER_CLIENT):
            tag = rng.choice(tags)
            if number % 2:
                query = urllib.parse.urlencode({"run": "cnnvis", "tag": tag})
                times["steps"].append(get(f"{url}{BASE}steps?{query}")[0])
            else:
                times["image"].append(get(url + BASE + rng.choice(urls[tag]))[0])
        return times

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    return {route: [t for result in results for t in result[route]] for route in ("steps", "image")}


def bench(format_version, loader, sizes, by_step, source_dir, workdir):
    """Rows for one format and loader: memory per size, slope, latency on the largest."""
    name = {"false": "python", "auto": "rust"}[loader]
    label = f"format {format_version}, {name} loader"
    rows, points = [], []
    for epochs in sizes:
        logdir = Path(workdir) / f"v{format_version}_{loader}_{epochs}"
        megabytes = write_log(logdir, by_step, source_dir, epochs)
        process, url = start_server(logdir, loader, Path(workdir) / f"{logdir.name}.log")
        try:
            tags = wait_loaded(url, epochs)
            complete, urls = read_everything(url, tags, epochs, images_per_tag=20)
            time.sleep(2.5)  # one more reload interval
            memory = rss_mib(process.pid)
            points.append((megabytes, memory))
            rows.append(row("server_memory", f"{label}: memory at {epochs} epochs", memory,
                            "MiB", None, f"log {megabytes:.1f} MB; every epoch served: "
                            f"{'yes' if complete else 'NO'}"))  # fmt: skip
            if epochs == sizes[-1]:
                times = concurrent_latency(url, urls)
                for route, samples in times.items():
                    ms = sorted(1000 * s for s in samples)
                    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
                    note = f"{CLIENTS} clients, {len(ms)} requests, log {megabytes:.0f} MB"
                    rows.append(row("server_memory", f"{label}: {route} p50",
                                    statistics.median(ms), "ms", None, note))  # fmt: skip
                    rows.append(row("server_memory", f"{label}: {route} p95", p95, "ms",
                                    "<= 50", note))  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=60)
        _remove_tree(logdir)
    (small_mb, small_mib), (large_mb, large_mib) = points[0], points[-1]
    slope = (large_mib - small_mib) / max(large_mb - small_mb, 1e-9)
    target = "<= 0.15" if format_version != 1 else None
    rows.append(row("server_memory", f"{label}: MiB of memory per MB of log", slope,
                    "MiB/MB", target, f"{sizes[0]} to {sizes[-1]} epochs"))  # fmt: skip
    return rows


def _remove_tree(path):
    """Remove a log directory written here."""
    for root, folders, files in os.walk(path, topdown=False):
        for name in files:
            os.remove(os.path.join(root, name))
        for name in folders:
            os.rmdir(os.path.join(root, name))
    os.rmdir(path)


def main(argv=None):
    """Run the benchmark and print a table; returns the rows (dicts).

    Args:
      argv: command-line arguments (``--epochs 10,100,1000``, ``--formats 1,3``,
        ``--loaders false,auto``, ``--layers``, ``--probes``, ``--size``).

    Returns:
      A list of rows (see ``benchmarks.common.row``).

    Example:
      >>> rows = main(["--epochs", "10,50", "--formats", "3", "--loaders", "auto"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="10,100,1000", help="logged epochs per log")
    parser.add_argument("--formats", default="1,3", help="1 (PNGs in events) and/or 3")
    parser.add_argument("--loaders", default="false,auto", help="--load_fast values to run")
    parser.add_argument("--layers", type=int, default=3, help="layers of the synthetic run")
    parser.add_argument("--probes", type=int, default=4, help="probe images")
    parser.add_argument("--size", type=int, default=96, help="input size in pixels")
    parser.add_argument("--quick", action="store_true", help="5 and 30 epochs of a small run")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.layers, args.probes, args.size = "5,30", 2, 2, 32
    sizes = sorted(int(n) for n in args.epochs.split(","))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_server_memory_") as workdir:
        for format_version in (int(v) for v in args.formats.split(",")):
            by_step, source_dir = source_run(
                workdir, format_version, args.layers, args.probes, args.size
            )
            for loader in args.loaders.split(","):
                rows += bench(format_version, loader, sizes, by_step, source_dir, workdir)
    shape = f"{args.layers} layers x every view, {args.probes} probes of {args.size} px"
    print_rows(f"server memory benchmark: {shape}, epochs {sizes}", rows)
    return rows


if __name__ == "__main__":
    main()

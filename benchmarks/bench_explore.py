"""Benchmark: explore requests in a real TensorBoard, cold and cached, and its memory.

A run is logged by ``CnnVisCallback`` (one epoch on random images, feature maps only, model
snapshots kept) for the demo model (64 px) and, without ``--quick``, an untrained
MobileNetV2 (224 px, ``weights=None``). A ``tensorboard`` process (Python loader) serves the
log directory with its explore cache in a fresh folder. Per model it measures: the first
``/explore_info`` (the snapshot loaded), then for feature maps of a
middle layer, Grad-CAM of the last 4-D layer and 8 filter patterns of a middle layer, the
first request (computed: POST then polls until 200) and the same request again (answered
from the disk cache); and TensorBoard's resident memory before any explore request and after
all of them (one model resident at a time).

Usage::

    python -m benchmarks.bench_explore            # demo model and MobileNetV2
    python -m benchmarks.bench_explore --quick    # demo model only
"""

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request

from benchmarks.bench_plugin import BASE, rss_mib, start_server
from benchmarks.common import print_rows, row

HEADERS = {"Content-Type": "application/json", "X-XSRF-Protected": "1"}


def log_run(logdir, name):
    """Log one epoch of ``name`` (``demo`` or ``mobilenet_v2``) with snapshots; its layers."""
    import keras
    import numpy as np

    from tb_cnnvis import capture
    from tb_cnnvis.callback import CnnVisCallback

    if name == "demo":
        from demo.model import build_model

        model, size = build_model(64), 64
    else:
        model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
        size = 224
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((8, size, size, 3), dtype=np.float32)
    y = rng.integers(0, int(model.output_shape[-1]), 8)
    layers = [ref.path for ref in capture.select_layers(model, None)]
    callback = CnnVisCallback(
        os.path.join(logdir, name), x[:4], y[:4], views=["feature_maps"], layers=layers[:1]
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    return layers


def post(url, body):
    """(seconds, status of the last answer, answer) of an explore request, polled to its end."""
    start = time.perf_counter()
    request = urllib.request.Request(
        url + BASE + "explore", data=json.dumps(body).encode(), headers=HEADERS
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                status, answer = response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return time.perf_counter() - start, error.code, json.load(error)
        if status != 202:
            return time.perf_counter() - start, status, answer
        time.sleep(0.05)
        request = urllib.request.Request(url + BASE + answer["poll"])


def bench_model(url, name, layers, pid):
    """Rows of one model: info (load), then cold and cached requests of three views."""
    run = f"{name}/cnnvis"
    start = time.perf_counter()
    with urllib.request.urlopen(f"{url}{BASE}explore_info?run={run}", timeout=600) as response:
        info = json.load(response)
    rows = [row("explore", f"{name}: first explore_info (snapshot load)",
                time.perf_counter() - start, "s", None, f"{len(info['layers'])} 4-D layers")]  # fmt: skip
    middle, last = layers[len(layers) // 2], layers[-1]
    requests = {
        "feature maps": {"view": "feature_maps", "layer": middle},
        "Grad-CAM": {"view": "grad_cam", "layer": last, "class_index": 1},
        "8 filter patterns": {"view": "filter_patterns", "layer": middle,
                              "channels": list(range(8))},
    }  # fmt: skip
    for label, extra in requests.items():
        body = {"run": run, "step": 1, "image": {"probe": 0}, **extra}
        cold, status, answer = post(url, body)
        warm, again, _ = post(url, body)
        note = f"{extra['layer']}; status {status}/{again}"
        if status != 200:
            note += f": {answer.get('error', '')[:80]}"
        rows.append(row("explore", f"{name}: {label}, computed", cold, "s", None, note))
        rows.append(row("explore", f"{name}: {label}, cached", warm * 1000, "ms", "< 100", note))
    rows.append(row("explore", f"{name}: TensorBoard RSS after", rss_mib(pid), "MiB", None,
                    "one model resident"))  # fmt: skip
    return rows


def main(argv=None):
    """Run the benchmark and print a table; returns the rows (dicts).

    Args:
        argv: command-line arguments (``--quick``: the demo model only).

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the demo model only")
    args = parser.parse_args(argv)
    names = ["demo"] if args.quick else ["demo", "mobilenet_v2"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_explore_") as workdir:
        logdir = os.path.join(workdir, "logs")
        layers = {name: log_run(logdir, name) for name in names}
        os.environ["TB_CNNVIS_CACHE"] = os.path.join(workdir, "cache")
        process, url = start_server(logdir, "false", os.path.join(workdir, "tb.log"))
        url += "/"
        try:
            time.sleep(3)
            rows.append(row("explore", "TensorBoard RSS before exploring", rss_mib(process.pid),
                            "MiB", None, "before the first explore request"))  # fmt: skip
            for name in names:
                rows += bench_model(url, name, layers[name], process.pid)
        finally:
            process.terminate()
            process.wait(30)
    print_rows(f"explore benchmark ({', '.join(names)}; {sys.platform})", rows)
    return rows


if __name__ == "__main__":
    main()

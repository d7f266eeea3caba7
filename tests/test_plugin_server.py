"""plugin: a real ``tensorboard`` process finds the plugin, serves every epoch, and follows
a log directory that training is still writing, with the Python loader and the Rust server.
"""

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from tensorboard.compat.proto import event_pb2

from tb_cnnvis import summary
from tb_cnnvis.testing import write_synthetic_run

EPOCHS = 15
GROWING_FIRST = 5  # the "growing" run starts with steps 0..4 and gets the rest later
DEADLINE_SECONDS = 120
BASE = "/data/plugin/cnnvis/"


def split_records(data):
    """The TFRecord frames of an event file: (length, crc, payload, crc) byte strings."""
    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        records.append(data[offset : offset + 16 + length])
        offset += 16 + length
    return records


def record_step(record):
    """The step of the event a TFRecord frame holds."""
    return event_pb2.Event.FromString(record[12:-4]).step


def fetch(url):
    """(status, headers, body) of a GET, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def fetch_json(url, status=200):
    code, headers, body = fetch(url)
    assert code == status, body[:500]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    return json.loads(body)


def poll(condition, what):
    """Call ``condition()`` until it returns a truthy value; fail after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def start_tensorboard(logdir, load_fast, log_path):
    """Start ``tensorboard`` on 127.0.0.1 at a free port; return (process, base URL)."""
    script = Path(sys.executable).with_name("tensorboard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tensorboard.main"]
    command += ["--logdir", logdir, "--host", "127.0.0.1", "--port", "0"]
    command += ["--reload_interval", "1", f"--load_fast={load_fast}"]
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=logdir)
    log.close()

    def url():
        if process.poll() is not None:
            pytest.fail(f"tensorboard exited: {Path(log_path).read_text()[-3000:]}")
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", Path(log_path).read_text())
        return match and match.group(1)

    return process, poll(url, "the TensorBoard URL on stderr")


@pytest.fixture(scope="module")
def source_records(tmp_path_factory):
    """The event records of a 15-epoch synthetic run."""
    logdir = tmp_path_factory.mktemp("source")
    write_synthetic_run(str(logdir), epochs=EPOCHS - 1, layers=2, probes=2)
    [name] = [name for name in os.listdir(logdir / "cnnvis") if "tfevents" in name]
    return name, (logdir / "cnnvis" / name).read_bytes(), logdir / "cnnvis" / "plugins"


@pytest.fixture(scope="module", params=["false", "auto"])
def server(request, source_records, tmp_path_factory):
    """A TensorBoard (Python loader or Rust data server) over good, broken and growing runs."""
    name, data, pixels = source_records
    logdir = tmp_path_factory.mktemp(f"logs_{request.param}")
    for run in ("cnnvis", "truncated", "garbage", "growing"):
        (logdir / run).mkdir()
    for run in ("cnnvis", "truncated", "growing", "damaged"):
        shutil.copytree(pixels, logdir / run / "plugins")
    (logdir / "damaged" / name).write_bytes(data)
    damage_pixel_files(logdir / "damaged" / "plugins" / "cnnvis" / "pixels", data)
    write_odd_names(logdir / "odd")
    write_synthetic_run(str(logdir / "old"), epochs=2, layers=1, probes=1, in_events=True)
    (logdir / "cnnvis" / name).write_bytes(data)
    (logdir / "truncated" / name).write_bytes(data[: len(data) // 2])
    (logdir / "garbage" / name).write_bytes(b"\x00\x01not an event file" * 64)
    records = split_records(data)
    first = [record for record in records if record_step(record) < GROWING_FIRST]
    growing = logdir / "growing" / name
    growing.write_bytes(b"".join(first))
    process, url = start_tensorboard(str(logdir), request.param, logdir.parent / "tb.log")
    try:
        yield {
            "url": url,
            "load_fast": request.param,
            "growing": growing,
            "rest": records[len(first) :],
            "log": logdir.parent / "tb.log",
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(logdir, ignore_errors=True)


ODD_LAYERS = ('quote"d', "back\\slash", "l" * 3000)
"""Layer names with a quote, a backslash, and thousands of characters."""


def damage_pixel_files(folder, events):
    """Steps 3, 5 and 7 damaged: file removed, cut short, bytes flipped all through (its
    facts too); in step 9 one byte of the first PNG of ``DAMAGED_TAG`` only."""
    files = {int(name.split("-")[0]): folder / name for name in os.listdir(folder)}
    files[3].unlink()
    data = files[5].read_bytes()
    files[5].write_bytes(data[: len(data) // 2])
    flipped = bytearray(files[7].read_bytes())
    for offset in range(40, len(flipped), 97):
        flipped[offset] ^= 0xFF
    files[7].write_bytes(bytes(flipped))
    [reference] = [
        json.loads(value.tensor.string_val[0])["facts"]
        for record in split_records(events)
        for value in event_pb2.Event.FromString(record[12:-4]).summary.value
        if value.tag == DAMAGED_TAG and record_step(record) == 9
    ]
    flipped = bytearray(files[9].read_bytes())
    offset, length, _ = reference["span"]
    [first_png, *_] = json.loads(flipped[offset : offset + length])["pixels"]["spans"]
    flipped[first_png[0] + 40] ^= 0xFF
    files[9].write_bytes(bytes(flipped))


DAMAGED_TAG = "grad_cam/base/conv2"
"""The tag whose steps the damage test reads."""


def write_odd_names(run_dir):
    """A run ``odd`` with one feature-maps tag per name of ``ODD_LAYERS``, steps 0 and 1."""
    import numpy as np

    from tb_cnnvis.views.feature_maps import write_feature_maps

    writer = summary.RunWriter(str(run_dir))
    for step in range(2):
        with writer.step(step):
            for index, layer in enumerate(ODD_LAYERS):
                content = summary.content(
                    "feature_maps", layer, input_shape=(4, 4, 3), probe_count=1,
                    layer_index=index, output_shape=(2, 2, 1),
                )  # fmt: skip
                maps = np.full((1, 2, 2, 1), float(index), dtype=np.float32)
                maps[0, 0, 0, 0] = 10.0 + step
                write_feature_maps(content, maps, step)
    writer.close()


def steps_of(server, run, tag):
    body = fetch_json(f"{server['url']}{BASE}steps?run={run}&tag={tag}")
    return [step["step"] for step in body["steps"]]


def test_the_loader_in_use_is_the_one_asked_for(server):
    poll(lambda: "TensorBoard 2" in server["log"].read_text(), "start-up banner")
    rust_note = "Using experimental fast data loading logic" in server["log"].read_text()
    assert rust_note == (server["load_fast"] == "auto")


def test_plugins_listing_enables_cnnvis_with_its_module_path(server):
    def listing():
        body = fetch_json(server["url"] + "/data/plugins_listing")
        return body["cnnvis"] if body["cnnvis"]["enabled"] else None

    entry = poll(listing, "cnnvis to be enabled")
    assert entry["tab_name"] == "CNN Vis"
    assert entry["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/cnnvis/index.js",
    }


def test_every_epoch_is_served_not_tensorboards_default_ten(server):
    poll(lambda: steps_of(server, "cnnvis", "feature_maps/conv1") == list(range(EPOCHS)), "15")
    tags = fetch_json(server["url"] + BASE + "tags")["runs"]
    runs = {run["run"]: run["tags"] for run in tags}
    assert set(runs) >= {"cnnvis", "growing", "truncated"} and "garbage" not in runs
    assert [entry["tag"] for entry in runs["cnnvis"]][:5] == [
        "probes",
        "smoothgrad/input",
        "integrated_gradients/input",
        "occlusion/input",
        "feature_maps/conv1",
    ]
    for entry in runs["cnnvis"]:
        expected = list(range(1 if entry["tag"] == "probes" else EPOCHS))
        assert steps_of(server, "cnnvis", entry["tag"]) == expected


def test_images_and_frontend_files_are_served_with_their_content_types(server):
    poll(lambda: steps_of(server, "cnnvis", "grad_cam/base/conv2"), "grad_cam data")
    body = fetch_json(f"{server['url']}{BASE}steps?run=cnnvis&tag=grad_cam/base/conv2")
    status, headers, png = fetch(server["url"] + BASE + body["steps"][-1]["images"][0])
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert headers["Cache-Control"] == "private, max-age=86400"
    assert Image.open(io.BytesIO(png)).size == (32, 32)
    status, headers, script = fetch(server["url"] + BASE + "index.js")
    assert (status, headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b"export" in script


def test_bad_keys_and_names_are_json_errors_on_both_back_ends(server):
    url = server["url"] + BASE
    error = fetch_json(url + "blob?s=0123456789abcdef&step=0&i=0", 404)["error"]
    assert error == "Not found: no cnnvis series has this id (s); reload the page"
    poll(lambda: steps_of(server, "cnnvis", "probes"), "probes")
    [step] = fetch_json(f"{url}steps?run=cnnvis&tag=probes")["steps"]
    series = step["images"][0].split("&")[0]
    error = fetch_json(f"{url}{series}&step=0&i=-1", 400)["error"]
    assert (
        error == "Invalid argument: i must be a non-negative integer (as given in /steps), got '-1'"
    )
    error = fetch_json(f"{url}{series}&step=0&i=2&t={step['wall_time']!r}", 404)["error"]
    assert error == "Not found: step 0 of this series has 2 images; there is no image 2"
    assert "runs with cnnvis data" in fetch_json(url + "steps?run=x&tag=y", 404)["error"]
    status, headers, _ = fetch(url + "%2e%2e/%2e%2e/setup.py")
    assert status == 404 and headers["X-Content-Type-Options"] == "nosniff"


def test_epochs_written_while_serving_appear_and_a_half_written_record_is_harmless(server):
    growing = lambda: steps_of(server, "growing", "feature_maps/conv1")  # noqa: E731
    poll(lambda: growing() == list(range(GROWING_FIRST)), "the first epochs")
    rest, cut = b"".join(server["rest"]), len(server["rest"][0]) // 2
    with open(server["growing"], "ab") as events:
        events.write(rest[:cut])  # a record cut in the middle, as while a writer flushes
    for _ in range(4):
        time.sleep(0.6)
        assert growing() == list(range(GROWING_FIRST))
        assert fetch_json(server["url"] + BASE + "tags")["runs"]
    with open(server["growing"], "ab") as events:
        events.write(rest[cut:])
    poll(lambda: growing() == list(range(EPOCHS)), "the later epochs")


def test_damaged_pixel_files_are_notes_and_every_readable_step_is_served(server):
    url = server["url"] + BASE
    tag = DAMAGED_TAG
    readable = [step for step in range(EPOCHS) if step not in (3, 5, 7)]

    def scanned():  # found by the plugin's own scan after /tags: no /steps asked yet
        runs = {run["run"]: run for run in fetch_json(url + "tags")["runs"]}
        return len(runs.get("damaged", {}).get("notes", ())) == 3

    poll(scanned, "the notes of the damaged steps without asking /steps")
    poll(lambda: steps_of(server, "damaged", tag) == readable, "the readable steps")
    body = fetch_json(f"{url}steps?run=damaged&tag={tag}")
    for step in body["steps"]:
        status, _, png = fetch(url + step["images"][0])
        if step["step"] == 9:  # only a PNG damaged, its facts whole: found when it is read
            assert status == 404
            assert json.loads(png)["error"].startswith(f"Not found: step 9 of {tag}: its pixel")
            assert json.loads(png)["error"].endswith("is damaged (checksum mismatch)")
        else:
            assert status == 200 and Image.open(io.BytesIO(png)).size == (32, 32)
    runs = {run["run"]: run for run in fetch_json(url + "tags")["runs"]}
    notes = runs["damaged"]["notes"]
    assert len(notes) == 4, notes
    others = len(runs["damaged"]["tags"]) - 2  # one note per step for all its tags but probes
    every = rf"step (\d+) of [a-z_]+/base/conv\d and {others} more tags: its pixel file pixels/\1-\w+\.bin"
    assert re.fullmatch(rf"{every} is missing; not shown\.", notes[0])[1] == "3"
    assert re.fullmatch(rf"{every} is truncated; not shown\.", notes[1])[1] == "5"
    # Its facts fail their checksum: left out of /steps.
    assert (
        re.fullmatch(rf"{every} is damaged \(checksum mismatch\); not shown\.", notes[2])[1] == "7"
    )
    assert notes[3].startswith(f"step 9 of {tag}: its pixel file pixels/9-")
    assert "notes" not in runs["cnnvis"]


def test_names_with_quotes_backslashes_and_thousands_of_characters_work(server):
    url = server["url"] + BASE

    def odd_tags():
        runs = {run["run"]: run for run in fetch_json(url + "tags")["runs"]}
        return "odd" in runs and [entry["tag"] for entry in runs["odd"]["tags"]]

    tags = poll(odd_tags, "the run with odd names")
    assert tags == [
        "feature_maps/quote%22d",
        "feature_maps/back%5Cslash",
        "feature_maps/" + "l" * 3000,
    ]
    layers = {run["run"]: run for run in fetch_json(url + "tags")["runs"]}["odd"]["tags"]
    assert [entry["layer"] for entry in layers] == list(ODD_LAYERS)
    for index, tag in enumerate(tags):
        query = urllib.parse.urlencode({"run": "odd", "tag": tag})
        body = poll(lambda q=query: fetch_json(f"{url}steps?{q}")["steps"], tag[:30])
        assert [step["step"] for step in body] == [0, 1]
        for step in body:
            [image] = step["images"]
            assert len(image) < 120  # the URL does not grow with the names
            status, _, png = fetch(url + image)
            assert status == 200
            pixels = Image.open(io.BytesIO(png))
            assert pixels.size == (2, 2) and pixels.getpixel((0, 0)) == 255
            assert step["facts"]["max"] == [[10.0 + step["step"]]]
            assert step["facts"]["min"] == [[float(index)]]


def test_logs_of_format_version_1_with_pngs_in_the_events_are_still_served(server):
    url = server["url"] + BASE
    steps = poll(lambda: steps_of(server, "old/cnnvis", "grad_cam/base/conv1"), "the old run")
    assert steps == [0, 1, 2]
    runs = {run["run"]: run for run in fetch_json(url + "tags")["runs"]}
    assert {entry["version"] for entry in runs["old/cnnvis"]["tags"]} == {1}
    assert "notes" not in runs["old/cnnvis"]
    query = urllib.parse.urlencode({"run": "old/cnnvis", "tag": "feature_maps/base/conv1"})
    [step] = fetch_json(f"{url}steps?{query}&step=2")["steps"]
    status, headers, png = fetch(url + step["images"][0])
    assert (status, headers["Content-Type"]) == (200, "image/png")
    [described] = step["facts"]["images"]
    rows, cols = described["grid"]
    height, width = described["tile"]
    assert Image.open(io.BytesIO(png)).size == (cols * width, rows * height)

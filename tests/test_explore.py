"""explore: POST /explore computes any view of any 4-D layer of a saved snapshot for a probe
or an uploaded image, equal to the library's own functions; hostile requests are 4xx."""

import base64
import io
import json
import os
import re
import struct
import threading
import time

import keras
import models
import numpy as np
import pytest
from PIL import Image
from tensorboard import program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from tensorboard.plugins.core import core_plugin
from werkzeug.test import Client

import tb_cnnvis as cv
from tb_cnnvis import plugin_loader, snapshots
from tb_cnnvis.callback import CnnVisCallback
from tb_cnnvis.explorer import jobs
from tb_cnnvis.testing.reading import recover_feature_maps

BASE = "/data/plugin/cnnvis/"
HEADERS = {"X-XSRF-Protected": "1"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model fitted 2 epochs with snapshots at steps 0, 1, 2; the log and cache dirs."""
    logdir = str(tmp_path_factory.mktemp("explore_logs"))
    cache = str(tmp_path_factory.mktemp("explore_cache"))
    rng = np.random.default_rng(0)
    x = rng.random((8, models.SIZE, models.SIZE, 3), dtype=np.float32)
    y = rng.integers(0, models.CLASSES, 8)
    model = models.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = CnnVisCallback(
        logdir,
        x[:2],
        y[:2],
        views=["feature_maps"],
        filters_every_n_epochs=1,
        class_names=["a", "b", "c"],
    )
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    return logdir, cache, x[:2]


@pytest.fixture(scope="module")
def client(trained):
    logdir, cache, _ = trained
    saved = os.environ.get("TB_CNNVIS_CACHE")
    os.environ["TB_CNNVIS_CACHE"] = cache
    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), plugin_loader.CnnVisLoader()])
    tb.configure(argv=[None, "--logdir", logdir, "--load_fast=false"])
    flags = tb.flags
    flags.reload_interval, flags.reload_task = 0, "blocking"
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    app = application.TensorBoardWSGIApp(
        flags, [plugin_loader.CnnVisLoader()], ingester.data_provider
    )
    yield Client(app)
    if saved is None:
        del os.environ["TB_CNNVIS_CACHE"]
    else:
        os.environ["TB_CNNVIS_CACHE"] = saved


def post(client, body, headers=HEADERS, raw=None):
    """POST /explore; the response."""
    data = raw if raw is not None else json.dumps(body)
    return client.post(
        BASE + "explore", data=data, headers=headers, content_type="application/json"
    )


def result(client, body):
    """The 200 JSON of an explore request (polling its 202s)."""
    response = post(client, body)
    deadline = time.monotonic() + 120
    while response.status_code == 202:
        assert time.monotonic() < deadline
        answer = response.get_json()
        assert 0 <= answer["progress"] <= 1
        time.sleep(0.1)
        response = client.get(BASE + answer["poll"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def pixels(client, url):
    """The decoded pixels of an image URL relative to the plugin."""
    response = client.get(BASE + url)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.data)))


def png_base64(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def snapshot(trained, step):
    path = os.path.join(
        snapshots.model_dir(os.path.join(trained[0], "cnnvis")), f"step-{step}.keras"
    )
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def test_grad_cam_at_an_unlogged_layer_for_an_upload_equals_cv_grad_cam(client, trained):
    upload = np.random.default_rng(3).integers(0, 256, (models.SIZE, models.SIZE, 3), np.uint8)
    body = {
        "run": "cnnvis",
        "step": 1,
        "view": "grad_cam",
        "layer": "conv1",
        "image": {"png": png_base64(upload)},
        "class_index": 2,
    }
    answer = result(client, body)
    assert answer["facts"]["class_index"] == [2]
    assert (answer["run"], answer["step"]) == ("cnnvis", 1)
    assert answer["content"]["layer"] == "conv1" and answer["content"]["kind"] == "grad_cam"
    expected = cv.grad_cam(snapshot(trained, 1), upload[None] / 255.0, "conv1", class_index=2)
    served = pixels(client, answer["images"][0])
    np.testing.assert_array_equal(served, np.round(np.clip(expected[0], 0, 1) * 255))
    other = cv.grad_cam(snapshot(trained, 0), upload[None] / 255.0, "conv1", class_index=2)
    assert not np.array_equal(served, np.round(np.clip(other[0], 0, 1) * 255))


def test_feature_maps_of_a_probe_at_chosen_channels(client, trained):
    answer = result(
        client,
        {
            "run": "cnnvis",
            "step": 2,
            "view": "feature_maps",
            "layer": "pool1",
            "image": {"probe": 1},
            "channels": [3, 0],
        },
    )
    assert answer["facts"]["channels"] == [3, 0]
    pngs = [client.get(BASE + url).data for url in answer["images"]]
    recovered = recover_feature_maps(answer["facts"], pngs)
    true = cv.feature_maps(snapshot(trained, 2), trained[2][1:2], "pool1")[..., [3, 0]]
    span = float(true.max() - true.min())
    np.testing.assert_allclose(recovered, true, atol=span / 255)


def test_a_jpeg_upload_of_another_size_is_resized_to_the_input(client):
    buffer = io.BytesIO()
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(buffer, format="JPEG")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    answer = result(
        client, {**GOOD, "view": "feature_maps", "layer": "conv1", "image": {"png": png}}
    )
    assert answer["facts"]["map_size"] == [models.SIZE, models.SIZE]


def test_a_projection_of_a_chosen_channel(client):
    answer = result(client, {**GOOD, "view": "guided_backprop", "layer": "conv2", "channels": [4]})
    assert answer["facts"]["channel"] == [4] and len(answer["images"]) == 1


def test_a_repeated_request_is_answered_from_the_cache(client):
    body = {
        "run": "cnnvis",
        "step": 0,
        "view": "feature_maps",
        "layer": "conv2",
        "image": {"probe": 0},
    }
    first = result(client, body)
    began = time.perf_counter()
    again = post(client, body)
    assert again.status_code == 200 and again.get_json()["images"] == first["images"]
    assert time.perf_counter() - began < 1.0


def test_explore_info_lists_steps_and_every_4d_layer(client):
    response = client.get(BASE + "explore_info?run=cnnvis")
    assert response.status_code == 200, response.get_data(as_text=True)
    info = response.get_json()
    assert info["steps"] == [0, 1, 2] and info["probes"] == 2
    assert [layer["path"] for layer in info["layers"]] == ["conv1", "pool1", "conv2"]
    assert info["class_names"] == ["a", "b", "c"] and info["input_shape"] == [16, 16, 3]


def _big_png():
    buffer = io.BytesIO()
    Image.new("L", (5000, 5000)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _damaged_png():
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 16, 16)
    return base64.b64encode(header + b"not a png" * 20).decode("ascii")


GOOD = {"run": "cnnvis", "step": 1, "view": "grad_cam", "layer": "conv1", "image": {"probe": 0}}


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"run": "nope"}, 404, "no run 'nope'"),
        ({"run": "../cnnvis"}, 404, "no run"),
        ({"step": 7}, 404, "steps: [0, 1, 2]"),
        ({"layer": "head"}, 404, "the layers are ['conv1', 'pool1', 'conv2']"),
        ({"view": "xray"}, 404, "unknown view 'xray'"),
        ({"class_index": 99}, 400, "class"),
        ({"image": {"probe": 5}}, 404, "2 probe images"),
        ({"image": {"png": base64.b64encode(b"GIF89a....").decode()}}, 415, "PNG or a JPEG"),
        ({"image": {"png": "@@@"}}, 400, "base64"),
        ({"image": {"png": _big_png()}}, 413, "5000x5000"),
        ({"image": {"png": _damaged_png()}}, 400, "cannot be read as a PNG"),
        ({"image": {"png": base64.b64encode(b"\xff\xd8\xff\xe0").decode()}}, 400, "JPEG"),
        ({"step": "1"}, 400, "step must be an integer"),
        ({"channels": [0, 0]}, 400, "distinct"),
        ({"extra": 1}, 400, "unknown fields ['extra']"),
    ],
)
def test_hostile_requests_are_4xx_with_a_sentence(client, change, status, words):
    response = post(client, {**GOOD, **change})
    while response.status_code == 202:  # checked by the worker (decoding)
        time.sleep(0.05)
        response = client.get(BASE + response.get_json()["poll"])
    assert response.status_code == status, response.get_data(as_text=True)
    assert words in response.get_json()["error"]


def test_posts_without_the_xsrf_header_or_json_are_refused(client):
    assert post(client, GOOD, headers={}).status_code == 403
    response = client.post(
        BASE + "explore", data=json.dumps(GOOD), headers=HEADERS, content_type="text/plain"
    )
    assert response.status_code == 415
    assert post(client, None, raw=b"{not json").status_code == 400
    assert post(client, None, raw=b"[1, 2]").status_code == 400
    assert client.get(BASE + "explore?job=zzz").status_code == 400
    assert client.get(BASE + "explore?job=" + "a" * 32).status_code == 404
    assert client.get(BASE + "explore_image?k=../../etc&i=0").status_code == 404


def test_50_concurrent_requests_are_answered_without_5xx(client, trained):
    codes = []

    def one(i):
        body = {
            **GOOD,
            "view": "feature_maps",
            "layer": ["conv1", "pool1", "conv2"][i % 3],
            "image": {"probe": i % 2},
            "step": i % 3,
        }
        response = post(client, body)
        codes.append(response.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(codes) == 50 and all(code in (200, 202, 429) for code in codes), codes
    written = os.listdir(trained[1])
    assert written and all(re.fullmatch(r"[0-9a-f]{64}\.(json|bin)", name) for name in written)


def test_a_new_batch_cancels_the_sessions_queued_jobs():
    queue = jobs.JobQueue()
    gate = threading.Event()
    first = queue.submit("a", lambda job: gate.wait(10), session="s", batch="1")
    while first.state != "running":  # the worker took it
        time.sleep(0.01)
    queued = queue.submit("b", lambda job: None, session="s", batch="1")
    later = queue.submit("c", lambda job: None, session="s", batch="2")
    assert queued.state == "cancelled" and queued.code == 409
    gate.set()
    assert queue.wait(later, 10).state == "done"
    assert queue.wait(first, 10).state == "done"


def test_cv_explore_serves_a_live_subclassed_model_over_http(tmp_path, capsys):
    import urllib.request

    from tb_cnnvis.explorer import sources

    model = models.subclassed()
    images = np.random.default_rng(1).random((2, models.SIZE, models.SIZE, 3), dtype=np.float32)
    model(images)
    layer = cv.conv_layers(model)[0]
    os.environ.setdefault("TB_CNNVIS_CACHE", str(tmp_path / "cache"))
    try:
        url = cv.explore(str(tmp_path), models=model, probe_images=images)
        assert url in capsys.readouterr().out
        body = {
            "run": "live",
            "step": -1,
            "view": "feature_maps",
            "layer": layer,
            "image": {"probe": 1},
        }
        answer = None
        for _ in range(600):
            request = urllib.request.Request(
                url + BASE.lstrip("/") + ("explore" if answer is None else answer["poll"]),
                data=json.dumps(body).encode() if answer is None else None,
                headers={**HEADERS, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                status, answer = response.status, json.load(response)
            if status == 200:
                break
            time.sleep(0.1)
        pngs = []
        for image in answer["images"]:
            with urllib.request.urlopen(url + BASE.lstrip("/") + image, timeout=60) as response:
                pngs.append(response.read())
        true = cv.feature_maps(model, images[1:], layer)
        recovered = recover_feature_maps(answer["facts"], pngs)
        np.testing.assert_allclose(recovered, true, atol=float(true.max() - true.min()) / 255)
    finally:
        sources.clear_live()

"""plugin: the routes of ``http_api.md`` over TensorBoard's own data provider, in process.

Real event files (``write_synthetic_run``) -> ``LocalDataIngester`` built from flags parsed by
TensorBoard's own argparse (so the 10-samples default is in force unless ``fix_flags`` acts)
-> ``TensorBoardWSGIApp`` with the loader -> ``werkzeug.test.Client``.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from tensorboard import program
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_ingester
from tensorboard.plugins import base_plugin
from tensorboard.plugins.core import core_plugin
from werkzeug.test import Client

from tb_cnnvis import metadata, plugin, plugin_data, plugin_loader, summary, testing, views
from tb_cnnvis.testing import write_synthetic_run

EPOCHS = 15
BASE = "/data/plugin/cnnvis/"
EXPECTED_TAG_ORDER = [
    "probes",
    "smoothgrad/input",  # attributions are at the input: before the first layer
    "integrated_gradients/input",
    "occlusion/input",
    "feature_maps/conv1",
    "filter_patterns/conv1",
    "deepdream/conv1",
    "deconvnet/conv1",
    "guided_backprop/conv1",
    "saliency/conv1",
    "top_examples/conv1",
    "feature_maps/base/conv2",
    "filter_patterns/base/conv2",
    "deepdream/base/conv2",
    "grad_cam/base/conv2",
    "gradcam_plus_plus/base/conv2",
    "score_cam/base/conv2",
    "layercam/base/conv2",
    "hirescam/base/conv2",
    "xgradcam/base/conv2",
    "eigencam/base/conv2",
    "deconvnet/base/conv2",
    "guided_backprop/base/conv2",
    "saliency/base/conv2",
    "top_examples/base/conv2",
]


def tensorboard_flags(logdir, *extra_args, fix_flags=True):
    """Flags as the ``tensorboard`` command parses them, with or without our ``fix_flags``."""
    loaders = [core_plugin.CorePluginLoader()]
    if fix_flags:
        loaders.append(plugin_loader.CnnVisLoader())
    tb = program.TensorBoard(plugins=loaders)
    tb.configure(argv=[None, "--logdir", logdir, "--load_fast=false", *extra_args])
    flags = tb.flags
    flags.reload_interval, flags.reload_task = 0, "blocking"  # load once, now
    return flags


def make_client(logdir, *extra_args, fix_flags=True):
    """A werkzeug client on a TensorBoard WSGI app holding only the cnnvis plugin."""
    flags = tensorboard_flags(logdir, *extra_args, fix_flags=fix_flags)
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    app = application.TensorBoardWSGIApp(
        flags, [plugin_loader.CnnVisLoader()], ingester.data_provider
    )
    return Client(app), ingester


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 15-epoch synthetic run (steps 0..14), 2 layers, 2 probes; and when it was written."""
    logdir = str(tmp_path_factory.mktemp("synthetic"))
    start = time.time()
    info = write_synthetic_run(logdir, epochs=EPOCHS - 1, layers=2, probes=2)
    return logdir, info, start, time.time()


@pytest.fixture(scope="module")
def client(synthetic):
    return make_client(synthetic[0])[0]


def get_json(client, route, status=200):
    response = client.get(BASE + route)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return response.json


def test_tags_lists_every_tag_with_its_stored_metadata_in_model_order(client, synthetic):
    _, info, start, end = synthetic
    body = get_json(client, "tags")
    assert [run["run"] for run in body["runs"]] == ["cnnvis"]
    tags = body["runs"][0]["tags"]
    assert [entry["tag"] for entry in tags] == EXPECTED_TAG_ORDER
    for entry in tags:
        assert start <= entry.pop("max_wall_time") <= end
        tag, series = entry["tag"], entry.pop("series")
        if tag in ("probes", "grad_cam/base/conv2"):  # /steps by the series id: the same
            body = get_json(client, f"steps?s={series}")
            assert body == get_json(client, f"steps?run=cnnvis&tag={tag}")
            assert body["steps"][0]["images"][0].startswith(f"blob?s={series}&step=0&i=0&t=")
        expected = json.loads(json.dumps(info["tags"][tag]))
        expected.update(tag=tag, max_step=0 if tag == "probes" else EPOCHS - 1)
        assert entry == expected


def test_tags_lists_the_registered_views_in_tab_order(client):
    body = get_json(client, "tags")
    assert body["views"] == views.catalog()
    assert [view["kind"] for view in body["views"]] == list(views.kinds())
    assert {"feature_maps", "grad_cam", "deconvnet"} <= {view["kind"] for view in body["views"]}
    for view in body["views"]:
        assert set(view) == {"kind", "family", "label", "blurb"}
        assert view["label"] and view["blurb"]


def write_future_version_run(logdir):
    """A run ``future/cnnvis`` with one current tag and one of stored-format version 4."""
    import tensorflow as tf

    common = {"input_shape": (8, 8, 3), "probe_count": 1, "layer_class": "Conv2D"}
    current = summary.content(
        "feature_maps", "conv1", layer_index=0, output_shape=(8, 8, 2), **common
    )
    future = {
        **summary.content("feature_maps", "conv2", layer_index=1, output_shape=(4, 4, 2), **common),
        "version": 4,
    }
    maps = np.arange(2 * 8 * 8 * 2, dtype="float32").reshape(2, 8, 8, 2)[:1]
    writer = tf.summary.create_file_writer(os.path.join(logdir, "future", "cnnvis"))
    with writer.as_default():
        views.feature_maps.write_feature_maps(current, maps, 0)
        views.feature_maps.write_feature_maps(future, maps[:, ::2, ::2], 0)
    writer.close()


def test_a_tag_of_another_stored_format_version_is_listed_as_unsupported_and_warned_once(
    tmp_path, caplog
):
    write_future_version_run(str(tmp_path))
    future, _ = make_client(str(tmp_path))
    with caplog.at_level("WARNING", logger=plugin.logger.name):
        tags = {entry["tag"]: entry for entry in get_json(future, "tags")["runs"][0]["tags"]}
        get_json(future, "tags")  # asked again: no second warning
    assert tags["feature_maps/conv2"]["version"] == 4
    assert tags["feature_maps/conv2"]["unsupported"] == (
        "Written by tb-cnnvis stored-format version 4; this plugin reads version 1, 2 or 3; "
        "upgrade tb-cnnvis."
    )
    assert "unsupported" not in tags["feature_maps/conv1"]
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "'future/cnnvis'" in warnings[0] and "'feature_maps/conv2'" in warnings[0]
    assert "stored-format version 4" in warnings[0]


def test_unsupported_reason_says_which_version_was_written_and_what_to_do():
    assert plugin.unsupported_reason(metadata.FORMAT_VERSION) is None
    assert plugin.unsupported_reason(1) is None  # tb-cnnvis 0.1's logs: PNGs in the events
    assert plugin.unsupported_reason(2) is None  # PNGs in pixel files, facts in the events
    assert plugin.unsupported_reason(4).endswith("reads version 1, 2 or 3; upgrade tb-cnnvis.")
    assert plugin.unsupported_reason(0).endswith("log it again.")
    for odd in (None, "1", 1.0, True):
        assert "unknown stored-format version" in plugin.unsupported_reason(odd)


def test_steps_returns_all_15_epochs_with_facts_and_image_urls(client):
    body = get_json(client, "steps?run=cnnvis&tag=grad_cam/base/conv2")
    assert body["run"] == "cnnvis" and body["tag"] == "grad_cam/base/conv2"
    assert [step["step"] for step in body["steps"]] == list(range(EPOCHS))
    walls = [step["wall_time"] for step in body["steps"]]
    assert walls == sorted(walls)
    for step in body["steps"]:
        assert len(step["images"]) == len(step["facts"]["images"]) == 2
        assert step["facts"]["class_index"] == step["facts"]["predicted"]
        series = step["images"][0].split("&")[0]
        assert series.startswith("blob?s=") and len(series) == len("blob?s=") + 16
        expected = [f"{series}&step={step['step']}&i={i}&t={step['wall_time']!r}" for i in (0, 1)]
        assert step["images"] == expected


def test_steps_with_a_step_parameter_returns_only_that_step(client):
    body = get_json(client, "steps?run=cnnvis&tag=feature_maps/conv1&step=7")
    assert [step["step"] for step in body["steps"]] == [7]


@pytest.mark.parametrize("tag", ["feature_maps/conv1", "filter_patterns/base/conv2", "probes"])
def test_blob_urls_serve_pngs_that_decode_to_the_described_atlas(client, tag):
    body = get_json(client, f"steps?run=cnnvis&tag={tag}")
    step = body["steps"][-1]
    for url, described in zip(step["images"], step["facts"]["images"], strict=True):
        response = client.get(BASE + url)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Cache-Control"] == "private, max-age=86400"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        pixels = np.asarray(Image.open(io.BytesIO(response.data)))
        rows, cols = described["grid"]
        height, width = described["tile"]
        expected = (rows * height, cols * width)
        expected += () if described["channels"] == 1 else (described["channels"],)
        assert pixels.shape == expected
        assert pixels.dtype == np.uint8 and pixels.max() > pixels.min()


def test_without_fix_flags_tensorboard_would_keep_only_10_epochs(synthetic):
    unfixed, _ = make_client(synthetic[0], fix_flags=False)
    steps = get_json(unfixed, "steps?run=cnnvis&tag=feature_maps/conv1")["steps"]
    assert len(steps) == 10 and steps[-1]["step"] == EPOCHS - 1


def test_an_explicit_samples_per_plugin_flag_wins_over_the_plugin_default(synthetic):
    flags = tensorboard_flags(synthetic[0], "--samples_per_plugin", "images=3,cnnvis=4")
    assert flags.samples_per_plugin == {"images": 3, "cnnvis": 4}
    limited, _ = make_client(synthetic[0], "--samples_per_plugin", "cnnvis=4")
    steps = get_json(limited, "steps?run=cnnvis&tag=feature_maps/conv1")["steps"]
    assert len(steps) == 4 and steps[-1]["step"] == EPOCHS - 1


def test_fix_flags_sets_the_documented_default_and_normalizes_strings():
    flags = tensorboard_flags("/nonexistent")
    assert flags.samples_per_plugin == {"cnnvis": plugin_loader.DEFAULT_SAMPLES_PER_TAG}
    assert plugin_loader.DEFAULT_SAMPLES_PER_TAG == 1000
    namespace = type("Flags", (), {"samples_per_plugin": "images=5, cnnvis=0"})()
    plugin_loader.CnnVisLoader().fix_flags(namespace)
    assert namespace.samples_per_plugin == {"images": 5, "cnnvis": 0}
    with pytest.raises(base_plugin.FlagsError, match="name=count"):
        plugin_loader.parse_samples_per_plugin("cnnvis=lots")


def test_frontend_metadata_names_the_es_module_route_and_the_tab():
    frontend = plugin.CnnVisPlugin(base_plugin.TBContext()).frontend_metadata()
    assert frontend.es_module_path == "/index.js"
    assert frontend.tab_name == "CNN Vis"
    assert "/index.js" in plugin.CnnVisPlugin(base_plugin.TBContext()).get_plugin_apps()


@pytest.mark.parametrize(
    ("route", "status", "message"),
    [
        ("steps?tag=probes", 400, "missing query parameter 'run'"),
        ("steps?run=cnnvis", 400, "missing query parameter 'tag'"),
        ("steps?run=nope&tag=probes", 404, "runs with cnnvis data: ['cnnvis']"),
        ("steps?run=cnnvis&tag=nope", 404, "its tags: ['deconvnet/base/conv2'"),
        ("steps?run=cnnvis&tag=probes&step=3", 404, "has no step 3"),
        ("steps?run=cnnvis&tag=probes&step=two", 400, "step must be a non-negative integer"),
        ("blob", 400, "missing query parameter 's'"),
        ("blob?s=nope&step=0&i=0", 400, "s must be the 16-character series id"),
        ("blob?s=0123456789abcdef&step=0&i=0", 404, "no cnnvis series has this id"),
        ("blob?s=0123456789abcdef&step=-1&i=0", 400, "step must be a non-negative integer"),
        ("blob?s=0123456789abcdef&step=0&i=-1", 400, "i must be a non-negative integer"),
        ("blob?s=0123456789abcdef&step=0", 400, "missing query parameter 'i'"),
        ("blob?s=" + "A" * 5000, 400, "too long"),
        ("model.js?x=1", 404, "no frontend file 'model.js'"),
    ],
)
def test_bad_input_is_a_json_error_without_a_stack_trace(client, route, status, message):
    if route.startswith("model.js") and (plugin.frontend_dir() / "model.js").is_file():
        route = "no-such-file.js"  # the frontend has model.js now: use an unlisted file
        status, message = 404, None
    response = client.get(BASE + route)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    if message is not None:
        assert response.headers["Content-Type"] == "application/json"
        assert message in response.json["error"]


def test_an_image_index_out_of_range_or_a_step_not_stored_is_404_with_a_sentence(client, synthetic):
    [step] = get_json(client, "steps?run=cnnvis&tag=probes")["steps"]
    series = step["images"][0].split("&")[0]
    response = client.get(BASE + f"{series}&step=0&i=2&t={step['wall_time']!r}")
    assert response.status_code == 404 and response.json == {
        "error": "Not found: step 0 of this series has 2 images; there is no image 2"
    }
    response = client.get(BASE + f"{series}&step=5&i=0&t={step['wall_time']!r}")
    assert response.status_code == 404
    assert response.json == {"error": "Not found: probes of run 'cnnvis' has no step 5"}
    fresh = make_client(synthetic[0])[0]  # no /steps asked yet: found anew
    response = fresh.get(BASE + f"{series}&step=0&i=1")  # without t: the stored step
    assert (
        response.status_code == 200 and response.data == client.get(BASE + step["images"][1]).data
    )
    response = fresh.get(BASE + f"{series}&step=0&i=1&t=12.5")
    assert response.status_code == 404
    assert response.json["error"].endswith(f"(t={step['wall_time']!r}, not 12.5); reload")


@pytest.mark.parametrize(
    "path",
    [
        "../../../etc/passwd",
        "%2e%2e/%2e%2e/setup.py",
        "..%2f..%2fsetup.py",
        "..\\..\\setup.py",
        "%5c..%5csetup.py",
        "/etc/passwd",
        "index.js/../../plugin.py",
        "frontend/index.js",
        "plugin.py",
        "http_api.md",
    ],
)
def test_paths_outside_the_allow_list_are_404(client, path):
    response = client.get(BASE + path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].split(";")[0] in ("text/plain", "application/json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"import" not in response.data and b"root:" not in response.data


def test_static_files_come_from_the_frontend_folder_as_text_javascript(client):
    response = client.get(BASE + "index.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == (plugin.frontend_dir() / "index.js").read_bytes()
    assert plugin.frontend_dir() == plugin.Path(plugin.__file__).resolve().parents[1] / "frontend"


def test_every_frontend_file_has_a_name_that_is_served():
    folder = plugin.frontend_dir()
    served = plugin.static_files(folder)
    scripts = sorted(path.name for path in folder.iterdir() if path.suffix in (".js", ".css"))
    assert sorted(served) == scripts and "index.js" in served and "style.css" in served
    assert {served[name] for name in scripts} == {"text/javascript", "text/css"}
    apps = plugin.CnnVisPlugin(base_plugin.TBContext()).get_plugin_apps()
    explore = {"/explore", "/explore_image", "/explore_info"}  # tb_cnnvis/explorer/routes.py
    assert set(apps) == {"/tags", "/steps", "/blob", *explore, *("/" + name for name in scripts)}


@pytest.fixture
def made_up_frontend(tmp_path, monkeypatch, synthetic):
    """A client whose plugin serves a made-up frontend folder; and that folder."""
    folder = tmp_path / "frontend"
    (folder / "sub").mkdir(parents=True)
    names = ["index.js", "family_cam.js", "style.css", "page.html", "Upper.js", "v2.js"]
    names += ["a-b.js", "notes.txt", "style.css.map", ".hidden.js", "sub/inner.js"]
    for name in names:
        (folder / name).write_text(f"/* {name} */ import x from './y.js';\n")
    monkeypatch.setattr(plugin, "frontend_dir", lambda: folder)
    return make_client(synthetic[0])[0], folder


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index.js", "text/javascript"),
        ("family_cam.js", "text/javascript"),
        ("style.css", "text/css"),
    ],
)
def test_files_named_by_the_pattern_are_served_with_the_type_of_their_extension(
    made_up_frontend, name, content_type
):
    client, folder = made_up_frontend
    response = client.get(BASE + name)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == f"{content_type}; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == (folder / name).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "page.html",
        "Upper.js",
        "v2.js",
        "a-b.js",
        "notes.txt",
        "style.css.map",
        ".hidden.js",
        "sub/inner.js",
        "sub",
        "missing.js",
        "index.JS",
        "index.js%00.html",
    ],
)
def test_files_the_pattern_does_not_name_or_that_are_missing_are_404(made_up_frontend, name):
    client, _ = made_up_frontend
    response = client.get(BASE + name)
    assert response.status_code == 404
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"import" not in response.data


def test_a_frontend_file_removed_while_serving_is_404(made_up_frontend):
    client, folder = made_up_frontend
    (folder / "family_cam.js").unlink()
    response = client.get(BASE + "family_cam.js")
    assert response.status_code == 404
    assert response.json == {"error": "Not found: no frontend file 'family_cam.js'"}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("route", ["tags", "steps?run=cnnvis&tag=probes", "blob?s=x", "index.js"])
def test_only_get_is_allowed(client, method, route):
    response = client.open(BASE + route, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json == {"error": f"method {method} not allowed; use GET"}
    assert client.head(BASE + route).status_code in (200, 400, 404)


def test_no_route_writes_to_the_logdir(synthetic):
    logdir = synthetic[0]

    def snapshot():
        return {
            os.path.join(root, name): os.stat(os.path.join(root, name)).st_mtime_ns
            for root, _, names in os.walk(logdir)
            for name in names
        }

    before = snapshot()
    fresh, _ = make_client(logdir)
    get_json(fresh, "tags")
    body = get_json(fresh, "steps?run=cnnvis&tag=saliency/conv1")
    fresh.get(BASE + body["steps"][0]["images"][0])
    fresh.get(BASE + "index.js")
    assert snapshot() == before


def test_corrupted_and_truncated_event_files_beside_good_ones_do_not_hide_good_data(
    synthetic, tmp_path
):
    logdir = tmp_path / "logs"
    good = logdir / "cnnvis"
    good.mkdir(parents=True)
    [source] = [
        name for name in os.listdir(os.path.join(synthetic[0], "cnnvis")) if "tfevents" in name
    ]
    with open(os.path.join(synthetic[0], "cnnvis", source), "rb") as events:
        data = events.read()
    (good / source).write_bytes(data)
    (good / "events.out.tfevents.9999999999.zz.garbage").write_bytes(b"\x07garbage" * 100)
    for name, content in [("truncated", data[: len(data) // 2]), ("garbage", os.urandom(999))]:
        (logdir / name).mkdir()
        (logdir / name / "events.out.tfevents.1.x").write_bytes(content)
    for name in ("cnnvis", "truncated"):  # the pixel files beside the event files
        shutil.copytree(os.path.join(synthetic[0], "cnnvis", "plugins"), logdir / name / "plugins")
    mixed, _ = make_client(str(logdir))
    runs = get_json(mixed, "tags")["runs"]
    assert runs[0]["run"] == "cnnvis"
    assert [entry["tag"] for entry in runs[0]["tags"]] == EXPECTED_TAG_ORDER
    steps = get_json(mixed, "steps?run=cnnvis&tag=feature_maps/base/conv2")["steps"]
    assert [step["step"] for step in steps] == list(range(EPOCHS))
    assert [run["run"] for run in runs] == ["cnnvis", "truncated"]  # "garbage" holds nothing
    cut = get_json(mixed, "steps?run=truncated&tag=feature_maps/conv1")["steps"]
    assert [step["step"] for step in cut] == list(range(len(cut)))  # the complete records
    assert 1 <= len(cut) < EPOCHS


def test_facts_are_read_once_per_blob_then_served_from_the_cache(synthetic):
    fresh, ingester = make_client(synthetic[0])
    provider = ingester.data_provider
    reads = []
    original = provider.read_blob

    def counting_read_blob(ctx=None, *, blob_key):
        reads.append(blob_key)
        return original(ctx, blob_key=blob_key)

    provider.read_blob = counting_read_blob
    first = get_json(fresh, "steps?run=cnnvis&tag=feature_maps/conv1")
    assert len(reads) == EPOCHS
    assert get_json(fresh, "steps?run=cnnvis&tag=feature_maps/conv1") == first
    assert len(reads) == EPOCHS


def test_sized_lru_cache_evicts_least_recently_used_entries_past_its_bound():
    cache = plugin_data.SizedLruCache(max_size=10)
    cache.put("a", "1234")
    cache.put("b", "5678")
    assert cache.get("a") == "1234"  # "a" is now the most recently used
    cache.put("c", "90")
    cache.put("d", "xy")
    assert (cache.get("b"), cache.get("a"), cache.get("c"), cache.get("d")) == (
        None,
        "1234",
        "90",
        "xy",
    )
    cache.put("huge", "z" * 11)
    assert cache.get("huge") is None and len(cache) == 3


def test_facts_with_nan_or_unreadable_json_are_served_as_valid_json():
    assert json.loads(plugin_data.facts_text(b'{"probability": [NaN, Infinity, 0.5]}')) == {
        "probability": ["NaN", "Infinity", 0.5]
    }
    assert plugin_data.facts_text(b"\xff not json") == "null"


def test_is_active_is_cheap_and_defers_to_the_data_provider_listing():
    assert plugin.CnnVisPlugin(base_plugin.TBContext()).is_active() is False
    assert plugin.CnnVisPlugin.plugin_name == metadata.PLUGIN_NAME


class RemoteLikeProvider:
    """A real provider seen as remote (not the in-memory one): counts its ``read_blob`` calls."""

    def __init__(self, inner):
        self._inner = inner
        self.reads = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def read_blob(self, ctx=None, *, blob_key):
        self.reads.append(blob_key)
        return self._inner.read_blob(ctx, blob_key=blob_key)


def remote_client_of(logdir):
    """A client over the logdir whose provider counts its ``read_blob`` calls."""
    flags = tensorboard_flags(logdir)
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    remote = RemoteLikeProvider(ingester.data_provider)
    app = application.TensorBoardWSGIApp(flags, [plugin_loader.CnnVisLoader()], remote)
    return Client(app), remote


@pytest.fixture(scope="module")
def version_1(tmp_path_factory):
    """The ``synthetic`` run written as tb-cnnvis 0.1 did: PNGs in the event files."""
    logdir = str(tmp_path_factory.mktemp("version_1"))
    write_synthetic_run(logdir, epochs=EPOCHS - 1, layers=2, probes=2, in_events=True)
    return logdir


@pytest.fixture(scope="module")
def version_2(tmp_path_factory):
    """The ``synthetic`` run as stored-format version 2 wrote it: PNGs in pixel files, the
    facts (with their ``"pixels"`` reference) in the event files."""
    from tb_cnnvis import blobstore

    def layout(pending):
        return b"".join(pending.pngs), [facts for _, facts, _, _ in pending.records]

    logdir = str(tmp_path_factory.mktemp("version_2"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blobstore.PendingStep, "layout", layout)
        patch.setattr(metadata, "FORMAT_VERSION", 2)
        write_synthetic_run(logdir, epochs=EPOCHS - 1, layers=2, probes=2)
    return logdir


def test_with_a_remote_provider_facts_are_read_in_parallel_and_images_ahead(version_1):
    remote_client, remote = remote_client_of(version_1)
    route = "steps?run=cnnvis&tag=feature_maps/conv1"
    body = get_json(remote_client, route)
    local = make_client(version_1)[0]
    assert body == get_json(local, route)  # same answer as with the in-memory provider
    images = [url for step in body["steps"] for url in step["images"]]
    assert len(images) == 2 * EPOCHS
    deadline = time.monotonic() + 30
    while len(remote.reads) < EPOCHS + len(images) and time.monotonic() < deadline:
        time.sleep(0.05)  # the images are being read ahead in the background
    assert len(remote.reads) == EPOCHS + len(images)
    for url in images:
        response = remote_client.get(BASE + url)
        assert response.status_code == 200
        assert response.data == local.get(BASE + url).data
    assert len(remote.reads) == EPOCHS + len(images)  # every image came from the cache
    get_json(remote_client, route)
    assert len(remote.reads) == EPOCHS + len(images)  # nothing is read ahead twice


def test_pixel_files_serve_the_same_pngs_as_versions_1_and_2_and_the_provider_holds_references(
    synthetic, version_1, version_2, client
):
    remote_client, remote = remote_client_of(synthetic[0])
    for old in (make_client(version_1)[0], make_client(version_2)[0]):
        for tag in ("feature_maps/conv1", "grad_cam/base/conv2", "probes"):
            body = get_json(remote_client, f"steps?run=cnnvis&tag={tag}")
            assert body == get_json(client, f"steps?run=cnnvis&tag={tag}")
            before = get_json(old, f"steps?run=cnnvis&tag={tag}")
            assert [s["facts"] for s in body["steps"]] == [s["facts"] for s in before["steps"]]
            for new_step, old_step in zip(body["steps"], before["steps"], strict=True):
                for new_url, old_url in zip(new_step["images"], old_step["images"], strict=True):
                    assert remote_client.get(BASE + new_url).data == old.get(BASE + old_url).data
    assert len(remote.reads) == 2 * EPOCHS + 1  # one reference per step: no PNG in the events
    for logdir, version in ((synthetic[0], 3), (version_2, 2)):
        provider, ctx, eid = testing.data_provider(logdir, {"cnnvis": 1000})
        data = provider.read_blob_sequences(
            ctx, experiment_id=eid, plugin_name="cnnvis", downsample=99
        )
        assert {len(datum.values) for series in data["cnnvis"].values() for datum in series} == {1}
        [datum, *_] = data["cnnvis"]["grad_cam/base/conv2"]
        stored = json.loads(provider.read_blob(ctx, blob_key=datum.values[0].blob_key))
        if version == 3:  # a reference to the facts in the pixel file
            assert list(stored) == ["facts"] and list(stored["facts"]) == ["file", "span"]
        else:  # the facts themselves, their images in a pixel file
            assert {"class_index", "images", "pixels"} <= set(stored)
        content = provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name="cnnvis")
        assert json.loads(content["cnnvis"]["probes"].plugin_content)["version"] == version


def test_the_entry_point_and_the_plugin_import_without_tensorflow_or_keras(tmp_path):
    code = (
        "import sys, importlib.metadata as md\n"
        "[entry] = [e for e in md.entry_points(group='tensorboard_plugins') if e.name == 'cnnvis']\n"
        "loader = entry.load()()\n"
        "from tensorboard.plugins import base_plugin\n"
        "plugin = loader.load(base_plugin.TBContext(logdir='.'))\n"
        "apps = plugin.get_plugin_apps()\n"  # the explore routes load nothing either
        "print(type(plugin).__name__, '/explore' in apps,\n"
        "      sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CnnVisPlugin", "True", "[]"]


def test_tags_describe_their_views_and_the_plugin_labels_what_the_log_says(tmp_path, version_1):
    import tensorflow as tf

    stored = {
        **summary.content("grad_cam", "conv1", input_shape=(8, 8, 3), probe_count=1),
        "label": "Grad-CAM as logged",
        "blurb": "the sentence of the version that wrote it.",
    }
    assert {key: stored[key] for key in ("family", "view_order")} == {
        "family": "cam",
        "view_order": list(views.kinds()).index("grad_cam"),
    }
    writer = tf.summary.create_file_writer(str(tmp_path / "cnnvis"))
    with writer.as_default():
        views.cams.write_cam(stored, np.ones((1, 8, 8)), 0, class_index=[0], predicted=[0],
                             probability=[0.5], target_probability=[0.5], cam_max=[1.0])  # fmt: skip
    writer.close()
    body = get_json(make_client(str(tmp_path))[0], "tags")
    assert body["views"] == [
        {"kind": "grad_cam", "family": "cam", "label": "Grad-CAM as logged",
         "blurb": "the sentence of the version that wrote it."}
    ]  # fmt: skip
    old = get_json(make_client(version_1)[0], "tags")  # version 1 tags: today's registry
    assert "label" not in old["runs"][0]["tags"][1]
    assert old["views"] == views.catalog()
    assert [entry["tag"] for entry in old["runs"][0]["tags"]] == EXPECTED_TAG_ORDER


def test_neither_the_writers_nor_the_plugin_import_the_views_registry():
    import ast
    import pathlib

    package = pathlib.Path(plugin.__file__).parent
    modules = ["facts", "summary", "blobstore", "metadata", "plugin", "plugin_data", "plugin_steps"]
    for name in modules:
        tree = ast.parse((package / f"{name}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        assert not {i for i in imported if i.startswith("tb_cnnvis.views")}, name


def test_under_a_path_prefix_the_relative_image_urls_of_steps_serve_the_pngs(synthetic, client):
    prefixed, _ = make_client(synthetic[0], "--path_prefix", "/deep/tb")
    base = "/deep/tb" + BASE
    body = prefixed.get(base + "steps?run=cnnvis&tag=feature_maps/base/conv2&step=3").json
    [step] = body["steps"]
    for url in step["images"]:
        response = prefixed.get(base + url)  # resolved against the iframe's <base href>
        assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
        assert response.data == client.get(BASE + url).data
    assert prefixed.get(BASE + step["images"][0]).status_code == 404  # only under the prefix


def test_run_notes_are_per_step_forgotten_when_the_step_reads_well_and_capped():
    from tb_cnnvis.plugin_steps import RunNotes

    notes = RunNotes(limit=3)
    for step in range(5):
        notes.set(
            "", "run", "grad_cam/conv4", step, f"its pixel file pixels/{step}-x.bin is missing"
        )
    notes.set("", "run", "grad_cam/conv4", 1, None)  # renamed into place meanwhile
    for tag in ("feature_maps/conv4", "deconvnet/conv4"):  # one file holds every tag's step
        notes.set("", "run", tag, 0, "its pixel file pixels/0-x.bin is missing")
    assert notes.of("", "run") == [
        "step 0 of deconvnet/conv4 and 2 more tags: its pixel file pixels/0-x.bin is missing; "
        "not shown.",
        "step 2 of grad_cam/conv4: its pixel file pixels/2-x.bin is missing; not shown.",
        "... and 2 more steps not shown.",
    ]
    assert notes.of("", "other") == [] and notes.get("", "run", "grad_cam/conv4", 1) is None


def test_steps_answers_are_gzipped_once_and_kept_until_the_series_changes(synthetic, tmp_path):
    import gzip

    fresh, _ = make_client(synthetic[0])
    route = BASE + "steps?run=cnnvis&tag=deconvnet/conv1"
    zipped = fresh.get(route, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(zipped.data)) == fresh.get(route).json
    assert fresh.get(route, headers={"Accept-Encoding": "gzip"}).data == zipped.data
    logdir = tmp_path / "growing"
    write_synthetic_run(str(logdir), epochs=1, layers=1, probes=1, kinds=["feature_maps"])
    flags = tensorboard_flags(str(logdir))
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    app = application.TensorBoardWSGIApp(
        flags, [plugin_loader.CnnVisLoader()], ingester.data_provider
    )
    growing = Client(app)
    route = BASE + "steps?run=cnnvis&tag=feature_maps/base/conv1"
    assert [s["step"] for s in growing.get(route).json["steps"]] == [0, 1]
    writer = summary.RunWriter(str(logdir / "cnnvis"))  # training goes on: one more step
    with writer.step(2):
        content = summary.content(
            "feature_maps", "base/conv1", input_shape=(32, 32, 3), probe_count=1,
            layer_index=0, output_shape=(32, 32, 4),
        )  # fmt: skip
        views.feature_maps.write_feature_maps(content, np.ones((1, 32, 32, 4)), 2)
    writer.close()
    ingester._multiplexer.Reload()
    [run] = growing.get(BASE + "tags").json["runs"]  # as the dashboard: /tags, then /steps
    assert [tag["max_step"] for tag in run["tags"]] == [2]  # (probes not written here)
    assert [s["step"] for s in growing.get(route).json["steps"]] == [0, 1, 2]


def test_logdir_spec_finds_the_pixel_files_of_named_runs(synthetic, client):
    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), plugin_loader.CnnVisLoader()])
    tb.configure(argv=[None, "--logdir_spec", f"named:{synthetic[0]}", "--load_fast=false"])
    flags = tb.flags
    flags.reload_interval, flags.reload_task = 0, "blocking"
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    named = Client(
        application.TensorBoardWSGIApp(
            flags,
            [plugin_loader.CnnVisLoader()],
            ingester.data_provider,
            deprecated_multiplexer=ingester.deprecated_multiplexer,  # as ``tensorboard`` does
        )
    )
    route = "steps?run={}&tag=grad_cam/base/conv2"
    body = get_json(named, route.format("named/cnnvis"))
    plain = get_json(client, route.format("cnnvis"))
    assert [s["step"] for s in body["steps"]] == list(range(EPOCHS))
    assert [s["facts"] for s in body["steps"]] == [s["facts"] for s in plain["steps"]]
    for new_step, old_step in zip(body["steps"], plain["steps"], strict=True):
        assert (
            named.get(BASE + new_step["images"][0]).data
            == client.get(BASE + old_step["images"][0]).data
        )
    [run] = get_json(named, "tags")["runs"]
    assert run["run"] == "named/cnnvis" and "notes" not in run


def test_a_remote_log_directory_reads_facts_and_pixels_through_tf_gfile(synthetic, client):
    logdir = "ram://cnnvis-plugin-test/logs"  # a tf.io.gfile filesystem: read like gs://
    write_synthetic_run(logdir, epochs=EPOCHS - 1, layers=2, probes=2)
    remote, _ = make_client(logdir)
    route = "steps?run=cnnvis&tag=grad_cam/base/conv2"
    body, local = get_json(remote, route), get_json(client, route)
    assert [s["step"] for s in body["steps"]] == list(range(EPOCHS))
    assert [s["facts"]["class_index"] for s in body["steps"]] == [
        s["facts"]["class_index"] for s in local["steps"]
    ]
    png = remote.get(BASE + body["steps"][-1]["images"][1])
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    assert "notes" not in get_json(remote, "tags")["runs"][0]

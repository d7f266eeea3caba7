"""The dashboard in a real TensorBoard tab, driven through headless Chromium.

One module-wide set-up (CPU is scarce): a log directory written by real short ``fit`` runs
with ``CnnVisCallback``, one ``tensorboard`` subprocess over it, one browser, one TensorBoard
page on the cnnvis tab (``browser_util.SharedPage``). Each test opens the dashboard anew in
that page's plugin iframe (its saved state cleared) and works inside it the way a user would:
clicks, keys, the slider. Screenshots of every view go
to ``artifacts/screenshots/``.

Runs in the log directory:
    ``fit/cnnvis``: a tiny Sequential CNN (tests/models.py), steps 0..2, every view, with
        reference images (top examples at steps 0 and 2 only) and probe masks (pointing game).
    ``<img src=x onerror=alert(1)>/cnnvis``: a layer and class names made of HTML (written
        through ``tb_cnnvis.summary``: TensorFlow rejects such a layer name in a model).
    ``live/cnnvis``: feature maps only; a test trains more epochs while the page is open.
    ``synthetic/cnnvis``: ``tb_cnnvis.testing.write_synthetic_run`` (every kind it writes,
        through the real writers), for the contract test over every registered view.
    ``future/cnnvis``: a feature-map tag of the current stored format and one of version 2.
"""

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from browser_util import tensorboard_server, wait_for_runs

from tb_cnnvis import views
from tb_cnnvis.testing import write_synthetic_run

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MAIN = "fit/cnnvis"
HOSTILE_DIR = "<img src=x onerror=alert(1)>"
HOSTILE = f"{HOSTILE_DIR}/cnnvis"
HOSTILE_LAYER = "<img src=x onerror=alert(2)>"
HOSTILE_CLASSES = ["<script>alert(3)</script>", "<b>bold</b>", "plain"]
LIVE = "live/cnnvis"
SYNTHETIC = "synthetic/cnnvis"
FUTURE = "future/cnnvis"
EVERY_VIEW = (
    "feature_maps",
    "filter_patterns",
    "grad_cam",
    "gradcam_plus_plus",
    "score_cam",
    "deconvnet",
    "guided_backprop",
    "saliency",
    "top_examples",
)
SIZE = 24
TOP_K = 4


def _data(count=64, seed=1):
    """Discs, squares and diamonds of random colours on noise: images in [0, 1], labels and
    the shapes' masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    images = rng.uniform(0.0, 0.35, (count, SIZE, SIZE, 3)).astype("float32")
    labels = np.arange(count) % 3
    masks = np.zeros((count, SIZE, SIZE), bool)
    for image, label, shape in zip(images, labels, masks, strict=True):
        cy, cx = rng.uniform(SIZE * 0.35, SIZE * 0.65, 2)
        dy, dx, r = np.abs(yy - cy), np.abs(xx - cx), SIZE * 0.22
        mask = [dy**2 + dx**2 <= r**2, np.maximum(dy, dx) <= r * 0.85, dy + dx <= r * 1.2][label]
        image[mask] = rng.uniform(0.55, 1.0, 3)
        shape[mask] = True
    return images, labels, masks


def _callback(log_dir, images, labels, **options):
    from tb_cnnvis import CnnVisCallback

    return CnnVisCallback(
        log_dir,
        images[:4],
        labels[:4],
        filters_every_n_epochs=1,
        max_filters_per_layer=4,
        filter_steps=8,
        **options,
    )


def _write_future_run(run_dir, images):
    """A run with ``feature_maps/conv1`` as stored today and ``feature_maps/conv2`` of stored
    format version 4 (a future one), both through ``tb_cnnvis.summary`` and ``tf.summary.write``."""
    import tensorflow as tf

    from tb_cnnvis import summary, views

    common = {"input_shape": images.shape[1:], "probe_count": 2, "layer_class": "Conv2D"}
    shape = (SIZE, SIZE, 3)
    current = summary.content("feature_maps", "conv1", layer_index=0, output_shape=shape, **common)
    future = summary.content("feature_maps", "conv2", layer_index=1, output_shape=shape, **common)
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        views.feature_maps.write_feature_maps(current, images[:2], 0)
        views.feature_maps.write_feature_maps({**future, "version": 4}, images[:2], 0)
    writer.close()


def _write_hostile_run(run_dir, images, labels):
    """A run whose directory, layer and class names are HTML, through the real writers.

    Written with ``tb_cnnvis.summary`` directly: TensorFlow itself refuses such a layer name
    in a traced model (name scopes), but nothing stops another writer from storing one.
    """
    import tensorflow as tf

    from tb_cnnvis import summary, views

    common = {"input_shape": images.shape[1:], "probe_count": 4, "class_names": HOSTILE_CLASSES}
    layer = {"layer_index": 0, "layer_class": "Conv2D", "output_shape": (SIZE, SIZE, 2)}
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        summary.write_probes(summary.content("probes", **common), images[:4], 0, labels=labels[:4])
        for step in (0, 1):
            maps = images[:4, :, :, :2] * (1 + step)
            fm = summary.content("feature_maps", HOSTILE_LAYER, **layer, **common)
            views.feature_maps.write_feature_maps(fm, maps, step)
            cam = summary.content("grad_cam", HOSTILE_LAYER, **layer, **common)
            views.cams.write_cam(
                cam,
                images[:4].mean(axis=-1),
                step,
                class_index=[0, 1, 2, 0],
                predicted=[0, 1, 2, 0],
                probability=[0.9] * 4,
                target_probability=[0.9] * 4,
                cam_max=[1.0] * 4,
                labels=labels[:4],
            )
    writer.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """The log directory: two runs written by real ``fit`` calls with the callback, one hostile."""
    import keras
    import models

    root = tmp_path_factory.mktemp("browser_logs")
    images, labels, masks = _data()
    keras.utils.set_random_seed(0)
    names = ["circle", "square", "triangle"]

    model = models.sequential(size=SIZE)
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = _callback(
        root / "fit",
        images,
        labels,
        views=EVERY_VIEW,
        class_names=names,
        reference_images=images[:24],
        top_k=TOP_K,
        top_examples_every_n_epochs=2,  # steps 0 and 2: step 1 shows those of step 0
        probe_masks=masks[:4],
    )
    model.fit(images, labels, epochs=2, batch_size=16, callbacks=[callback], verbose=0)

    _write_hostile_run(root / HOSTILE, images, labels)
    write_synthetic_run(str(root / SYNTHETIC.split("/")[0]), epochs=2, layers=2, probes=2)
    _write_future_run(root / FUTURE, images)

    live = models.sequential(size=SIZE)
    live.compile("adam", "sparse_categorical_crossentropy")
    live_callback = _callback(root / "live", images, labels, views=("feature_maps",))
    live.fit(images, labels, epochs=1, batch_size=16, callbacks=[live_callback], verbose=0)
    trained = [1]

    def train_one_more_epoch():
        live.fit(
            images,
            labels,
            initial_epoch=trained[0],
            epochs=trained[0] + 1,
            batch_size=16,
            callbacks=[live_callback],
            verbose=0,
        )
        trained[0] += 1

    return SimpleNamespace(path=root, train_live=train_one_more_epoch)


@pytest.fixture(scope="module")
def server(logs):
    """One TensorBoard for the module, with every run loaded."""
    with tensorboard_server(logs.path) as url:
        wait_for_runs(url, [MAIN, HOSTILE, LIVE, SYNTHETIC, FUTURE])
        yield url


# ---------------------------------------------------------------------------- helpers


def api(url, route, **params):
    """GET a cnnvis route of the running TensorBoard as JSON."""
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}data/plugin/cnnvis/{route}?{query}", timeout=10) as r:
        return json.loads(r.read())


def paints(frame):
    return int(frame.evaluate("Number(document.body.dataset.paints || 0)"))


def act(frame, action):
    """Do something that repaints, and wait until the page has finished all its work."""
    before = paints(frame)
    action()
    frame.wait_for_function(f"Number(document.body.dataset.paints || 0) > {before}")
    frame.evaluate("window.cnnvis.settled()")


def open_tab(tab):
    """Open the dashboard and wait until its first view is fully drawn."""
    frame = tab.open()
    frame.evaluate("window.cnnvis.settled()")
    return frame


def choose_run(frame, run):
    select = frame.get_by_label("Run", exact=True)
    if select.input_value() != run:
        act(frame, lambda: select.select_option(run))


def open_view(frame, kind, layer=None):
    if layer is not None:
        button = frame.locator(f'.layer[data-layer="{layer}"]')
        if button.get_attribute("aria-current") != "true":
            act(frame, button.click)
    select_view(frame, kind)


def select_view(frame, kind):
    """Open view ``kind`` the way a user does: its family's tab, then (when the family has
    several views) its method."""
    tab = frame.locator(f'.tab[data-kinds~="{kind}"]')
    if tab.get_attribute("aria-selected") != "true":
        act(frame, tab.click)
    method = frame.locator(f'.method[data-kind="{kind}"]')
    if method.count() and method.get_attribute("aria-selected") != "true":
        act(frame, method.click)


def canvases(frame, selector=".card .frame canvas"):
    """Size, whether any pixel is drawn, and a checksum, for each canvas matched."""
    return frame.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let drawn = 0, sum = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i + 3] > 0) drawn++;
              sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
            }
            return {w: c.width, h: c.height, drawn, sum};
        })""",
        selector,
    )


def press(frame, key):
    """Press a key with the focus on the page itself (not in a select or a text field)."""
    frame.evaluate("document.activeElement && document.activeElement.blur(); window.focus()")
    frame.page.keyboard.press(key)


def epoch_shown(frame):
    return frame.locator(".epoch-value").inner_text()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def assert_clean(tab):
    assert tab.problems == []


# ------------------------------------------------------------------------------ tests


def test_frontend_helpers_compute_tiles_ranges_and_colours(tab):
    """The page's own modules, imported in the plugin's iframe, on hand-computed cases."""
    frame = open_tab(tab)
    result = frame.evaluate(
        """async () => {
          const m = await import('./model.js');
          const c = await import('./colormaps.js');
          const x = await import('./metrics.js');
          const F = await import('./families.js');
          const fm = await import('./family_feature_maps.js');
          const camFamily = await import('./family_cam.js');
          const panes = await import('./panes.js');
          const views = (await (await fetch('./tags')).json()).views;
          const failed = {deletion_auc: null, deletion_auc_random: null, pointing_hits: null,
                          drift: null, drift_from: null};
          const cam = [{step: 0, facts: failed}, {step: 1, facts: {deletion_auc: [0.2, 'NaN'],
            deletion_auc_random: [0.4, 0.6], pointing_hits: [true, false, null],
            drift: [0.5, 1.0], drift_from: 0}}];
          const text = (family, steps, i) => x.viewMetrics(F[family], steps, i).map((m) => m.text);
          const line = x.sparkline([{step: 0, value: 1, compare: null},
            {step: 1, value: 2, compare: null}, {step: 2, value: null, compare: null},
            {step: 3, value: 4, compare: null}], 1);
          const runs = m.organizeRuns({views, runs: [{run: 'r', tags: [
            {tag: 'grad_cam/b', kind: 'grad_cam', layer: 'b', layer_index: 3},
            {tag: 'feature_maps/b', kind: 'feature_maps', layer: 'b', layer_index: 3},
            {tag: 'feature_maps/a', kind: 'feature_maps', layer: 'a', layer_index: 1,
             output_shape: [8, 8, 4]},
            {tag: 'probes', kind: 'probes', layer: null, class_names: ['x'], probe_count: 2},
          ]}]}, F);
          const out = new ImageData(2, 1);
          c.overlay(new Uint8ClampedArray([100, 100, 100, 255, 100, 100, 100, 255]),
                    new Uint8ClampedArray([10, 255]), c.lookupTable('jet'), out,
                    {opacity: 0.5, threshold: 0.2});
          const cut = {step: 2, images: ['a', 'b'], facts: {budget: {probes: 2}}};
          return {
            empty: [panes.emptyMessage(cut, 3), panes.emptyMessage(cut, 1)],
            layers: runs[0].layers.map((l) => l.name),
            kinds: runs[0].kinds,
            probes: runs[0].probesTag,
            tile: m.tileRect({grid: [2, 3], tile: [5, 7]}, 4),
            gray: Array.from(m.tileGray(new Uint8ClampedArray([0, 1, 2, 3, 4, 5, 6, 7, 8]), 3,
                                        {x: 1, y: 1, w: 2, h: 2})),
            remap: fm.remapFor({min: [[0, 1]], max: [[2, 5]]}, 0, 0, 'layer'),
            same: fm.remapFor({min: [[0, 1]], max: [[2, 5]]}, 0, 0, 'channel'),
            nearest: m.nearestStepIndex([{step: 0}, {step: 3}, {step: 6}], 5),
            viridis: Array.from(c.lookupTable('viridis').slice(0, 3)),
            jetTop: Array.from(c.lookupTable('jet').slice(765, 768)),
            blended: Array.from(out.data),
            camFailed: text('cam', cam, 0),
            camLater: text('cam', cam, 1),
            olderLog: text('cam', [{step: 0, facts: {cam_max: [1]}}], 0),
            maps: text('feature_maps', [{step: 3, facts: {dead_filters: [1, 2], sparsity: 0.05,
                                                         images: [{count: 8}]}}], 0),
            rows: camFamily.metricRows(0, failed),
            lines: [...line.querySelectorAll('polyline')].map((l) => l.getAttribute('points')),
            dots: line.querySelectorAll('circle').length,
            lonePoint: x.sparkline([{step: 0, value: 1, compare: null}], 0),
          };
        }"""
    )
    assert result["layers"] == ["a", "b"]  # model order, not tag order
    # A probe the cost budget did not write at a step is said so, with the probes that are.
    assert result["empty"][0] == [
        "Probe 3 was not logged at epoch 2",
        "The cost budget kept the first 2 probes at this step: choose probes 0–1, or another "
        "epoch.",
    ]
    assert result["empty"][1][0] == "Nothing to draw at epoch 2"
    assert result["kinds"] == ["feature_maps", "grad_cam"]
    assert result["probes"] == "probes"
    assert result["tile"] == {"x": 7, "y": 5, "w": 7, "h": 5}  # tile 4: row 1, column 1
    assert result["gray"] == [4, 5, 7, 8]
    assert result["remap"] == {"scale": 0.4, "offset": 0}  # channel 0..2 inside layer 0..5
    assert result["same"] == {"scale": 1, "offset": 0}
    assert result["nearest"] == 1
    assert result["viridis"] == [68, 1, 84]
    assert result["jetTop"] == [128, 0, 0]
    # Below the threshold the probe stays; above it, half probe and half jet's dark red.
    assert result["blended"] == [100, 100, 100, 255, 114, 50, 50, 255]
    # Metrics: null (failed) and absent (older logs) read '—' or are left out; NaN is skipped.
    assert result["camFailed"] == ["—", "—", "—"]
    assert result["camLater"] == ["0.2 · random 0.5", "1/2 (50%)", "ρ 0.75 since epoch 0"]
    assert result["olderLog"] == []
    assert result["maps"] == ["2 / 8", "5%"]
    assert result["rows"] == [
        ["Deletion AUC", "—"],
        ["Random map’s AUC", "—"],
        ["Pointing game", "—"],
        ["Drift", "—"],
    ]
    assert len(result["lines"]) == 1 and len(result["lines"][0].split()) == 2  # gap at null
    assert result["dots"] == 1
    assert result["lonePoint"] is None
    assert_clean(tab)


def test_layers_are_listed_in_model_order_with_shapes(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    names = frame.locator(".layer .layer-name").all_inner_texts()
    metas = frame.locator(".layer .layer-meta").all_inner_texts()
    assert names == ["conv1", "conv2"]
    assert metas == [f"Conv2D · {SIZE}×{SIZE}×4", f"Conv2D · {SIZE // 2}×{SIZE // 2}×6"]
    assert_clean(tab)


@pytest.mark.parametrize("kind", EVERY_VIEW)
def test_each_view_draws_decoded_images(tab, kind):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    layer = "conv2" if kind in ("grad_cam", "gradcam_plus_plus", "score_cam") else "conv1"
    open_view(frame, kind, layer)
    runs = {r["run"]: r["tags"] for r in api(tab.url, "tags")["runs"]}
    tags = {t["tag"]: t for t in runs[MAIN]}
    assert f"{kind}/{layer}" in tags
    steps = api(tab.url, "steps", run=MAIN, tag=f"{kind}/{layer}")["steps"]
    facts = steps[-1]["facts"]
    expected = {
        "feature_maps": 4,  # channels of conv1
        "filter_patterns": len(facts.get("filters", [])),
        "top_examples": len(facts.get("filters", [])),
    }.get(kind, 4)  # one card per probe image
    drawn = canvases(frame)
    assert len(drawn) == expected
    for canvas in drawn:
        assert canvas["w"] > 1 and canvas["h"] > 1
        if kind == "top_examples":  # two mosaics side by side, with transparent gaps
            assert canvas["w"] > 2 * canvas["h"]
            assert canvas["drawn"] > 0.8 * canvas["w"] * canvas["h"]
        else:
            assert canvas["drawn"] == canvas["w"] * canvas["h"]
    if kind in ("grad_cam", "deconvnet", "feature_maps", "filter_patterns", "top_examples"):
        screenshot(tab.page, f"view_{kind}")
    assert_clean(tab)


def pixel_stats(frame, selector=".card .frame canvas"):
    """Per canvas matched: its size, how many pixels are drawn and how many distinct colours."""
    return frame.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((c) => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const colours = new Set();
            let drawn = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i + 3] === 0) continue;
              drawn++;
              if (colours.size < 64) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
            }
            return {w: c.width, h: c.height, drawn, colours: colours.size};
        })""",
        selector,
    )


@pytest.mark.parametrize("kind", views.kinds())
def test_every_registered_view_draws_decoded_pixels_of_the_synthetic_run(tab, kind):
    """The contract of a view: registered in Python, written by ``write_synthetic_run``, drawn
    by the dashboard's family module with no change elsewhere. A kind that the synthetic run
    lacks fails here: ``tb_cnnvis.testing`` must write every registered view."""
    family = views.get(kind).family.name
    tags = {
        t["tag"]: t
        for r in api(tab.url, "tags")["runs"]
        if r["run"] == SYNTHETIC
        for t in r["tags"]
    }
    logged = [t for t in tags.values() if t["kind"] == kind]
    assert logged, (
        f"tb_cnnvis.testing.write_synthetic_run wrote no {kind!r} tag (family {family!r}): it must "
        f"write every registered view; it wrote {sorted(tags)}"
    )
    frame = open_tab(tab)
    choose_run(frame, SYNTHETIC)
    assert frame.locator(f'.tab[data-kinds~="{kind}"]').count() == 1, (
        f"the dashboard shows no tab for {kind!r}: frontend/families.js has no family {family!r}"
    )
    open_view(frame, kind, logged[0]["layer"])
    assert frame.locator(".view-intro strong").inner_text() == views.get(kind).label
    blurb = views.get(kind).blurb
    assert blurb in frame.locator(".view-intro").inner_text()
    stats = pixel_stats(frame)
    assert len(stats) == frame.locator(".card").count() >= 1
    assert frame.locator(".card .frame.pending, .card .frame.failed").count() == 0
    for canvas in stats:
        assert canvas["w"] > 1 and canvas["h"] > 1 and canvas["drawn"] > 0, canvas
    assert max(canvas["colours"] for canvas in stats) > 1  # an image, not a flat fill
    assert any("/data/plugin/cnnvis/blob?" in url for url in tab.requests)
    assert_clean(tab)


def test_a_tag_of_another_stored_format_version_shows_why_and_is_not_fetched(tab):
    frame = open_tab(tab)
    choose_run(frame, FUTURE)
    open_view(frame, "feature_maps", "conv1")
    assert all(c["drawn"] == c["w"] * c["h"] > 1 for c in canvases(frame))
    tab.requests.clear()
    act(frame, frame.locator('.layer[data-layer="conv2"]').click)
    message = frame.locator(".pane .message.error")
    assert message.locator("h3").inner_text() == "Cannot show feature_maps/conv2"
    assert message.locator("p").inner_text() == (
        "Written by tb-cnnvis stored-format version 4; this plugin reads version 1, 2 or 3; "
        "upgrade tb-cnnvis."
    )
    assert frame.locator(".card").count() == 0
    assert [u for u in tab.requests if "/data/plugin/cnnvis/steps" in u or "blob?" in u] == []
    screenshot(tab.page, "unsupported_version")
    assert_clean(tab)


def family_typedef(name):
    """The members of a typedef of frontend/families.js: {member: 'function' | 'array' |
    'string' | 'boolean' | 'object'}, optional members (``[intro]``) left out."""
    text = (ROOT / "frontend" / "families.js").read_text()
    body = re.search(rf"@typedef \{{object\}} {name}\n(.*?)\*/", text, re.S).group(1)
    kinds = {"function": "function", "Array": "array", "string": "string", "boolean": "boolean"}
    members = {}
    for type_, member in re.findall(r"@property \{([^}]*)\}[\s*]*(\w+)", body):
        members[member] = next((v for k, v in kinds.items() if type_.startswith(k)), "object")
    return members


def test_every_family_module_has_every_member_of_the_family_interface(tab):
    frame = open_tab(tab)
    found = frame.evaluate(
        """async () => {
          const F = await import('./families.js');
          const kind = (v) => (Array.isArray(v) ? 'array' : typeof v);
          return Object.fromEntries(Object.entries(F).map(([key, family]) => [key, {
            name: family.name,
            members: Object.fromEntries(Object.entries(family).map(([k, v]) => [k, kind(v)])),
            layout: Object.fromEntries(Object.entries(family.layout).map(([k, v]) => [k, kind(v)])),
            metrics: family.metrics.map((m) => Object.keys(m).sort()),
          }]));
        }"""
    )
    registered = {view["family"] for view in views.catalog()}
    assert registered <= set(found)
    required, layout = family_typedef("Family"), family_typedef("Layout")
    for key, family in found.items():
        assert family["name"] == key
        assert {m: family["members"][m] for m in required} == required, key
        assert set(family["members"]) - set(required) <= {"intro"}, key
        assert family["layout"] == layout, key
        for metric in family["metrics"]:
            assert {"key", "label", "keys", "hint", "value", "text"} <= set(metric), key
    assert_clean(tab)


def test_a_view_registered_only_in_python_is_drawn_by_its_family_and_others_are_ignored(tab):
    """A new CAM method needs no frontend change: /tags names it and its family draws it."""
    made_up = [
        {"kind": "eigen_cam", "family": "cam", "label": "Eigen-CAM", "blurb": "made-up CAM."},
        {"kind": "deep_dream", "family": "no_such_family", "label": "Dream", "blurb": "no family."},
    ]

    def rewrite(route):
        response = route.fetch()
        body = response.json()
        body["views"] += made_up
        for run in body["runs"]:
            if run["run"] == MAIN:
                for tag in run["tags"]:
                    if tag["tag"] == "grad_cam/conv2":
                        tag["kind"] = "eigen_cam"  # the same series, seen as another view
                dream = {**run["tags"][-1], "tag": "deep_dream/conv2", "kind": "deep_dream"}
                run["tags"].append(dream)
        route.fulfill(response=response, json=body)

    tab.page.route("**/data/plugin/cnnvis/tags", rewrite)
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    assert frame.locator('.tab[data-kinds~="deep_dream"]').count() == 0
    open_view(frame, "eigen_cam", "conv2")
    kinds = frame.locator(".method").evaluate_all("(tabs) => tabs.map((t) => t.dataset.kind)")
    assert kinds.index("eigen_cam") == len(kinds) - 1  # after the registered views
    assert frame.locator(".tab[aria-selected='true']").inner_text() == "CAMs"
    assert frame.locator(".method[aria-selected='true']").inner_text() == "Eigen-CAM"
    assert "made-up CAM." in frame.locator(".view-intro").inner_text()
    drawn = canvases(frame)
    assert len(drawn) == 4 and all(c["drawn"] == c["w"] * c["h"] > 1 for c in drawn)
    assert frame.get_by_label("Opacity", exact=True).is_visible()  # the cam family's options
    assert_clean(tab)


def test_slider_and_arrow_keys_move_epochs_and_change_images(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "grad_cam", "conv2")
    act(frame, lambda: press(frame, "End"))
    assert epoch_shown(frame) == "2"
    latest = canvases(frame)
    slider = frame.get_by_label("Epoch", exact=True)
    slider.focus()
    act(frame, lambda: slider.press("ArrowLeft"))
    assert epoch_shown(frame) == "1"
    assert canvases(frame) != latest
    act(frame, lambda: press(frame, "Home"))
    assert epoch_shown(frame) == "0"
    assert frame.locator(".epoch-note").inner_text() == "untrained network"
    act(frame, lambda: press(frame, "ArrowRight"))
    assert epoch_shown(frame) == "1"
    act(frame, lambda: frame.get_by_label("Next epoch").click())
    assert epoch_shown(frame) == "2"
    assert canvases(frame) == latest  # back where it started: the same pixels
    assert_clean(tab)


def test_revisiting_an_epoch_downloads_nothing_and_a_view_costs_bounded_requests(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "feature_maps", "conv1")
    act(frame, lambda: press(frame, "End"))
    tab.requests.clear()
    act(frame, lambda: frame.locator('.tab[data-family="cam"]').click())  # opens Grad-CAM
    assert frame.locator(".view-intro strong").inner_text() == "Grad-CAM"
    frame.wait_for_timeout(300)  # let the idle prefetch of the next epoch happen, if any
    blobs = [u for u in tab.requests if "/data/plugin/cnnvis/blob" in u]
    # Grad-CAM at one epoch: 4 heat maps (+ 4 probes, already cached); no prefetch at the end.
    assert len(blobs) == 4
    assert sum("/data/plugin/cnnvis/steps" in u for u in tab.requests) == 1
    act(frame, lambda: press(frame, "ArrowLeft"))
    frame.wait_for_timeout(300)
    assert sum("/data/plugin/cnnvis/blob" in u for u in tab.requests) == 8  # epoch 1: 4 more
    tab.requests.clear()
    act(frame, lambda: press(frame, "ArrowRight"))
    act(frame, lambda: press(frame, "ArrowLeft"))
    frame.wait_for_timeout(300)
    assert [u for u in tab.requests if "/data/plugin/" in u] == []
    assert_clean(tab)


def test_play_animates_every_epoch_in_order(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "feature_maps", "conv1")
    act(frame, lambda: press(frame, "Home"))
    frame.get_by_label("Play the epochs").click()
    frame.wait_for_function(
        "document.body.dataset.painted === '2' && !document.querySelector('.playing')"
    )
    switches = frame.evaluate("window.cnnvis.timings.switches.map((s) => s.epoch)")
    assert switches[-2:] == [1, 2]
    assert frame.get_by_label("Play the epochs").is_visible()
    assert_clean(tab)


def test_detail_shows_facts_and_a_filmstrip_of_every_epoch(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "filter_patterns", "conv1")
    act(frame, lambda: press(frame, "End"))
    frame.locator(".card").nth(2).click()
    dialog = frame.locator("dialog.detail")
    dialog.wait_for()
    frame.wait_for_function("document.querySelectorAll('.filmstrip canvas').length > 0")
    steps = api(tab.url, "steps", run=MAIN, tag="filter_patterns/conv1")["steps"]
    frames = dialog.locator(".frame-button")
    assert frames.count() == len(steps) == 3
    assert (
        dialog.locator(".detail-title").inner_text() == f"Filter {steps[-1]['facts']['filters'][2]}"
    )
    facts = dict(
        zip(
            dialog.locator("dt").all_inner_texts(),
            dialog.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert facts["Filter index"] == str(steps[-1]["facts"]["filters"][2])
    reached = steps[-1]["facts"]["activations"][2]
    assert float(facts["Activation reached"]) == pytest.approx(reached, rel=1e-2, abs=1e-3)
    frame.wait_for_function(
        "[...document.querySelectorAll('.filmstrip canvas')].every((c) => c.width > 1)"
    )
    assert all(c["drawn"] > 0 for c in canvases(frame, ".filmstrip canvas"))
    assert canvases(frame, "canvas.big")[0]["w"] == steps[-1]["facts"]["images"][0]["tile"][1]
    screenshot(tab.page, "detail_filter")
    act(frame, lambda: frames.nth(0).click())
    assert dialog.locator(".detail-epoch").inner_text() == "Epoch 0"
    assert frames.nth(0).get_attribute("aria-current") == "true"
    tab.page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert epoch_shown(frame) == "0"
    assert_clean(tab)


def test_cam_detail_names_the_predicted_and_true_class(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "grad_cam", "conv2")
    act(frame, lambda: press(frame, "End"))
    frame.locator(".card").nth(1).click()
    dialog = frame.locator("dialog.detail")
    dialog.wait_for()
    facts = api(tab.url, "steps", run=MAIN, tag="grad_cam/conv2")["steps"][-1]["facts"]
    names = ["circle", "square", "triangle"]
    shown = dict(
        zip(
            dialog.locator("dt").all_inner_texts(),
            dialog.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert shown["Predicted class"] == names[facts["predicted"][1]]
    assert shown["True class"] == names[facts["labels"][1]]
    assert float(shown["CAM maximum"]) == pytest.approx(facts["cam_max"][1], rel=1e-2, abs=1e-3)
    assert float(shown["Deletion AUC"]) == three_digits(facts["deletion_auc"][1])
    assert float(shown["Random map’s AUC"]) == three_digits(facts["deletion_auc_random"][1])
    assert shown["Pointing game"][0] == ("✓" if facts["pointing_hits"][1] else "✗")
    assert shown["Drift since epoch 1"] == f"ρ {three_digits(facts['drift'][1]):g}"
    frame.wait_for_function("document.querySelector('canvas.big').width > 1")
    screenshot(tab.page, "detail_grad_cam")
    assert_clean(tab)


def three_digits(value):
    """A number as the page shows a metric: three significant digits."""
    return float(f"{value:.3g}")


def numbers(text):
    """The numbers in a text, in order."""
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def top_pairs(frame):
    """The detail's top examples: the epoch they are from, the note, and each pair's caption."""
    section = frame.locator(".top-section")
    return SimpleNamespace(
        epoch=section.get_attribute("data-epoch"),
        note=section.locator(".top-note").inner_text(),
        captions=section.locator(".top-pair figcaption").all_inner_texts(),
        patches=canvases(frame, ".top-pair canvas.patch"),
        projections=canvases(frame, ".top-pair canvas.projection"),
    )


def wait_top(frame, epoch):
    frame.wait_for_function(
        "(e) => { const s = document.querySelector('.top-section');"
        " return s && s.dataset.epoch === e && s.querySelector('.top-pair'); }",
        arg=str(epoch),
    )
    frame.evaluate("window.cnnvis.settled()")


def test_top_examples_show_each_filters_patches_beside_projections_epoch_by_epoch(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    steps = {
        s["step"]: s["facts"]
        for s in api(tab.url, "steps", run=MAIN, tag="top_examples/conv2")["steps"]
    }
    assert sorted(steps) == [0, 2]  # logged every 2 epochs
    # The view of its own: one card per filter; its detail shows k pairs.
    open_view(frame, "top_examples", "conv2")
    act(frame, lambda: press(frame, "End"))
    assert frame.get_by_label("Epoch", exact=True).get_attribute("max") == "1"  # steps 0, 2
    assert frame.locator(".card").count() == len(steps[2]["filters"])
    frame.locator(".card").nth(1).click()
    wait_top(frame, 2)
    shown = top_pairs(frame)
    facts, row = steps[2], 1
    tile = facts["images"][0]["tile"]
    assert len(shown.patches) == len(shown.projections) == TOP_K
    for canvas in shown.patches + shown.projections:  # decoded, every pixel drawn
        assert (canvas["h"], canvas["w"]) == tuple(tile)
        assert canvas["drawn"] == canvas["w"] * canvas["h"]
    for j, caption in enumerate(shown.captions):
        index, activation = numbers(caption)
        assert index == facts["indices"][row][j]
        assert activation == three_digits(facts["activations"][row][j])
    assert frame.locator(".detail-title").inner_text() == f"Filter {facts['filters'][row]}"
    screenshot(tab.page, "detail_top_examples")
    tab.page.keyboard.press("Escape")
    # From a filter pattern, at epoch 1: the newest top examples at or before it, from 0.
    open_view(frame, "filter_patterns", "conv2")
    act(frame, lambda: press(frame, "End"))
    frame.locator(".card").nth(2).click()
    wait_top(frame, 2)
    filter_index = steps[2]["filters"][2]
    at_two = top_pairs(frame)
    assert [numbers(c)[0] for c in at_two.captions] == steps[2]["indices"][2]
    assert at_two.note == ""
    act(frame, lambda: frame.locator(".frame-button").nth(1).click())  # epoch 1
    wait_top(frame, 0)
    at_one = top_pairs(frame)
    assert frame.locator(".detail-epoch").inner_text() == "Epoch 1"
    assert "at or before epoch 1" in at_one.note
    row = steps[0]["filters"].index(filter_index)
    assert [numbers(c)[0] for c in at_one.captions] == steps[0]["indices"][row]
    assert [numbers(c)[1] for c in at_one.captions] == [
        three_digits(a) for a in steps[0]["activations"][row]
    ]
    assert all(c["drawn"] == c["w"] * c["h"] for c in at_one.patches + at_one.projections)
    screenshot(tab.page, "detail_filter_top_examples")
    tab.page.keyboard.press("Escape")
    # From a feature-map channel: the same filter's top examples.
    open_view(frame, "feature_maps", "conv2")
    act(frame, lambda: press(frame, "End"))
    frame.locator(".card").nth(3).click()
    wait_top(frame, 2)
    row = steps[2]["filters"].index(3)
    assert [numbers(c)[0] for c in top_pairs(frame).captions] == steps[2]["indices"][row]
    assert_clean(tab)


def metric(frame, key):
    """The text a metric of the view's header shows."""
    return frame.locator(f'.metric[data-metric="{key}"] .metric-value').inner_text()


def test_metrics_shown_equal_the_logged_facts_with_a_sparkline_per_metric(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "grad_cam", "conv2")
    act(frame, lambda: press(frame, "End"))
    series = api(tab.url, "steps", run=MAIN, tag="grad_cam/conv2")["steps"]
    facts = series[-1]["facts"]
    auc, random_auc = numbers(metric(frame, "deletion_auc"))
    assert auc == three_digits(np.mean(facts["deletion_auc"]))
    assert random_auc == three_digits(np.mean(facts["deletion_auc_random"]))
    hits = facts["pointing_hits"]
    assert len(hits) == 4
    share = round(100 * sum(hits) / len(hits))
    assert metric(frame, "pointing_game") == f"{sum(hits)}/{len(hits)} ({share}%)"
    badges = frame.locator(".card .point-badge:visible")
    assert badges.count() == len(hits)  # one per probe card
    assert badges.all_inner_texts() == ["✓" if hit else "✗" for hit in hits]
    drift = metric(frame, "cam_drift")
    assert drift == f"ρ {numbers(drift)[0]:g} since epoch {facts['drift_from']}"
    assert numbers(drift)[0] == three_digits(np.mean(facts["drift"]))
    lines = frame.locator('.metric[data-metric="deletion_auc"] polyline')
    assert lines.count() == 2  # the map's AUC and the random map's, over every epoch
    assert len(lines.nth(1).get_attribute("points").split()) == len(series)
    screenshot(tab.page, "metrics_grad_cam")
    act(frame, lambda: press(frame, "Home"))  # epoch 0: no previous epoch to drift from
    assert metric(frame, "cam_drift") == "—"
    auc_0 = numbers(metric(frame, "deletion_auc"))[0]
    assert auc_0 == three_digits(np.mean(series[0]["facts"]["deletion_auc"]))
    open_view(frame, "feature_maps", "conv1")
    act(frame, lambda: press(frame, "End"))
    facts = api(tab.url, "steps", run=MAIN, tag="feature_maps/conv1")["steps"][-1]["facts"]
    assert metric(frame, "dead_filters") == f"{len(facts['dead_filters'])} / 4"
    assert metric(frame, "sparsity") == f"{round(100 * facts['sparsity'])}%"
    open_view(frame, "filter_patterns", "conv2")
    facts = api(tab.url, "steps", run=MAIN, tag="filter_patterns/conv2")["steps"][-1]["facts"]
    notes = frame.locator(".card .card-note").all_inner_texts()
    assert [numbers(note)[0] for note in notes] == [three_digits(d) for d in facts["drift"]]
    assert all(note.startswith("ρ ") for note in notes)
    assert numbers(metric(frame, "pattern_drift"))[0] == three_digits(np.mean(facts["drift"]))
    assert_clean(tab)


def test_cam_opacity_threshold_and_colormap_change_the_rendered_pixels(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "grad_cam", "conv2")
    before = canvases(frame)
    opacity = frame.get_by_label("Opacity", exact=True)
    act(frame, lambda: opacity.fill("1"))
    opaque = canvases(frame)
    assert [c["sum"] for c in opaque] != [c["sum"] for c in before]
    act(frame, lambda: opacity.fill("0"))
    probes = canvases(frame)  # opacity 0: the probe images themselves
    act(frame, lambda: opacity.fill("0.7"))
    act(frame, lambda: frame.get_by_label("Colormap", exact=True).select_option("viridis"))
    viridis = canvases(frame)
    assert [c["sum"] for c in viridis] != [c["sum"] for c in probes]
    act(frame, lambda: frame.get_by_label("Threshold", exact=True).fill("0.95"))
    assert [c["sum"] for c in canvases(frame)] != [c["sum"] for c in viridis]
    assert_clean(tab)


def test_feature_map_scaling_switches_between_channel_and_layer_ranges(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "feature_maps", "conv1")
    per_channel = canvases(frame)
    act(frame, lambda: frame.get_by_role("button", name="Per layer").click())
    per_layer = canvases(frame)
    facts = api(tab.url, "steps", run=MAIN, tag="feature_maps/conv1")["steps"][-1]["facts"]
    layer_max = max(facts["max"][0])
    for channel, (a, b) in enumerate(zip(per_channel, per_layer, strict=True)):
        same = facts["max"][0][channel] == layer_max and facts["min"][0][channel] == min(
            facts["min"][0]
        )
        assert (a["sum"] == b["sum"]) == same, channel
    act(frame, lambda: frame.get_by_role("button", name="Probe 1").click())
    assert canvases(frame) != per_layer
    assert_clean(tab)


def test_projection_gain_amplifies_the_difference_from_grey(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "guided_backprop", "conv2")
    plain = canvases(frame)
    act(frame, lambda: frame.get_by_label("Gain", exact=True).fill("4"))
    amplified = canvases(frame)
    assert all(a["sum"] != b["sum"] for a, b in zip(plain, amplified, strict=True))
    act(frame, lambda: frame.get_by_label("Gain", exact=True).fill("1"))
    assert canvases(frame) == plain
    assert_clean(tab)


def test_two_runs_side_by_side_at_the_same_layer_and_epoch(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "feature_maps", "conv1")
    act(frame, lambda: frame.get_by_label("Compare with").select_option(LIVE))
    act(frame, lambda: press(frame, "End"))  # epoch 2: the live run has only 0 and 1
    assert epoch_shown(frame) == "2"
    heads = frame.locator(".pane-head h2").all_inner_texts()
    assert heads == [MAIN, LIVE]
    assert frame.locator(".pane").nth(1).locator(".card").count() == 4
    assert frame.locator(".pane-note").nth(1).inner_text() == "showing epoch 1"
    assert all(c["drawn"] > 0 for c in canvases(frame))
    screenshot(tab.page, "compare_runs")
    assert_clean(tab)


def test_html_in_run_layer_and_class_names_is_shown_as_text(tab):
    frame = open_tab(tab)
    choose_run(frame, HOSTILE)
    assert HOSTILE in frame.locator("select option").all_inner_texts()
    assert frame.locator(".layer-name").all_inner_texts() == [HOSTILE_LAYER]
    open_view(frame, "grad_cam", HOSTILE_LAYER)
    captions = " ".join(frame.locator(".card-meta").all_inner_texts())
    assert any(name in captions for name in HOSTILE_CLASSES)
    frame.locator(".card").first.click()
    assert HOSTILE_LAYER in frame.locator(".detail-subtitle").inner_text()
    injected = frame.evaluate("document.querySelectorAll('img, script:not([type]), b, svg').length")
    assert injected == 0
    assert_clean(tab)  # no alert() dialog, no error


def test_dark_theme_follows_tensorboard(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    open_view(frame, "grad_cam", "conv2")
    assert frame.evaluate("document.documentElement.dataset.theme") == "light"
    light = frame.evaluate("getComputedStyle(document.body).backgroundColor")
    tab.page.evaluate("document.body.classList.add('dark-mode')")
    frame.wait_for_function("document.documentElement.dataset.theme === 'dark'")
    assert frame.evaluate("getComputedStyle(document.body).backgroundColor") != light
    screenshot(tab.page, "dark_grad_cam")
    assert_clean(tab)


def test_controls_have_labels(tab):
    frame = open_tab(tab)
    choose_run(frame, MAIN)
    for kind in ("feature_maps", "grad_cam"):
        open_view(frame, kind, "conv2" if kind == "grad_cam" else "conv1")
        unlabeled = frame.evaluate(
            """() => [...document.querySelectorAll('input, select, button')].filter((el) =>
                 !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                 && !el.textContent.trim()).map((el) => el.outerHTML.slice(0, 80))"""
        )
        assert unlabeled == []
    assert_clean(tab)


def test_empty_and_error_states_say_what_to_do(tab):
    tab.page.route("**/data/plugin/cnnvis/tags", lambda r: r.fulfill(json={"runs": []}))
    frame = tab.open()
    frame.wait_for_selector(".message.empty")
    assert "CnnVisCallback(" in frame.locator(".message.empty code").inner_text()
    assert len(frame.locator(".message.empty code").inner_text().splitlines()) == 3
    screenshot(tab.page, "empty_state")
    tab.page.unroute("**/data/plugin/cnnvis/tags")
    tab.page.route(
        "**/data/plugin/cnnvis/tags",
        lambda r: r.fulfill(status=500, json={"error": "the data provider failed"}),
    )
    frame = tab.open()
    frame.wait_for_selector(".message.error")
    assert "the data provider failed" in frame.locator(".message.error").inner_text()
    tab.page.unroute("**/data/plugin/cnnvis/tags")
    frame.get_by_role("button", name="Retry").click()
    frame.wait_for_selector(".card")
    assert all("500" in p for p in tab.problems)  # only the failed request itself


def reload_and_wait(tab, frame, condition, step):
    """Once TensorBoard has loaded ``step`` of the live run, press its own reload button; wait
    until the page shows ``condition``."""
    deadline = time.monotonic() + 30
    tag = "feature_maps/conv1"
    while step not in [s["step"] for s in api(tab.url, "steps", run=LIVE, tag=tag)["steps"]]:
        assert time.monotonic() < deadline, f"TensorBoard did not load step {step}"
        time.sleep(0.2)
    reloads = frame.evaluate("window.cnnvis.reloads")
    tab.page.locator("button.reload-button").click()
    frame.wait_for_function(f"window.cnnvis.reloads > {reloads}")
    frame.wait_for_function(condition, timeout=30_000)
    frame.evaluate("window.cnnvis.settled()")


def test_a_new_epoch_is_followed_from_the_newest_and_any_other_place_is_kept(tab, logs):
    frame = open_tab(tab)
    choose_run(frame, LIVE)
    open_view(frame, "feature_maps", "conv1")
    slider = frame.get_by_label("Epoch", exact=True)
    assert slider.get_attribute("max") == "1"
    assert epoch_shown(frame) == "1"  # the newest epoch
    frame.locator(".card").nth(3).click()
    frame.locator("dialog.detail").wait_for()
    assert frame.locator(".frame-button").count() == 2
    logs.train_live()  # epoch 2 arrives: the view moves to it, the detail stays open
    reload_and_wait(tab, frame, "document.querySelectorAll('.frame-button').length === 3", 2)
    assert slider.get_attribute("max") == "2"
    assert epoch_shown(frame) == "2"
    assert frame.locator(".detail-epoch").inner_text() == "Epoch 2"
    assert frame.locator(".frame-button").nth(2).get_attribute("aria-current") == "true"
    assert frame.locator("dialog.detail").is_visible()
    assert frame.locator(".detail-title").inner_text() == "Channel 3"
    assert frame.locator(".layer[aria-current='true'] .layer-name").inner_text() == "conv1"
    frame.get_by_role("button", name="Close").click()  # the focus is on TensorBoard's page
    act(frame, lambda: press(frame, "Home"))  # the user goes back: epoch 3 must not move it
    logs.train_live()
    reload_and_wait(
        tab, frame, "document.querySelector('input.epoch-slider').getAttribute('max') === '3'", 3
    )
    assert epoch_shown(frame) == "0"
    assert frame.locator(".epoch-range").inner_text() == "/ 3"
    assert frame.evaluate("document.body.dataset.painted") == "0"
    assert_clean(tab)

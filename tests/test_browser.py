"""The dashboard in a real TensorBoard tab, driven through headless Chromium.

One module-wide set-up (CPU is scarce): a log directory written by real short ``fit`` runs
with ``CnnVisCallback``, one ``tensorboard`` subprocess over it, one browser. Each test opens
TensorBoard's own page on the cnnvis tab (a fresh browser context) and works inside the
plugin's iframe the way a user would: clicks, keys, the slider. Screenshots of every view go
to ``artifacts/screenshots/``.

Runs in the log directory:
    ``fit/cnnvis``: a tiny Sequential CNN (tests/models.py), steps 0..2, every view.
    ``<img src=x onerror=alert(1)>/cnnvis``: a layer and class names made of HTML (written
        through ``tb_cnnvis.summary``: TensorFlow rejects such a layer name in a model).
    ``live/cnnvis``: feature maps only; a test trains one more epoch while the page is open.
"""

import json
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from browser_util import chromium, open_dashboard, tensorboard_server, wait_for_runs

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MAIN = "fit/cnnvis"
HOSTILE_DIR = "<img src=x onerror=alert(1)>"
HOSTILE = f"{HOSTILE_DIR}/cnnvis"
HOSTILE_LAYER = "<img src=x onerror=alert(2)>"
HOSTILE_CLASSES = ["<script>alert(3)</script>", "<b>bold</b>", "plain"]
LIVE = "live/cnnvis"
EVERY_VIEW = (
    "feature_maps",
    "filter_patterns",
    "grad_cam",
    "gradcam_plus_plus",
    "score_cam",
    "deconvnet",
    "guided_backprop",
    "saliency",
)
SIZE = 24


def _data(count=64, seed=1):
    """Discs, squares and diamonds of random colours on noise: (images in [0, 1], labels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    images = rng.uniform(0.0, 0.35, (count, SIZE, SIZE, 3)).astype("float32")
    labels = np.arange(count) % 3
    for image, label in zip(images, labels, strict=True):
        cy, cx = rng.uniform(SIZE * 0.35, SIZE * 0.65, 2)
        dy, dx, r = np.abs(yy - cy), np.abs(xx - cx), SIZE * 0.22
        mask = [dy**2 + dx**2 <= r**2, np.maximum(dy, dx) <= r * 0.85, dy + dx <= r * 1.2][label]
        image[mask] = rng.uniform(0.55, 1.0, 3)
    return images, labels


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


def _write_hostile_run(run_dir, images, labels):
    """A run whose directory, layer and class names are HTML, through the real writers.

    Written with ``tb_cnnvis.summary`` directly: TensorFlow itself refuses such a layer name
    in a traced model (name scopes), but nothing stops another writer from storing one.
    """
    import tensorflow as tf

    from tb_cnnvis import summary

    common = {"input_shape": images.shape[1:], "probe_count": 4, "class_names": HOSTILE_CLASSES}
    layer = {"layer_index": 0, "layer_class": "Conv2D", "output_shape": (SIZE, SIZE, 2)}
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        summary.write_probes(summary.content("probes", **common), images[:4], 0, labels=labels[:4])
        for step in (0, 1):
            maps = images[:4, :, :, :2] * (1 + step)
            fm = summary.content("feature_maps", HOSTILE_LAYER, **layer, **common)
            summary.write_feature_maps(fm, maps, step)
            cam = summary.content("grad_cam", HOSTILE_LAYER, **layer, **common)
            summary.write_cam(
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
    images, labels = _data()
    keras.utils.set_random_seed(0)
    names = ["circle", "square", "triangle"]

    model = models.sequential(size=SIZE)
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = _callback(root / "fit", images, labels, views=EVERY_VIEW, class_names=names)
    model.fit(images, labels, epochs=2, batch_size=16, callbacks=[callback], verbose=0)

    _write_hostile_run(root / HOSTILE, images, labels)

    live = models.sequential(size=SIZE)
    live.compile("adam", "sparse_categorical_crossentropy")
    live_callback = _callback(root / "live", images, labels, views=("feature_maps",))
    live.fit(images, labels, epochs=1, batch_size=16, callbacks=[live_callback], verbose=0)

    def train_one_more_epoch():
        live.fit(
            images,
            labels,
            initial_epoch=1,
            epochs=2,
            batch_size=16,
            callbacks=[live_callback],
            verbose=0,
        )

    return SimpleNamespace(path=root, train_live=train_one_more_epoch)


@pytest.fixture(scope="module")
def server(logs):
    """One TensorBoard for the module, with every run loaded."""
    with tensorboard_server(logs.path) as url:
        wait_for_runs(url, [MAIN, HOSTILE, LIVE])
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


@pytest.fixture
def tab(browser, server):
    """TensorBoard's page on the cnnvis tab: ``.page``, ``.frame`` and collected problems."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    requests = []
    page.on("request", lambda r: requests.append(r.url))

    def on_dialog(dialog):
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    state = SimpleNamespace(page=page, problems=problems, requests=requests, url=server)
    state.open = lambda: setattr(state, "frame", open_dashboard(page, server)) or state.frame
    yield state
    context.close()


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
    tab = frame.locator(f'.tab[data-kind="{kind}"]')
    if tab.get_attribute("aria-selected") != "true":
        act(frame, tab.click)


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
    }.get(kind, 4)  # one card per probe image
    drawn = canvases(frame)
    assert len(drawn) == expected
    for canvas in drawn:
        assert canvas["w"] > 1 and canvas["h"] > 1
        assert canvas["drawn"] == canvas["w"] * canvas["h"]
    if kind in ("grad_cam", "deconvnet", "feature_maps", "filter_patterns"):
        screenshot(tab.page, f"view_{kind}")
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
    act(frame, lambda: frame.locator('.tab[data-kind="grad_cam"]').click())
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
    frame.wait_for_function("document.querySelector('canvas.big').width > 1")
    screenshot(tab.page, "detail_grad_cam")
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


def test_new_epochs_appear_without_losing_the_place(tab, logs):
    frame = open_tab(tab)
    choose_run(frame, LIVE)
    open_view(frame, "feature_maps", "conv1")
    assert frame.get_by_label("Epoch", exact=True).get_attribute("max") == "1"
    frame.locator(".card").nth(3).click()
    frame.locator("dialog.detail").wait_for()
    assert frame.locator(".frame-button").count() == 2
    logs.train_live()
    reloads = frame.evaluate("window.cnnvis.reloads")
    tab.page.locator("button.reload-button").click()  # TensorBoard's own reload button
    frame.wait_for_function(f"window.cnnvis.reloads > {reloads}")
    frame.wait_for_function(
        "document.querySelectorAll('.frame-button').length === 3", timeout=30_000
    )
    assert frame.get_by_label("Epoch", exact=True).get_attribute("max") == "2"
    assert epoch_shown(frame) == "1"
    assert frame.locator("dialog.detail").is_visible()
    assert frame.locator(".detail-title").inner_text() == "Channel 3"
    assert frame.locator(".layer[aria-current='true'] .layer-name").inner_text() == "conv1"
    assert_clean(tab)

"""The dashboard's class-explaining views in a real TensorBoard tab, through headless Chromium:
class attributions drawn in a diverging colormap, the class chooser of steps with several
classes per probe, the probe filter, and the detail's exports (animated PNG, contact sheet).

One module-wide set-up of runs written through the real writers, without training:
    ``synthetic/cnnvis``: ``write_synthetic_run`` (one class per probe). At step 0 every
        probe is predicted class 0, so probes 1 and 2 (labels 1, 2) are misclassified; from
        step 1 on every prediction is right.
    ``classes/cnnvis``: the same with ``classes_per_probe=3`` (the 3 most probable classes).
    ``fixed/cnnvis``: Grad-CAM of a fixed list of classes ([2, 0], ``cam_classes=[2, 0]``)
        with a deletion AUC per map, and SmoothGrad maps with every metric, by hand.
    ``unlabelled/cnnvis``: probes and Grad-CAM without labels.
"""

import io
import urllib.request

import numpy as np
import pytest
from browser_util import module_page, tensorboard_server, wait_for_runs
from PIL import Image
from test_browser import (
    act,
    api,
    assert_clean,
    canvases,
    choose_run,
    open_tab,
    open_view,
    press,
    screenshot,
    select_view,
)

from tb_cnnvis import summary, views
from tb_cnnvis.testing import write_synthetic_run

pytestmark = pytest.mark.browser

SYNTHETIC, CLASSES, FIXED, UNLABELLED = (
    f"{name}/cnnvis" for name in ("synthetic", "classes", "fixed", "unlabelled")
)
NAMES = ["circle", "square", "triangle"]
SIZE = 16
ZERO = slice(6, 10)  # the columns where the hand-made SmoothGrad maps are zero
RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
        "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"]  # fmt: skip


def _write_handmade_runs(root):
    """``fixed/cnnvis`` and ``unlabelled/cnnvis`` (see the module docstring)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    images = rng.random((2, SIZE, SIZE, 3))
    labels = [0, 2]
    common = {"input_shape": (SIZE, SIZE, 3), "probe_count": 2, "class_names": NAMES}
    layer = {"layer_index": 0, "layer_class": "Conv2D", "output_shape": (SIZE, SIZE, 4)}
    at_input = {"layer_index": -1, "layer_class": "InputLayer", "output_shape": (SIZE, SIZE, 3)}
    for run, labelled in (("fixed", True), ("unlabelled", False)):
        writer = tf.summary.create_file_writer(str(root / run / "cnnvis"))
        with writer.as_default():
            probes = summary.content("probes", **common)
            summary.write_probes(probes, images, 0, labels=labels if labelled else None)
            for step in (0, 1):
                cam = summary.content("grad_cam", "conv1", **layer, **common)
                views.cams.write_cam(
                    cam,
                    rng.random((4, SIZE, SIZE)),
                    step,
                    class_index=[2, 0, 2, 0],
                    predicted=[0, 0, 2, 2],
                    probability=[0.6, 0.6, 0.7, 0.7],
                    target_probability=[0.1, 0.6, 0.7, 0.2],
                    cam_max=[1.0] * 4,
                    labels=labels if labelled else None,
                    probe=[0, 0, 1, 1],
                    # Per map (probe 0 triangle, probe 0 circle, probe 1 triangle, ...).
                    metrics={"deletion_auc": [0.1, 0.5, 0.3, 0.9 - step / 10]},
                )
                if not labelled:
                    continue
                smooth = summary.content("smoothgrad", "input", **at_input, **common)
                maps = rng.standard_normal((2, SIZE, SIZE))
                maps[:, :, ZERO] = 0.0
                views.attributions.write_attribution(
                    smooth,
                    maps,
                    step,
                    class_index=[0, 2],
                    predicted=[0, 2],
                    probability=[0.6, 0.7],
                    target_probability=[0.6, 0.7],
                    labels=labels,
                    settings={"samples": 25, "noise": 0.15, "seed": 0},
                    metrics={
                        "deletion_auc": [0.2, 0.3 + step / 10],
                        "deletion_auc_random": [0.5, 0.6],
                        "pointing_hits": [True, False],
                        "drift": [0.9, 0.7] if step else None,
                        "drift_from": 0 if step else None,
                    },
                )
        writer.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_logs")
    write_synthetic_run(str(root / "synthetic"), epochs=2, layers=2, probes=4, size=SIZE)
    write_synthetic_run(
        str(root / "classes"), epochs=2, layers=2, probes=4, size=SIZE, classes_per_probe=3
    )
    _write_handmade_runs(root)
    with tensorboard_server(root) as url:
        wait_for_runs(url, [SYNTHETIC, CLASSES, FIXED, UNLABELLED])
        yield url


@pytest.fixture(scope="module")
def shared(browser, server):
    """One TensorBoard page for the module's tests (``browser_util.SharedPage``)."""
    yield from module_page(browser, server, accept_downloads=True)


@pytest.fixture
def tab(shared):
    """TensorBoard's page on the cnnvis tab, its dashboard fresh for the test (``.page``,
    ``.frame``), collecting problems."""
    with shared.tab(dialogs=False) as state:
        yield state


# ---------------------------------------------------------------------------- helpers


def show(tab, run, kind, layer):
    """Open the dashboard on a run's view at a layer, at the newest epoch."""
    frame = open_tab(tab)
    choose_run(frame, run)
    open_view(frame, kind, layer)
    act(frame, lambda: press(frame, "End"))
    return frame


def png(tab, url):
    """The image at a URL relative to the plugin (as /steps gives it), decoded by Pillow."""
    with urllib.request.urlopen(f"{tab.url}data/plugin/cnnvis/{url}", timeout=10) as response:
        return Image.open(io.BytesIO(response.read()))


def card_pixels(frame, selector=".card:not([hidden]) .frame canvas"):
    """The RGB pixels of each canvas matched, as (h, w, 3) uint8 arrays."""
    raw = frame.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((c) => ({w: c.width,
             h: c.height, d: Array.from(c.getContext('2d').getImageData(0, 0, c.width,
             c.height).data)}))""",
        selector,
    )
    return [np.array(c["d"], np.uint8).reshape(c["h"], c["w"], 4)[..., :3] for c in raw]


def js_round(x):
    """JavaScript's Math.round: halves go up."""
    return np.floor(np.asarray(x) + 0.5).astype(int)


def rdbu(stored):
    """The diverging colour of a stored attribution pixel, computed here from RdBu's stops."""
    stops = np.array([[int(s[i : i + 2], 16) for i in (1, 3, 5)] for s in RDBU], float)
    pos = (1 + max(-1.0, (stored - 128) / 127)) * 5
    lo = min(int(pos), 9)
    return js_round(stops[lo] + (stops[lo + 1] - stops[lo]) * (pos - lo))


def jet(gray):
    """Jet's colour of an intensity 0..255 (colormaps.js)."""
    t = gray / 255
    return [int(js_round(255 * float(np.clip(1.5 - abs(4 * t - c), 0, 1)))) for c in (3, 2, 1)]


def options_labels(frame):
    return frame.locator(".options .field > label, .options .field-label").all_inner_texts()


def visible_cards(frame):
    return frame.locator(".card:not([hidden])").evaluate_all(
        "(cards) => cards.map((c) => c.getAttribute('aria-label'))"
    )


def facts_shown(frame):
    dialog = frame.locator("dialog.detail")
    return dict(
        zip(
            dialog.locator("dt").all_inner_texts(),
            dialog.locator("dd").all_inner_texts(),
            strict=True,
        )
    )


# ------------------------------------------------------------------------------ tests


def test_attributions_are_drawn_in_a_diverging_colormap_with_zero_at_its_middle(tab):
    frame = show(tab, SYNTHETIC, "integrated_gradients", "input")
    step = api(tab.url, "steps", run=SYNTHETIC, tag="integrated_gradients/input")["steps"][-1]
    facts = step["facts"]
    assert frame.locator(".card").count() == len(step["images"]) == 4
    stored = np.asarray(png(tab, step["images"][0]).convert("L"), int)
    drawn = card_pixels(frame)[0].astype(int)
    assert drawn.shape[:2] == stored.shape == (SIZE, SIZE)
    table = np.array([rdbu(v) for v in range(256)])
    assert (drawn == table[stored]).all()  # every pixel: RdBu at its stored value
    positive = np.unravel_index(np.argmax(stored), stored.shape)
    negative = np.unravel_index(np.argmin(stored), stored.shape)
    assert stored[positive] == 255 and stored[negative] < 100  # the map's largest |value| > 0
    red, green, blue = drawn[positive]
    assert red > 90 and red > 3 * blue and red > 3 * green  # +scale: RdBu's dark red
    red, green, blue = drawn[negative]
    assert blue > red + 60  # negative: blue
    meta = frame.locator(".card .card-meta").first.inner_text()  # 'true circle · ±0.55'
    assert meta.startswith(f"true {NAMES[facts['labels'][0]]} · ±")
    assert float(meta.split("±")[1]) == float(f"{facts['scale'][0]:.2g}")
    screenshot(tab.page, "view_integrated_gradients")

    # Over the probe: zero leaves the probe as it is; the colour weighs opacity * sqrt(|t|).
    act(frame, lambda: frame.get_by_role("button", name="Over the probe").click())
    probes = api(tab.url, "steps", run=SYNTHETIC, tag="probes")["steps"][0]
    probe = np.asarray(png(tab, probes["images"][0]).convert("RGB"), float)
    over = card_pixels(frame)[0].astype(float)
    alpha = 0.5 * np.sqrt(np.clip(np.abs(stored - 128) / 127, 0, 1))[..., None]
    assert np.abs(over - (probe * (1 - alpha) + table[stored] * alpha)).max() <= 1
    screenshot(tab.page, "view_integrated_gradients_over_probe")

    # The gain saturates the colours at scale / gain, and the card says so.
    act(frame, lambda: frame.get_by_role("button", name="Map alone").click())
    act(frame, lambda: frame.get_by_label("Gain", exact=True).fill("2"))
    doubled = np.round(128 + 127 * np.clip(2 * (stored - 128) / 127, -1, 1)).astype(int)
    assert (card_pixels(frame)[0] == table[doubled]).all()
    meta = frame.locator(".card .card-meta").first.inner_text()
    assert float(meta.split("±")[1]) == float(f"{facts['scale'][0] / 2:.2g}")

    frame.locator(".card").first.click()
    frame.locator("dialog.detail").wait_for()
    shown = facts_shown(frame)
    assert shown["Explained class"] == NAMES[facts["class_index"][0]]
    assert float(shown["Largest |value|"]) == pytest.approx(facts["scale"][0], rel=2e-3)
    assert shown["Colours"].startswith("blue −") and " · white 0 · red +" in shown["Colours"]
    assert shown["Setting: synthetic"] == "true"
    tab.page.keyboard.press("Escape")

    # Where a map is zero (a hand-made one, zero in its middle columns): neutral alone, and
    # the probe itself over the probe.
    frame = show(tab, FIXED, "smoothgrad", "input")
    step = api(tab.url, "steps", run=FIXED, tag="smoothgrad/input")["steps"][-1]
    stored = np.asarray(png(tab, step["images"][0]).convert("L"), int)
    assert (stored[:, ZERO] == 128).all()
    assert (card_pixels(frame)[0][:, ZERO] == (247, 247, 247)).all()
    act(frame, lambda: frame.get_by_role("button", name="Over the probe").click())
    probes = api(tab.url, "steps", run=FIXED, tag="probes")["steps"][0]
    probe = np.asarray(png(tab, probes["images"][0]).convert("RGB"))
    assert (card_pixels(frame)[0][:, ZERO] == probe[:, ZERO]).all()
    assert_clean(tab)


def metric(frame, key):
    return frame.locator(f'.metric[data-metric="{key}"] .metric-value').inner_text()


def test_attributions_show_the_method_settings_and_the_metrics_of_the_cams(tab):
    frame = show(tab, FIXED, "smoothgrad", "input")
    assert metric(frame, "deletion_auc") == "0.3 · random 0.55"
    assert metric(frame, "pointing_game") == "1/2 (50%)"
    assert metric(frame, "cam_drift") == "ρ 0.8 since epoch 0"
    badges = frame.locator(".card .point-badge:visible").all_inner_texts()
    assert badges == ["✓", "✗"]
    frame.locator(".card").nth(1).click()
    frame.locator("dialog.detail").wait_for()
    shown = facts_shown(frame)
    assert (shown["Setting: samples"], shown["Setting: noise"], shown["Setting: seed"]) == (
        "25",
        "0.15",
        "0",
    )
    assert (shown["Deletion AUC"], shown["Random map’s AUC"]) == ("0.4", "0.6")
    assert shown["Pointing game"] == "✗ off the object"
    assert shown["Drift since epoch 0"] == "ρ 0.7"
    assert_clean(tab)


def test_several_classes_per_probe_show_the_chosen_class_one_map_per_probe(tab):
    frame = show(tab, CLASSES, "grad_cam", "base/conv2")
    step = api(tab.url, "steps", run=CLASSES, tag="grad_cam/base/conv2")["steps"][-1]
    facts = step["facts"]
    assert len(step["images"]) == 12  # 4 probes x 3 classes
    chooser = frame.get_by_label("Explained class", exact=True)
    assert chooser.locator("option").all_inner_texts() == [
        "1st most probable",
        "2nd most probable",
        "3rd most probable",
    ]
    assert chooser.input_value() == "0"
    act(frame, lambda: frame.get_by_label("Opacity", exact=True).fill("1"))
    act(frame, lambda: frame.get_by_label("Threshold", exact=True).fill("0"))
    colours = np.array([jet(v) for v in range(256)])  # opacity 1, threshold 0: the map's colours
    for rank in (0, 1, 2):
        if rank:
            act(frame, lambda rank=rank: chooser.select_option(str(rank)))
        assert frame.locator(".card").count() == 4
        metas = frame.locator(".card .card-meta").all_inner_texts()
        titles = frame.locator(".card .card-title").all_inner_texts()
        for probe, (pixels, meta, title) in enumerate(
            zip(card_pixels(frame), metas, titles, strict=True)
        ):
            i = 3 * probe + rank
            assert facts["images"][i]["probe"] == probe
            assert facts["images"][i]["class_index"] == facts["class_index"][i]
            stored = np.asarray(png(tab, step["images"][i]).convert("L"))
            assert (pixels == colours[stored]).all(), (rank, probe)
            assert meta.startswith(f"for {NAMES[facts['class_index'][i]]} ")
            assert title.startswith(f"{NAMES[facts['predicted'][i]]} ")  # the prediction, as always
    screenshot(tab.page, "classes_grad_cam_3rd")
    frame.locator(".card").nth(1).click()
    frame.locator("dialog.detail").wait_for()
    assert (
        frame.locator(".detail-title").inner_text() == f"Probe 1 · {NAMES[facts['class_index'][5]]}"
    )
    assert facts_shown(frame)["Explained class"] == NAMES[facts["class_index"][5]]
    frame.get_by_role("button", name="Next item").click()
    title = f"Probe 2 · {NAMES[facts['class_index'][8]]}"
    frame.locator(".detail-title", has_text=title).wait_for()
    tab.page.keyboard.press("Escape")
    # Eigen-CAM is class-agnostic: one map per probe, no chooser; attributions have one.
    select_view(frame, "eigencam")
    assert frame.get_by_label("Explained class", exact=True).count() == 0
    assert frame.locator(".card").count() == 4
    select_view(frame, "occlusion")
    assert frame.get_by_label("Explained class", exact=True).input_value() == "2"
    assert frame.locator(".card").count() == 4
    assert_clean(tab)


def test_one_class_per_probe_has_no_class_chooser_and_a_logged_list_names_its_classes(tab):
    frame = show(tab, SYNTHETIC, "grad_cam", "base/conv2")
    assert options_labels(frame) == ["Probes", "Colormap", "Opacity", "Threshold", "Size"]
    assert frame.locator(".card .card-meta").first.inner_text().startswith("true ")
    frame = show(tab, FIXED, "grad_cam", "conv1")
    chooser = frame.get_by_label("Explained class", exact=True)
    assert chooser.locator("option").all_inner_texts() == ["triangle", "circle"]
    metas = frame.locator(".card .card-meta").all_inner_texts()
    assert [meta.split()[:2] for meta in metas] == [["for", "triangle"]] * 2
    # The metrics bar reads the maps of the class shown: mean of probe 0's and probe 1's.
    assert metric(frame, "deletion_auc").startswith("0.2")  # triangle: 0.1, 0.3
    act(frame, lambda: chooser.select_option("1"))
    metas = frame.locator(".card .card-meta").all_inner_texts()
    assert [meta.split()[:2] for meta in metas] == [["for", "circle"]] * 2
    assert metric(frame, "deletion_auc").startswith("0.65")  # circle: 0.5, 0.8 at epoch 1
    spark = frame.locator('.metric[data-metric="deletion_auc"] polyline').first
    assert spark.get_attribute("points").count(",") == 2  # epochs 0 and 1 (0.7, then 0.65)
    assert_clean(tab)


def test_the_probe_filter_keeps_misclassified_or_correct_probes_at_the_epoch_shown(tab):
    frame = show(tab, SYNTHETIC, "grad_cam", "base/conv2")
    act(frame, lambda: press(frame, "Home"))  # epoch 0: every probe is predicted class 0
    facts = api(tab.url, "steps", run=SYNTHETIC, tag="grad_cam/base/conv2")["steps"][0]["facts"]
    assert [p for p in range(4) if facts["predicted"][p] != facts["labels"][p]] == [1, 2]
    note = frame.locator(".pane-filter")
    assert note.is_hidden() and len(visible_cards(frame)) == 4
    act(frame, lambda: frame.get_by_role("button", name="Misclassified").click())
    assert note.inner_text() == "2 of 4 probes misclassified at epoch 0"
    assert visible_cards(frame) == ["Open probe 1", "Open probe 2"]
    tones = frame.locator(".card:not([hidden])").evaluate_all("(c) => c.map((x) => x.dataset.tone)")
    assert tones == ["bad", "bad"]
    assert all(
        c["drawn"] == c["w"] * c["h"] > 1 for c in canvases(frame, ".card:not([hidden]) canvas")
    )
    screenshot(tab.page, "probe_filter_misclassified")
    act(frame, lambda: press(frame, "End"))
    assert note.inner_text() == "0 of 4 probes misclassified at epoch 2"
    assert visible_cards(frame) == []
    act(frame, lambda: frame.get_by_role("button", name="Correct").click())
    assert note.inner_text() == "4 of 4 probes correctly classified at epoch 2"
    act(frame, lambda: press(frame, "Home"))
    assert note.inner_text() == "2 of 4 probes correctly classified at epoch 0"
    assert visible_cards(frame) == ["Open probe 0", "Open probe 3"]
    # The detail steps through the probes kept.
    frame.locator(".card:not([hidden])").nth(1).click()
    frame.locator("dialog.detail").wait_for()
    assert frame.locator(".detail-title").inner_text() == "Probe 3"
    frame.get_by_role("button", name="Next item").click()
    frame.locator(".detail-title", has_text="Probe 0").wait_for()
    tab.page.keyboard.press("Escape")
    # Projections store no predictions: they borrow a CAM's of the same run and epoch.
    for kind, layer in (("deconvnet", "conv1"), ("smoothgrad", "input")):
        act(frame, frame.locator(f'.layer[data-layer="{layer}"]').click)
        select_view(frame, kind)
        assert note.inner_text() == "2 of 4 probes correctly classified at epoch 0", kind
        assert visible_cards(frame) == ["Open probe 0", "Open probe 3"], kind
    act(frame, lambda: frame.get_by_role("button", name="All").click())
    assert note.is_hidden() and len(visible_cards(frame)) == 4
    assert_clean(tab)


def test_the_metrics_bar_speaks_of_the_probes_the_filter_keeps(tab):
    frame = show(tab, SYNTHETIC, "deepdream", "conv1")
    act(frame, lambda: press(frame, "Home"))  # epoch 0: probes 1 and 2 are misclassified
    facts = api(tab.url, "steps", run=SYNTHETIC, tag="deepdream/conv1")["steps"][0]["facts"]
    gains = np.asarray(facts["objective"]) / np.asarray(facts["start_objective"])
    assert gains.tolist() == [1.0, 1.5, 3.0, 5.5]
    assert metric(frame, "dream_gain") == "2.75×"  # all four
    act(frame, lambda: frame.get_by_role("button", name="Misclassified").click())
    assert metric(frame, "dream_gain") == "2.25×"  # probes 1 and 2
    act(frame, lambda: frame.get_by_role("button", name="Correct").click())
    assert metric(frame, "dream_gain") == "3.25×"  # probes 0 and 3
    act(frame, lambda: press(frame, "End"))  # every probe right: none misclassified
    act(frame, lambda: frame.get_by_role("button", name="Misclassified").click())
    assert visible_cards(frame) == [] and metric(frame, "dream_gain") == "—"
    assert_clean(tab)


def test_without_labels_the_probe_filter_is_disabled_and_says_why(tab):
    frame = show(tab, UNLABELLED, "grad_cam", "conv1")
    for name in ("All", "Misclassified", "Correct"):
        button = frame.get_by_role("button", name=name, exact=True)
        assert button.is_disabled()
        assert "no true labels" in button.get_attribute("title")
    assert "probe_labels" in frame.locator(".probe-filter").get_attribute("title")
    assert len(visible_cards(frame)) == 2
    assert_clean(tab)


def test_the_detail_saves_an_items_epochs_as_an_animated_png_and_a_contact_sheet(tab):
    frame = show(tab, SYNTHETIC, "grad_cam", "base/conv2")
    frame.locator(".card").nth(1).click()
    frame.locator("dialog.detail").wait_for()
    frame.wait_for_function(
        "[...document.querySelectorAll('.filmstrip canvas')].every((c) => c.width > 1)"
    )
    frame.evaluate("window.cnnvis.settled()")
    strip = card_pixels(frame, ".filmstrip canvas")  # the item at each epoch, natural size
    assert len(strip) == 3 and all(s.shape == (SIZE, SIZE, 3) for s in strip)
    assert (strip[0] != strip[2]).any()
    name = "cnnvis_synthetic_cnnvis_base_conv2_grad_cam_probe_1"

    with tab.page.expect_download() as saved:
        frame.get_by_role("button", name="Save animation").click()
    assert saved.value.suggested_filename == f"{name}.png"
    animation = Image.open(saved.value.path())
    layout = frame.evaluate(
        f"import('./item_export.js').then((m) => m.animationLayout({SIZE}, {SIZE}))"
    )
    scale, side = layout["scale"], SIZE * layout["scale"]
    assert scale == 16 and animation.format == "PNG" and animation.is_animated
    assert animation.n_frames == 3 and animation.size == (layout["width"], layout["height"])
    for i, pixels in enumerate(strip):
        animation.seek(i)
        rgb = np.asarray(animation.convert("RGB"))
        assert (rgb[:side:scale, :side:scale] == pixels).all(), i  # the frame, scaled up
        assert (rgb[:side, :side] == np.repeat(np.repeat(pixels, scale, 0), scale, 1)).all()
        assert (rgb[side:] < 100).any()  # the epoch, written below
        assert animation.info["duration"] == (1800 if i == 2 else 600)
    assert frame.locator(".export-status").inner_text() == f"Saved {name}.png"

    with tab.page.expect_download() as saved:
        frame.get_by_role("button", name="Save contact sheet").click()
    assert saved.value.suggested_filename == f"{name}_sheet.png"
    sheet = np.asarray(Image.open(saved.value.path()).convert("RGB"))
    layout = frame.evaluate(
        f"import('./item_export.js').then((m) => m.sheetLayout(3, {SIZE}, {SIZE}))"
    )
    assert sheet.shape == (layout["height"], layout["width"], 3) and layout["columns"] == 3
    scale = layout["scale"]
    for cell, pixels in zip(layout["cells"], strip, strict=True):
        x, y, w, h = cell["x"], cell["y"], cell["w"], cell["h"]
        assert (sheet[y : y + h : scale, x : x + w : scale] == pixels).all()
        assert (sheet[y + h : y + h + 20, x : x + w] < 100).any()  # 'epoch N' under it
    assert (sheet[: layout["cells"][0]["y"]] < 100).any()  # the title line
    screenshot(tab.page, "detail_export")

    # Any family's item: a feature-map channel of the probe chosen.
    tab.page.keyboard.press("Escape")
    act(frame, frame.locator('.layer[data-layer="conv1"]').click)
    select_view(frame, "feature_maps")
    frame.locator(".card").nth(2).click()
    with tab.page.expect_download() as saved:
        frame.get_by_role("button", name="Save animation").click()
    assert (
        saved.value.suggested_filename == "cnnvis_synthetic_cnnvis_conv1_feature_maps_channel_2.png"
    )
    assert Image.open(saved.value.path()).n_frames == 3
    assert_clean(tab)

"""The dashboard on the shared contracts, in a real TensorBoard tab through headless Chromium.

What the page must do whatever the backend writes: the view tabs grouped by family, with
every view one or two clicks away at 1280 px; labels never cut off; the step facts'
``notes``, the run's ``/tags`` ``notes`` and a sentence wherever a pane is empty; a zero CAM
said on its card; the image cache's byte bound; long and odd layer names; the targets and
heads of class-explaining views (binary, regression, segmentation with its masks).

One TensorBoard over synthetic runs (``tb_cnnvis.testing``, no training):
    ``every/cnnvis``: every registered kind, a nested model with a long name.
    ``heads_<head>/cnnvis``: ``write_head_run`` for the binary, regression and
        segmentation heads (targets, values, masks, a zero CAM, step notes).
    ``wide/cnnvis``: feature maps of a wide layer over many epochs (the cache bound).
    ``names/cnnvis``: layers named with quotes, backslashes and 10,000 characters.
"""

import io
import json
import urllib.request
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from browser_util import tensorboard_server, wait_for_runs
from PIL import Image
from test_browser import (
    act,
    api,
    canvases,
    choose_run,
    open_tab,
    open_view,
    press,
    screenshot,
    select_view,
)

from tb_cnnvis import metadata, views
from tb_cnnvis.testing import write_head_run, write_synthetic_run
from tb_cnnvis.testing.heads import HEADS

pytestmark = pytest.mark.browser

EVERY = "every/cnnvis"
NESTED = "feature_extractor_with_a_rather_long_nested_model_name_v2"
EVERY_LAYERS = ("conv1", f"{NESTED}/block1_conv", f"{NESTED}/block2_conv")
FEATURE_MAPS = ("probes", "feature_maps")
ATLASES = "wide/cnnvis"  # last in the run list: the page opens on "every", small
NAMES = "names/cnnvis"
QUOTED = 'say "hi" \\ back\\slash'
LONG = "x" * 10_000
ODD_NAMES = (QUOTED, LONG)
BINARY, REGRESSION, SEGMENTATION = (f"heads_{head}/cnnvis" for head in HEADS)
NO_EVIDENCE = "No positive evidence for this class at this layer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One TensorBoard over the synthetic runs of this module."""
    root = tmp_path_factory.mktemp("contract_logs")
    write_synthetic_run(str(root / "every"), epochs=1, layers=3, probes=4, layer_names=EVERY_LAYERS)
    for head in HEADS:
        write_head_run(str(root / f"heads_{head}"), head)
    atlases = {"layers": 1, "probes": 2, "size": 256, "nested": False}
    write_synthetic_run(str(root / "wide"), epochs=12, kinds=FEATURE_MAPS, **atlases)
    write_synthetic_run(str(root / "names"), epochs=0, layers=2, probes=2, size=16,
                        kinds=FEATURE_MAPS, layer_names=ODD_NAMES)  # fmt: skip
    with tensorboard_server(root) as url:
        wait_for_runs(url, [EVERY, ATLASES, NAMES, *(f"heads_{head}/cnnvis" for head in HEADS)])
        yield url


def boxes(frame, selector):
    """Each element's text, box and whether its content overflows it (cut off)."""
    return frame.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((e) => {
            const r = e.getBoundingClientRect();
            return {text: e.textContent, title: e.title || e.closest('[title]')?.title || '',
                    left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                    cut: e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1};
        })""",
        selector,
    )


def test_every_view_is_one_or_two_clicks_away_in_family_tabs_at_1280_px(tab):
    frame = open_tab(tab)
    choose_run(frame, EVERY)
    catalog = views.catalog()
    families = list(dict.fromkeys(view["family"] for view in catalog))
    tabs = boxes(frame, ".tab")
    labels = {
        "feature_maps": "Feature maps", "filter_patterns": "Filter patterns",
        "deepdream": "DeepDream", "cam": "CAMs", "attribution": "Attributions",
        "projection": "Projections", "top_examples": "Top examples",
    }  # fmt: skip
    assert [t["text"] for t in tabs] == [labels[f] for f in families]
    row = boxes(frame, ".tabs")[0]
    assert not row["cut"] and all(
        row["left"] <= t["left"] and t["right"] <= row["right"] for t in tabs
    )
    # From a layer without attributions, one click on the family's tab goes to the input.
    open_view(frame, "feature_maps", "conv1")
    attributions = frame.locator('.tab[data-family="attribution"]')
    assert "missing" not in attributions.get_attribute("class")
    assert attributions.get_attribute("title").endswith("(at input)")
    for view in catalog:
        kind, family = view["kind"], view["family"]
        members = [v for v in catalog if v["family"] == family]
        open_view(frame, "feature_maps", "conv1")
        act(frame, frame.locator(f'.tab[data-family="{family}"]').click)
        clicks = 1
        if frame.locator(".view-intro strong").inner_text() != view["label"]:
            act(frame, frame.locator(f'.method[data-kind="{kind}"]').click)
            clicks = 2
        assert frame.locator(".view-intro strong").inner_text() == view["label"], kind
        assert frame.locator(".card").count() >= 1, kind
        methods = boxes(frame, ".method")
        assert [m["text"] for m in methods] == (
            [v["label"] for v in members] if len(members) > 1 else []
        ), kind
        assert all(not m["cut"] and m["right"] <= row["right"] for m in methods), kind
        assert clicks == 1 or len(members) > 1
        if kind == "integrated_gradients":
            assert (
                frame.locator(".layer[aria-current='true']").get_attribute("data-layer") == "input"
            )
        if kind == "layercam":
            screenshot(tab.page, "family_tabs_cam_methods")
    # A family's tab comes back to the method last chosen in it.
    select_view(frame, "score_cam")
    open_view(frame, "feature_maps", "conv1")
    act(frame, frame.locator('.tab[data-family="cam"]').click)
    assert frame.locator(".view-intro strong").inner_text() == "Score-CAM"
    assert tab.problems == []


def test_group_headings_and_card_labels_are_never_cut_off(tab):
    frame = open_tab(tab)
    choose_run(frame, EVERY)
    open_view(frame, "grad_cam", EVERY_LAYERS[-1])
    head = f'.layer-group.model[data-group="{NESTED}"] > details > .group-head'
    assert frame.locator(f"{head} .group-name").inner_text() == NESTED
    box = boxes(frame, head)[0]
    sidebar = boxes(frame, ".sidebar")[0]
    assert box["right"] <= sidebar["right"]
    assert frame.locator(head).get_attribute("title") == f"{NESTED}: 2 layers"
    assert (
        frame.evaluate(
            f"getComputedStyle(document.querySelector('{head} .group-name')).textOverflow"
        )
        == "ellipsis"
    )
    # The smallest cards: every caption whole, wrapped inside its card.
    act(frame, lambda: frame.get_by_label("Size", exact=True).fill("64"))
    steps = api(tab.url, "steps", run=EVERY, tag=f"grad_cam/{EVERY_LAYERS[-1]}")["steps"]
    names = ("circle", "square", "triangle")
    facts = steps[-1]["facts"]
    titles = [
        f"{names[p]} {round(100 * q)}%" for p, q in zip(facts["predicted"], facts["probability"])
    ]
    assert [t["text"] for t in boxes(frame, ".card-title")] == titles
    cards = boxes(frame, ".card")
    for caption in boxes(frame, ".card-title, .card-meta"):
        assert not caption["cut"], caption
        assert any(c["left"] <= caption["left"] and caption["right"] <= c["right"] for c in cards)
    screenshot(tab.page, "captions_64px")
    assert tab.problems == []


def png(tab, url):
    """A blob of the running TensorBoard as a PIL image."""
    with urllib.request.urlopen(f"{tab.url}data/plugin/cnnvis/{url}", timeout=10) as response:
        return Image.open(io.BytesIO(response.read()))


def pixels(frame, selector):
    """The RGBA pixels of each canvas matched, as (h, w, 4) uint8 arrays."""
    found = frame.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((c) => ({w: c.width,
            h: c.height, d: Array.from(c.getContext('2d').getImageData(0, 0, c.width,
            c.height).data)}))""",
        selector,
    )
    return [np.array(c["d"], np.uint8).reshape(c["h"], c["w"], 4) for c in found]


def three(value):
    """A number as the page writes it (format.js fmt: three significant digits)."""
    return f"{value:.3g}"


def test_a_zero_cam_says_so_on_its_card_and_step_notes_are_shown_above_the_cards(tab):
    frame = open_tab(tab)
    choose_run(frame, BINARY)
    open_view(frame, "grad_cam", "conv2")
    steps = api(tab.url, "steps", run=BINARY, tag="grad_cam/conv2")["steps"]
    assert steps[-1]["facts"]["cam_max"][0] == 0.0  # probe 0's map of class 0 (cat)
    # From the newest epoch (1) of the first run to the newest (2) of this one.
    assert frame.locator(".epoch-value").inner_text() == "2"
    assert frame.locator(".epoch-note").inner_text().startswith("logged ")
    notes = frame.locator(".pane .step-notes li")
    assert (
        notes.all_inner_texts()
        == steps[-1]["facts"]["notes"]
        == ["Synthetic step 2: 4 probes, 8 maps."]
    )
    empty = frame.locator(".card .card-empty")
    assert [e.is_visible() for e in empty.all()] == [True, False, False, False]
    assert empty.first.inner_text() == NO_EVIDENCE
    # No overlay: the card shows the probe image alone, under the sentence.
    probe = api(tab.url, "steps", run=BINARY, tag="probes")["steps"][0]["images"][0]
    drawn = pixels(frame, ".card .frame canvas")[0]
    assert np.array_equal(drawn[..., :3], np.asarray(png(tab, probe).convert("RGB")))
    box = frame.locator(".card").first.bounding_box()
    sentence = empty.first.bounding_box()
    assert (
        box["x"] <= sentence["x"] and sentence["x"] + sentence["width"] <= box["x"] + box["width"]
    )
    screenshot(tab.page, "zero_cam")
    frame.locator(".card").first.click()
    frame.locator(".detail .detail-note", has_text=NO_EVIDENCE).wait_for()
    tab.page.keyboard.press("Escape")
    press(frame, "ArrowLeft")
    frame.wait_for_function("document.body.dataset.painted === '1'")
    frame.evaluate("window.cnnvis.settled()")
    assert notes.all_inner_texts() == ["Synthetic step 1: 4 probes, 8 maps."]
    assert not any(e.is_visible() for e in empty.all())
    assert tab.problems == []


def test_the_image_cache_holds_decoded_bytes_under_its_bound_through_many_epochs(tab):
    frame = open_tab(tab)
    choose_run(frame, ATLASES)
    open_view(frame, "feature_maps", "conv1")
    budget = 6 << 20  # a 512x512 atlas decodes to 1 MiB RGBA (2.25 MiB with its copies)
    frame.evaluate(f"window.cnnvis.store.images.budget = {budget}")
    held = """() => {
        const cache = window.cnnvis.store.images;
        let real = 0;
        for (const e of cache.map.values()) {
          if (e.bitmap) real += e.bitmap.width * e.bitmap.height * 4;
          if (e.rgba) real += e.rgba.data.length;
          if (e.gray) real += e.gray.gray.length;
        }
        return {used: cache.used, real, count: cache.map.size};
    }"""
    press(frame, "Home")
    frame.wait_for_function("document.body.dataset.painted === '0'")
    seen = []
    for epoch in range(1, 13):
        press(frame, "ArrowRight")
        frame.wait_for_function(f"document.body.dataset.painted === '{epoch}'")
        frame.evaluate("window.cnnvis.settled()")
        frame.wait_for_timeout(50)  # the prefetch of the next epoch
        seen.append(frame.evaluate(held))
    real = [s["real"] for s in seen]
    assert max(real) > 2 << 20  # large images were held ...
    assert all(s["real"] <= s["used"] <= budget for s in seen), seen  # ... and counted
    assert frame.locator(".card .frame.failed, .card .frame.pending").count() == 0
    drawn = canvases(frame)
    assert len(drawn) == 4 and all(c["w"] == c["h"] == 256 and c["drawn"] > 0 for c in drawn)
    assert tab.problems == []


def test_run_notes_are_shown_and_a_pane_is_never_empty_without_a_sentence(tab):
    note = "step 7 of grad_cam/conv4: damaged file events.out.tfevents.1 (bad checksum)"

    def tags(route):
        response = route.fetch()
        body = response.json()
        for run in body["runs"]:
            if run["run"] == EVERY:
                run["notes"] = [note]
        route.fulfill(response=response, json=body)

    def steps(route):
        response = route.fetch()
        body = response.json()
        for step in body["steps"]:
            step["facts"], step["images"] = None, []  # what a damaged step reads as
        route.fulfill(response=response, json=body)

    tab.page.route("**/data/plugin/cnnvis/tags", tags)
    tab.page.route("**/data/plugin/cnnvis/steps?*feature_maps*", steps)
    frame = open_tab(tab)
    choose_run(frame, EVERY)
    open_view(frame, "grad_cam", EVERY_LAYERS[-1])
    assert frame.locator(".pane .run-notes").inner_text() == note
    open_view(frame, "feature_maps", "conv1")
    message = frame.locator(".pane .message")
    assert message.locator("h3").inner_text() == "Nothing to draw at epoch 1"
    assert message.locator("p").first.inner_text() == (
        "The facts of this step could not be read (a damaged file?), and it holds no images."
    )
    assert frame.locator(".card").count() == 0
    screenshot(tab.page, "run_notes_empty_pane")
    assert tab.problems == []


def test_long_names_are_shortened_with_the_full_name_on_hover_and_quotes_work(tab):
    frame = open_tab(tab)
    choose_run(frame, NAMES)
    long = frame.locator(f".layer[data-layer={json.dumps(LONG)}]")
    assert long.get_attribute("title") == LONG
    shown = long.locator(".layer-name").inner_text()
    assert len(shown) <= 48 and shown.startswith("xxx") and "…" in shown
    assert long.bounding_box()["height"] < 80  # two lines of name, one of class and shape
    act(frame, long.click)
    screenshot(tab.page, "long_layer_name")
    # Drawn: its steps were asked for by the series id of /tags, not by its 10 kB name.
    assert len(canvases(frame)) == 8  # the second layer's 8 channels, drawn
    by_id = [url for url in tab.requests if "/steps?s=" in url]
    assert len(by_id) == 1 and len(by_id[0]) < 200
    intro = frame.locator(".view-intro .intro-layer")
    assert intro.get_attribute("title") == LONG and len(intro.inner_text()) <= 80
    quoted = frame.locator(f".layer[data-layer={json.dumps(QUOTED)}]")
    assert quoted.locator(".layer-name").inner_text() == QUOTED
    act(frame, quoted.click)
    screenshot(tab.page, "odd_layer_names")
    assert intro.inner_text() == QUOTED
    asked = [parse_qs(urlparse(url).query).get("tag") for url in tab.requests if "/steps?" in url]
    # The page asks for the tag as stored (quotes and backslashes escaped: metadata.tag_name).
    assert [metadata.tag_name("feature_maps", QUOTED)] in asked
    assert len(canvases(frame)) == 4  # drawn under this loader
    assert tab.problems == []


def test_a_binary_model_shows_its_two_classes_and_the_targets_explained(tab):
    frame = open_tab(tab)
    choose_run(frame, BINARY)
    open_view(frame, "grad_cam", "conv2")
    chooser = frame.get_by_label("Explained class", exact=True)
    assert chooser.locator("option").all_inner_texts() == ["cat", "dog"]
    facts = api(tab.url, "steps", run=BINARY, tag="grad_cam/conv2")["steps"][-1]["facts"]
    names = ("cat", "dog")
    # The maps come most probable first (the order differs between probes and epochs): the
    # chooser offers the two classes by name, and each probe's map of the class chosen.
    assert [facts["class_index"][i] for i in range(0, 8, 2)] != [0] * 4
    for value in ("0", "1"):
        maps = [i for i in range(8) if facts["class_index"][i] == int(value)]
        if chooser.input_value() != value:
            act(frame, lambda v=value: chooser.select_option(v))
        titles = [
            f"{names[facts['predicted'][i]]} {round(100 * facts['probability'][i])}%" for i in maps
        ]
        assert frame.locator(".card-title").all_inner_texts() == titles
        metas = frame.locator(".card-meta").all_inner_texts()
        assert [m.split(" · ")[-1] for m in metas] == [facts["targets"][i] for i in maps]
        auc = np.mean([facts["deletion_auc"][i] for i in maps])
        text = frame.locator('.metric[data-metric="deletion_auc"] .metric-value').inner_text()
        assert text.startswith(three(auc)), (value, text)
    screenshot(tab.page, "binary_dog")
    frame.locator(".card").nth(1).click()
    rows = dict(
        zip(
            frame.locator(".detail dt").all_inner_texts(),
            frame.locator(".detail dd").all_inner_texts(),
        )
    )
    assert rows["Target"] == "class 1 (dog): logit" and rows["Head"] == "binary"
    assert tab.problems == []


def test_a_regression_model_shows_the_value_beside_its_target(tab):
    frame = open_tab(tab)
    choose_run(frame, REGRESSION)
    open_view(frame, "grad_cam", "conv2")
    facts = api(tab.url, "steps", run=REGRESSION, tag="grad_cam/conv2")["steps"][-1]["facts"]
    assert frame.locator(".card-title").all_inner_texts() == [three(v) for v in facts["values"]]
    assert frame.locator(".card-note").all_inner_texts() == [
        f"true {three(v)}" for v in facts["labels"]
    ]
    assert frame.locator(".card-meta").all_inner_texts() == ["regression: raise"] * 4
    assert frame.get_by_label("Explained class", exact=True).count() == 0
    probes = frame.locator(".probe-filter")
    assert probes.get_attribute("title") == (
        "The model’s head is a regression: no probe is classified right or wrong."
    )
    assert all(button.is_disabled() for button in probes.locator("button").all())
    screenshot(tab.page, "regression")
    assert tab.problems == []


def test_a_segmentation_probe_shows_its_map_with_its_mask_under_it(tab):
    frame = open_tab(tab)
    choose_run(frame, SEGMENTATION)
    open_view(frame, "grad_cam", "conv2")
    step = api(tab.url, "steps", run=SEGMENTATION, tag="grad_cam/conv2")["steps"][-1]
    roles = [entry.get("role") for entry in step["facts"]["images"]]
    assert roles == [None, "mask"] * 4
    assert frame.locator(".card").count() == 4
    assert frame.locator(".card-title").all_inner_texts() == ["road", "car", "road", "car"]
    assert frame.locator(".card-meta").all_inner_texts() == step["facts"]["targets"]
    for k, drawn in enumerate(pixels(frame, ".card .frame canvas")):
        mask = np.asarray(png(tab, step["images"][2 * k + 1]).convert("L"))
        size = mask.shape[0]
        assert drawn.shape[:2] == (2 * size + 2, size)
        assert np.array_equal(drawn[size + 2 :, :, 0], mask)  # the mask, grey, under the map
        assert np.all(drawn[size : size + 2, :, 3] == 0)  # a see-through gap between them
        assert len(np.unique(drawn[:size].reshape(-1, 4), axis=0)) > 8  # the map over the probe
    screenshot(tab.page, "segmentation_masks")
    frame.locator(".card").first.click()
    frame.wait_for_function("document.querySelector('.detail canvas.big').height === 66")
    rows = dict(
        zip(
            frame.locator(".detail dt").all_inner_texts(),
            frame.locator(".detail dd").all_inner_texts(),
        )
    )
    assert rows["Explained class"] == "road" and rows["Target"] == step["facts"]["targets"][0]
    screenshot(tab.page, "segmentation_detail")
    assert tab.problems == []

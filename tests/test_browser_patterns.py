"""Filter patterns' extras and DeepDream in a real TensorBoard tab, through headless Chromium.

One module-wide set-up, no training: a log directory written by the view writers
(``write_filter_patterns``, ``write_deepdream``) from known arrays, so that every pixel drawn
can be checked against the stored PNGs:

    ``maco/cnnvis``: ``filter_patterns/conv1``, six 5×5 px display crops of a 24×24 px canvas
        (a small receptive field), with MaCo's transparency, filters 2 and 4 data-seeded, three
        diversity members per filter; ``deepdream/conv2``, one dream per probe; the probes.
    ``plain/cnnvis``: ``filter_patterns/conv1`` without transparency, seeds or diversity.

Each test opens the dashboard anew in TensorBoard's own page on the cnnvis tab (one page for the
module: ``browser_util.SharedPage``).
Screenshots go to ``artifacts/screenshots/``.
"""

import io
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest
from browser_util import tensorboard_server, wait_for_runs
from test_browser import SCREENSHOTS, act, api, choose_run, open_view

pytestmark = pytest.mark.browser

MACO = "maco/cnnvis"
PLAIN = "plain/cnnvis"
SIZE = 24  # input and canvas, px
PATCH = 5  # the display crop (receptive field), px
FILTERS = 6
SEEDED = [2, 4]
MEMBERS = 3
PROBES = 3
OCTAVES = [(12, 12), (SIZE, SIZE)]
CHECKBOX = "Show MaCo’s attribution as transparency"


def _patterns(rng):
    """(F, 5, 5, 3) uint8 patterns, (F, 5, 5) opacity with every level 0..1 and a full
    row, (F, n, 5, 5, 3) diversity members (member 0 is the pattern)."""
    patterns = rng.integers(0, 256, (FILTERS, PATCH, PATCH, 3), dtype=np.uint8)
    ramp = np.linspace(0, 1, PATCH * PATCH).reshape(PATCH, PATCH)
    alpha = np.stack([np.roll(ramp, f, axis=1) for f in range(FILTERS)])
    alpha[:, 0, :] = 1.0
    others = rng.integers(0, 256, (FILTERS, MEMBERS - 1, PATCH, PATCH, 3), dtype=np.uint8)
    return patterns, alpha, np.concatenate([patterns[:, None], others], axis=1)


def _write_run(run_dir, rng, *, extras):
    import tensorflow as tf

    from tb_cnnvis import summary, views

    common = {"input_shape": (SIZE, SIZE, 3), "probe_count": PROBES}
    patterns, alpha, variants = _patterns(rng)
    activations = 0.5 + np.arange(FILTERS)
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        probes = rng.random((PROBES, SIZE, SIZE, 3)).astype(np.float32)
        summary.write_probes(summary.content("probes", **common), probes, 0, labels=[0, 1, 2])
        content = summary.content(
            "filter_patterns", "conv1", layer_index=0, layer_class="Conv2D",
            output_shape=(SIZE, SIZE, FILTERS), **common,
        )  # fmt: skip
        top = (SIZE - PATCH) // 2
        views.filter_patterns.write_filter_patterns(
            content, patterns, 0, filters=range(FILTERS), activations=activations,
            start_activations=activations / 10, preset="maco" if extras else "fast",
            canvas=(SIZE, SIZE), crop=(top, top, top + PATCH, top + PATCH),
            receptive_field=SimpleNamespace(size=(PATCH, PATCH), stride=(1, 1), start=(-top, -top)),
            seeded=SEEDED if extras else (), spectrum="probe_images" if extras else None,
            transparency=alpha if extras else None, variants=variants if extras else None,
            variant_activations=activations[:, None] * [1.0, 0.8, 0.6] if extras else None,
        )  # fmt: skip
        if extras:
            content = summary.content(
                "deepdream", "conv2", layer_index=1, layer_class="Conv2D",
                output_shape=(SIZE // 2, SIZE // 2, 8), **common,
            )  # fmt: skip
            dreams = rng.integers(0, 256, (PROBES, SIZE, SIZE, 3), dtype=np.uint8)
            views.deepdream.write_deepdream(
                content, dreams, 0, objective=[4e-23, 6.5e-23, 9.1e-23],
                start_objective=[2e-23, 2e-23, 3e-23], octaves=OCTAVES, steps=10, seconds=0.5,
            )  # fmt: skip
    writer.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pattern_logs")
    _write_run(root / MACO, np.random.default_rng(1), extras=True)
    _write_run(root / PLAIN, np.random.default_rng(2), extras=False)
    return root


@pytest.fixture(scope="module")
def server(logs):
    with tensorboard_server(logs) as url:
        wait_for_runs(url, [MACO, PLAIN])
        yield url


@pytest.fixture
def tab(shared):
    """TensorBoard's page on the cnnvis tab, its dashboard fresh for the test: ``.page``,
    ``.open(run, kind)``, ``.url`` and the problems (console errors, page errors, dialogs)."""
    with shared.tab() as state:

        def open_run(run, kind="filter_patterns"):
            frame = shared.open()
            frame.wait_for_function("document.body.dataset.state === 'ready'")
            frame.evaluate("window.cnnvis.settled()")
            choose_run(frame, run)
            open_view(frame, kind)
            return frame

        state.open = open_run
        yield state


def stored(url, run, tag):
    """The newest step of a tag: its facts and its PNGs decoded ({name: (H, W, C) uint8})."""
    from PIL import Image

    step = api(url, "steps", run=run, tag=tag)["steps"][-1]
    pngs = []
    for image in step["images"]:
        with urllib.request.urlopen(f"{url}data/plugin/cnnvis/{image}", timeout=10) as r:
            pngs.append(np.asarray(Image.open(io.BytesIO(r.read())).convert("RGBA")))
    names = step["facts"].get("atlases") or list(range(len(pngs)))
    return step["facts"], dict(zip(names, pngs, strict=True))


def tile(atlas, desc, k):
    """Tile k of an atlas (row-major, no gaps), as tileRect of model.js cuts it."""
    h, w = desc["tile"]
    row, col = divmod(k, desc["grid"][1])
    return atlas[row * h : (row + 1) * h, col * w : (col + 1) * w]


def pixels(frame, selector):
    """The RGBA pixels of every canvas matched, as (H, W, 4) uint8 arrays."""
    found = frame.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((c) => ({
            w: c.width, h: c.height,
            data: [...c.getContext('2d').getImageData(0, 0, c.width, c.height).data],
        }))""",
        selector,
    )
    return [np.array(c["data"], dtype=np.uint8).reshape(c["h"], c["w"], 4) for c in found]


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_the_transparency_checkbox_is_offered_only_with_maco_and_draws_its_alpha(tab):
    frame = tab.open(PLAIN)
    box = frame.get_by_label(CHECKBOX, exact=True)
    assert frame.locator(".card").count() == FILTERS
    assert box.count() == 0
    opaque = pixels(frame, ".card .frame canvas")
    assert all((c[..., 3] == 255).all() for c in opaque)

    act(frame, lambda: frame.get_by_label("Run", exact=True).select_option(MACO))
    assert box.count() == 1 and not box.is_checked()
    facts, pngs = stored(tab.url, MACO, "filter_patterns/conv1")
    assert facts["atlases"] == ["patterns", "transparency", "diversity"]
    desc, alpha_desc = facts["images"][0], facts["images"][1]
    before = pixels(frame, ".card .frame canvas")
    for k, canvas in enumerate(before):
        assert (canvas[..., 3] == 255).all()
        assert (canvas[..., :3] == tile(pngs["patterns"], desc, k)[..., :3]).all()

    started = time.perf_counter()
    act(frame, box.check)
    print(f"\nredraw with transparency: {1000 * (time.perf_counter() - started):.0f} ms")
    after = pixels(frame, ".card .frame canvas")
    assert len(after) == FILTERS
    for k, canvas in enumerate(after):
        alpha = tile(pngs["transparency"], alpha_desc, k)[..., 0]
        assert (canvas[..., 3] == alpha).all(), k
        assert len(np.unique(alpha)) > 10  # a ramp, not a flat mask
        opaque = alpha == 255  # elsewhere the canvas keeps premultiplied, rounded colours
        assert opaque.sum() >= PATCH
        assert (canvas[opaque][:, :3] == tile(pngs["patterns"], desc, k)[opaque][:, :3]).all()
    classes = frame.locator(".card .frame canvas").evaluate_all(
        "(cs) => cs.map((c) => c.className)"
    )
    assert classes == ["see-through"] * FILTERS
    background = frame.locator(".card .frame canvas").first.evaluate(
        "(c) => getComputedStyle(c).backgroundImage"
    )
    assert "conic-gradient" in background  # the checkerboard behind
    screenshot(tab.page, "patterns_transparency")

    act(frame, box.uncheck)
    assert all((c[..., 3] == 255).all() for c in pixels(frame, ".card .frame canvas"))
    act(frame, lambda: frame.get_by_label("Run", exact=True).select_option(PLAIN))
    assert frame.get_by_label(CHECKBOX, exact=True).count() == 0
    assert tab.problems == []


def test_small_fields_are_drawn_enlarged_without_smoothing_and_the_intro_says_their_size(tab):
    started = time.perf_counter()
    frame = tab.open(MACO)
    print(f"\npatterns pane opened and drawn: {1000 * (time.perf_counter() - started):.0f} ms")
    cards = frame.locator(".card .frame canvas")
    sizes = cards.evaluate_all(
        """(cs) => cs.map((c) => [c.width, c.height, c.getBoundingClientRect().width,
                                  getComputedStyle(c).imageRendering])"""
    )
    assert [[w, h, rendering] for w, h, _, rendering in sizes] == [
        [PATCH, PATCH, "pixelated"]
    ] * FILTERS
    assert all(shown >= 20 * PATCH for _, _, shown, _ in sizes)  # a 5 px patch, 112 px wide
    # The patch size is the layer's, said once above the cards; each caption fits its card.
    metas = frame.locator(".card .card-meta")
    assert all(meta.startswith("act ") for meta in metas.all_inner_texts())
    assert metas.evaluate_all("(ms) => ms.filter((m) => m.scrollWidth > m.clientWidth).length") == 0
    intro = frame.locator(".view-intro").inner_text()
    assert f"receptive field {PATCH}×{PATCH} px of the {SIZE}×{SIZE} px canvas" in intro
    assert tab.problems == []


def test_the_seeded_tag_marks_exactly_the_data_seeded_filters(tab):
    frame = tab.open(MACO)
    tagged = frame.locator('.card[data-tag="seeded"] .card-title').all_inner_texts()
    assert tagged == [f"#{f}" for f in SEEDED]
    tags = frame.locator(".card-tag:visible")
    assert tags.count() == len(SEEDED)
    assert tags.all_inner_texts() == ["seeded"] * len(SEEDED)
    assert "restarted from the crop" in tags.first.get_attribute("title")
    facts = {}
    for filter_ in (SEEDED[0], 0):
        frame.locator(".card").nth(filter_).click()
        dialog = frame.locator("dialog.detail")
        dialog.wait_for()
        frame.locator(".detail-title", has_text=f"Filter {filter_}").wait_for()
        rows = zip(dialog.locator("dt").all_inner_texts(), dialog.locator("dd").all_inner_texts())
        facts[filter_] = dict(rows)
        tab.page.keyboard.press("Escape")
    assert facts[SEEDED[0]]["Seeded from data"].startswith("yes: dead from noise")
    assert facts[0]["Seeded from data"] == "no"
    assert "this filter keeps its own crop" in facts[SEEDED[0]]["Magnitude spectrum"]
    assert frame.locator(".card").nth(0).get_attribute("data-tag") == ""
    screenshot(tab.page, "patterns_seeded")
    assert tab.problems == []


def test_the_detail_of_a_filter_shows_its_diversity_members_as_stored(tab):
    frame = tab.open(MACO)
    facts, pngs = stored(tab.url, MACO, "filter_patterns/conv1")
    filter_ = 3
    frame.locator(".card").nth(filter_).click()
    dialog = frame.locator("dialog.detail")
    dialog.wait_for()
    frame.wait_for_function(
        f"document.querySelectorAll('.detail-more-figure canvas').length === {MEMBERS}"
    )
    more = dialog.locator(".detail-more")
    assert more.is_visible()
    assert f"{MEMBERS} patterns of filter {filter_}" in more.locator("h3").text_content()
    captions = more.locator("figcaption").all_inner_texts()
    expected = (0.5 + filter_) * np.array([1.0, 0.8, 0.6])
    assert [float(c.removeprefix("act ")) for c in captions] == pytest.approx(expected, rel=1e-2)
    desc = facts["images"][2]
    assert desc["grid"] == [FILTERS, MEMBERS]
    drawn = pixels(frame, ".detail-more-figure canvas")
    for j, canvas in enumerate(drawn):
        assert (canvas == tile(pngs["diversity"], desc, filter_ * MEMBERS + j)).all(), j
    assert (drawn[0][..., :3] == tile(pngs["patterns"], facts["images"][0], filter_)[..., :3]).all()
    assert facts["diversity"] == MEMBERS
    rows = dict(zip(dialog.locator("dt").all_inner_texts(), dialog.locator("dd").all_inner_texts()))
    assert rows["Diversity"] == f"{MEMBERS} patterns"
    screenshot(tab.page, "patterns_diversity")

    tab.page.keyboard.press("Escape")
    frame = tab.open(PLAIN)  # a run without diversity: no row
    frame.locator(".card").nth(filter_).click()
    frame.locator("dialog.detail").wait_for()
    frame.wait_for_function("document.querySelector('canvas.big').width > 1")
    frame.evaluate("new Promise((resolve) => setTimeout(resolve, 200))")
    assert frame.locator(".detail-more").is_hidden()
    assert frame.locator(".detail-more-figure").count() == 0
    assert tab.problems == []


def test_deepdream_cards_draw_the_stored_dreams_with_their_facts(tab):
    frame = tab.open(MACO, "deepdream")
    assert frame.locator(".tab[aria-selected='true']").inner_text() == "DeepDream"
    facts, pngs = stored(tab.url, MACO, "deepdream/conv2")
    drawn = pixels(frame, ".card .frame canvas")
    assert len(drawn) == PROBES == len(pngs)
    for canvas, png in zip(drawn, pngs.values(), strict=True):
        assert canvas.shape == (SIZE, SIZE, 4)
        assert (canvas == png).all()
    titles = frame.locator(".card .card-title").all_inner_texts()
    assert titles == ["2×", "3.25×", "3.03×"]  # the objective over the probe's
    assert frame.locator(".card .card-meta").all_inner_texts() == ["raised"] * 3
    for text in frame.locator(".card .card-title, .card .card-meta").all():
        assert text.evaluate("e => e.scrollWidth <= e.clientWidth")  # not cut by the inset
    assert frame.locator(".card canvas.inset").count() == PROBES  # the probe beside
    chip = frame.locator('[data-metric="dream_gain"]')
    assert "2.76×" in chip.inner_text()
    screenshot(tab.page, "deepdream")

    frame.locator(".card").nth(1).click()
    dialog = frame.locator("dialog.detail")
    dialog.wait_for()
    assert dialog.locator(".detail-title").inner_text() == "Probe 1"
    rows = dict(zip(dialog.locator("dt").all_inner_texts(), dialog.locator("dd").all_inner_texts()))
    assert rows["Objective (mean squared activation)"] == "6.50e-23"
    assert rows["Objective of the probe"] == "2.00e-23"
    assert rows["Octaves (h×w)"] == "12×12 → 24×24"
    assert rows["Ascent steps per octave"] == "10"
    assert facts["octaves"] == [list(size) for size in OCTAVES]
    assert frame.locator(".detail-more").is_hidden()
    assert tab.problems == []


def test_runs_compared_each_say_their_own_preset_in_their_pane(tab):
    frame = tab.open(MACO)
    intro = frame.locator(".view-intro").inner_text()
    assert "Preset MaCo" in intro and frame.locator(".pane-intro").count() == 0
    act(frame, lambda: frame.get_by_label("Compare with").select_option(PLAIN))
    intro = frame.locator(".view-intro").inner_text()
    assert intro.startswith("Filter patterns · conv1") and "Preset" not in intro
    heads = frame.locator(".pane-head h2").all_inner_texts()
    panes = frame.locator(".pane-intro").all_inner_texts()
    assert heads == [MACO, PLAIN]
    assert panes[0].startswith("Preset MaCo") and panes[1].startswith("Preset fast")
    assert all(f"receptive field {PATCH}×{PATCH} px" in text for text in panes)
    screenshot(tab.page, "patterns_compare_presets")
    assert tab.problems == []

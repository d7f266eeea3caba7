"""The dashboard on a deep network, in a real TensorBoard tab, driven through headless Chromium.

One module-wide set-up, no training: a log directory with ``deep/cnnvis``
(``deep_runs.write_deep_run``: 153 layers, most of them in a nested MobileNetV2-like model,
some at the top level before and after it, one default layer per resolution stage, and one layer stored the way the
byte budget stores a large one: a different subset of its channels at each step, downsampled)
``flat/cnnvis`` (``write_synthetic_run``: three top-level layers of three sizes) and
``chosen/cnnvis`` (two layers, both chosen by the callback's defaults). Each
test opens the dashboard anew in TensorBoard's own page on the cnnvis tab (one page for the
module: ``browser_util.SharedPage``).
"""

from types import SimpleNamespace

import deep_runs
import pytest
from browser_util import tensorboard_server, wait_for_runs
from test_browser import SCREENSHOTS, act, canvases, choose_run

from tb_cnnvis.testing import write_synthetic_run

pytestmark = pytest.mark.browser

DEEP = "deep/cnnvis"
FLAT = "flat/cnnvis"
MODEL = deep_runs.MODEL
BUDGET = deep_runs.BUDGET_LAYER
CHANNELS = deep_runs.BUDGET_CHANNELS
CHOSEN = "chosen/cnnvis"
NOTE = "by the callback’s defaults (on a deep network, one per resolution stage)"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("deep_logs")
    info = deep_runs.write_deep_run(root / DEEP)
    write_synthetic_run(str(root / "flat"), epochs=0, layers=3, probes=2, nested=False,
                        kinds=("probes", "feature_maps"), timings=False)  # fmt: skip
    _write_chosen_run(root / CHOSEN)
    return SimpleNamespace(path=root, **info)


def _write_chosen_run(run_dir):
    """Two layers whose feature maps the callback's defaults chose, step 0."""
    import tensorflow as tf

    from tb_cnnvis import summary, views

    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        for index, side in enumerate((16, 8)):
            shape = (side, side, 2)
            content = summary.content(
                "feature_maps", f"conv{index + 1}", layer_index=index, layer_class="Conv2D",
                output_shape=shape, input_shape=(16, 16, 3), probe_count=1, default_layer=True,
            )  # fmt: skip
            views.feature_maps.write_feature_maps(content, deep_runs.channel_maps(shape, 1), 0)
    writer.close()


@pytest.fixture(scope="module")
def server(logs):
    with tensorboard_server(logs.path) as url:
        wait_for_runs(url, [DEEP, FLAT, CHOSEN])
        yield url


@pytest.fixture
def tab(shared):
    """TensorBoard's page on the cnnvis tab, its dashboard fresh for the test: ``.page``,
    ``.open()``, and the problems (console errors, page errors, dialogs) seen."""
    with shared.tab() as state:

        def open_run(run=DEEP):
            frame = shared.open()
            frame.wait_for_function("document.body.dataset.state === 'ready'")
            frame.evaluate("window.cnnvis.settled()")
            choose_run(frame, run)
            return frame

        state.open = open_run
        yield state


def shown_layers(frame):
    """The full paths of the layers the list shows (not filtered out, not collapsed)."""
    return frame.locator(".layer:visible").evaluate_all("(bs) => bs.map((b) => b.dataset.layer)")


def paths_in(group):
    """The full paths of every layer in a group of the list (shown or not), in list order."""
    return group.locator(".layer").evaluate_all("(bs) => bs.map((b) => b.dataset.layer)")


def count_text(frame):
    return frame.locator(".layer-count").inner_text()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def select_layer(frame, path):
    button = frame.locator(f'.layer[data-layer="{path}"]')
    if button.get_attribute("aria-current") != "true":
        act(frame, button.click)


# ------------------------------------------------------------------------------ the list


def test_layers_are_grouped_by_nested_model_and_resolution_stage(tab, logs):
    frame = tab.open()
    # In model order: the top-level layer before the nested model, the model, the head.
    models = frame.locator(".layer-group.model > details > summary .group-name")
    assert models.all_inner_texts() == ["Top level", MODEL, "Top level"]
    groups = frame.locator(".layer-group.model")
    assert paths_in(groups.nth(0)) == ["rescaling"] == logs.layers[:1]
    assert groups.nth(0).locator(".layer-group.stage .group-name").inner_text() == "224×224"
    nested = groups.nth(1)
    stages = nested.locator(".layer-group.stage")
    assert stages.locator(".group-name").all_inner_texts() == [
        "112×112", "56×56", "28×28", "14×14", "7×7"
    ]  # fmt: skip
    for i in range(stages.count()):
        stage = stages.nth(i)
        size = stage.locator(".group-name").inner_text()
        paths = paths_in(stage)
        expected = [p for p in logs.layers if p.startswith(f"{MODEL}/") and logs.stages[p] == size]
        assert paths == expected  # model order, every layer of that size
        assert stage.locator(".group-count").first.inner_text() == str(len(expected))
    assert paths_in(groups.nth(2)) == ["head_conv", "head_bn", "head_relu"] == logs.layers[-3:]
    assert count_text(frame) == f"{len(logs.layers)} layers"
    # Names without the nested prefix; the full path as title and in the accessible name.
    row = frame.locator(f'.layer[data-layer="{MODEL}/block_13_expand"]')
    assert row.locator(".layer-name").inner_text() == "block_13_expand"
    assert row.get_attribute("title") == f"{MODEL}/block_13_expand"
    assert row.get_attribute("aria-label").startswith(f"{MODEL}/block_13_expand, Conv2D")
    frame.get_by_role("button", name=f"{MODEL}/Conv1_relu").wait_for()
    names = frame.locator(".layer .layer-name").all_inner_texts()
    assert names == [p.rpartition("/")[2] for p in logs.layers]
    screenshot(tab.page, "deep_layer_list")
    assert tab.problems == []


def test_a_run_of_top_level_layers_has_stage_headings_and_no_model_heading(tab):
    frame = tab.open(FLAT)
    assert frame.locator(".layer-group.model").count() == 0
    assert frame.locator(".layer-group.stage .group-name").all_inner_texts() == [
        "32×32", "16×16", "8×8"
    ]  # fmt: skip
    assert frame.locator(".layer .layer-name").all_inner_texts() == ["conv1", "conv2", "conv3"]
    assert frame.locator(".default-toggle").is_hidden()  # no layer was chosen by default
    assert frame.locator(".default-dot:visible").count() == 0
    assert frame.locator(".layer-legend").is_hidden()
    assert tab.problems == []


def test_a_run_whose_layers_were_all_chosen_by_default_says_so_once(tab):
    frame = tab.open(CHOSEN)
    assert frame.locator(".layer-legend").inner_text() == f"All chosen {NOTE}."
    assert frame.locator(".default-toggle").is_hidden()  # it would change nothing
    assert frame.locator(".layer .default-dot").count() == 0
    assert tab.problems == []


def test_the_filter_box_narrows_the_list_shows_the_count_and_survives_a_reload(tab, logs):
    frame = tab.open()
    box = frame.get_by_label("Filter layers")
    assert box.get_attribute("aria-describedby") == "cv-layer-count"
    assert frame.locator("#cv-layer-count").get_attribute("role") == "status"
    box.click()
    tab.page.keyboard.type("Block_13")
    expected = [p for p in logs.layers if "block_13" in p.lower()]
    assert shown_layers(frame) == expected
    assert count_text(frame) == f"{len(expected)} of {len(logs.layers)} layers"
    # Every word must match, in the path or in the class name.
    box.fill("block_13 depthwiseconv2d")
    assert shown_layers(frame) == [f"{MODEL}/block_13_depthwise"]
    assert count_text(frame) == f"1 of {len(logs.layers)} layers"
    stage = logs.stages[f"{MODEL}/block_13_depthwise"]
    assert stage == "7×7"  # block 13's depthwise convolution halves the size
    assert frame.locator(".layer-group.stage:visible .group-name").all_inner_texts() == [stage]
    box.fill("no such layer")
    assert shown_layers(frame) == []
    assert frame.locator(".layer-empty").inner_text() == "No layer matches “no such layer”."
    box.press("Escape")
    assert box.input_value() == ""
    assert len(shown_layers(frame)) == len(logs.layers)
    assert count_text(frame) == f"{len(logs.layers)} layers"
    # Enter opens the first match; the filter and the layer survive a reload.
    box.fill("head_")
    act(frame, lambda: box.press("Enter"))
    assert frame.locator(".layer[aria-current='true']").get_attribute("data-layer") == "head_conv"
    screenshot(tab.page, "deep_layer_filter")
    frame = tab.open()
    assert frame.get_by_label("Filter layers").input_value() == "head_"
    assert shown_layers(frame) == ["head_conv", "head_bn", "head_relu"]
    assert count_text(frame) == f"3 of {len(logs.layers)} layers"
    assert frame.locator(".layer[aria-current='true']").get_attribute("data-layer") == "head_conv"
    # ArrowDown from the box goes to the first layer shown, ArrowUp back to the box.
    frame.get_by_label("Filter layers").press("ArrowDown")
    assert frame.evaluate("document.activeElement.dataset.layer") == "head_conv"
    tab.page.keyboard.press("ArrowDown")
    assert frame.evaluate("document.activeElement.dataset.layer") == "head_bn"
    tab.page.keyboard.press("ArrowUp")
    tab.page.keyboard.press("ArrowUp")
    assert frame.evaluate("document.activeElement.id") == "cv-layer-filter"
    assert tab.problems == []


def test_default_layers_are_marked_and_one_click_shows_only_them(tab, logs):
    frame = tab.open()
    marked = frame.locator(".layer:has(.default-dot)")
    paths = marked.evaluate_all("(bs) => bs.map((b) => b.dataset.layer)")
    assert paths == logs.defaults and len(paths) == 5  # one per stage with a convolution
    dot = marked.first.locator(".default-dot")
    assert dot.get_attribute("title") == f"Chosen {NOTE}"
    assert marked.first.get_attribute("aria-label").endswith(", chosen by default")
    toggle = frame.get_by_role("button", name="Default layers only")
    assert toggle.get_attribute("aria-pressed") == "false"
    assert toggle.get_attribute("title") == f"Show only the layers chosen {NOTE}"
    assert len(shown_layers(frame)) == len(logs.layers)  # all layers by default
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert shown_layers(frame) == logs.defaults
    assert count_text(frame) == f"5 of {len(logs.layers)} layers"
    frame.get_by_label("Filter layers").fill("expand")
    assert shown_layers(frame) == [p for p in logs.defaults if "expand" in p]
    screenshot(tab.page, "deep_default_layers")
    frame.get_by_label("Filter layers").fill("")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    assert len(shown_layers(frame)) == len(logs.layers)
    assert tab.problems == []


def test_a_collapsed_stage_hides_its_layers_until_a_search_finds_one(tab, logs):
    frame = tab.open()
    stage = frame.locator('.layer-group.stage[data-group="28×28"]')
    in_stage = [p for p in logs.layers if logs.stages[p] == "28×28"]
    stage.locator("summary").click()
    assert stage.locator("details").get_attribute("open") is None
    assert not set(in_stage) & set(shown_layers(frame))
    assert len(shown_layers(frame)) == len(logs.layers) - len(in_stage)
    frame = tab.open()  # remembered across a reload
    stage = frame.locator('.layer-group.stage[data-group="28×28"]')
    assert stage.locator("details").get_attribute("open") is None
    frame.get_by_label("Filter layers").fill("block_4_")
    assert shown_layers(frame) == [p for p in logs.layers if "block_4_" in p]
    frame.get_by_label("Filter layers").fill("")
    assert stage.locator("details").get_attribute("open") is None  # as the user left it
    assert tab.problems == []


# ----------------------------------------------------------------- feature-map subsets


def card_titles(frame):
    return frame.locator(".card .card-title").all_inner_texts()


def go_to_epoch(frame, epoch):
    slider = frame.get_by_label("Epoch", exact=True)
    if frame.locator(".epoch-value").inner_text() != str(epoch):
        act(frame, lambda: slider.fill(str(epoch)))  # one step per epoch: index == epoch
    assert frame.locator(".epoch-value").inner_text() == str(epoch)


def test_a_stored_subset_of_channels_is_named_and_said_in_the_intro(tab):
    frame = tab.open()
    select_layer(frame, BUDGET)
    for epoch, channels in CHANNELS.items():
        go_to_epoch(frame, epoch)
        assert card_titles(frame) == [f"ch {c}" for c in channels]
        intro = frame.locator(".view-intro").inner_text()
        assert (
            f"Showing probe 0: {len(channels)} of 16 channels, the most active first, "
            "stored at 56×56 of 112×112; each channel scaled to its own range." in intro
        )
        drawn = canvases(frame)
        assert [(c["w"], c["h"]) for c in drawn] == [(56, 56)] * len(channels)
        assert all(c["drawn"] == 56 * 56 for c in drawn)
    screenshot(tab.page, "deep_feature_map_subset")
    # Per-layer scaling over the stored channels: a channel spanning that range is unchanged.
    go_to_epoch(frame, 1)
    per_channel = canvases(frame)
    act(frame, lambda: frame.get_by_role("button", name="Per layer").click())
    assert "each channel scaled to the range of the 4 stored channels" in (
        frame.locator(".view-intro").inner_text()
    )
    per_layer = canvases(frame)
    assert all(c["drawn"] == 56 * 56 for c in per_layer)
    facts = frame.evaluate("window.cnnvis.panes[0].steps[1].facts")
    low, high = min(facts["min"][0]), max(facts["max"][0])
    for i, (a, b) in enumerate(zip(per_channel, per_layer, strict=True)):
        spans = facts["min"][0][i] == low and facts["max"][0][i] == high
        assert (a["sum"] == b["sum"]) == spans, i
    # The detail names the real channel and says where it ranks.
    frame.locator(".card").nth(2).click()
    dialog = frame.locator("dialog.detail")
    dialog.wait_for()
    assert dialog.locator(".detail-title").inner_text() == "Channel 5"
    rows = dict(zip(dialog.locator("dt").all_inner_texts(), dialog.locator("dd").all_inner_texts(),
                    strict=True))  # fmt: skip
    assert rows["Channel"] == "5"
    assert rows["Activity rank"] == "3 of 16"
    assert rows["Channels stored"] == "4 of 16, the most active first"
    assert rows["Map size"] == "112×112, stored at 56×56"
    assert tab.problems == []


def frame_sums(frame):
    """The filmstrip: per frame its epoch, whether it says 'not stored', and its pixels."""
    frame.wait_for_function(
        "[...document.querySelectorAll('.filmstrip .frame')].every((f) => !f.matches('.pending'))"
    )
    frame.evaluate("window.cnnvis.settled()")
    buttons = frame.locator(".frame-button")
    pixels = canvases(frame, ".filmstrip canvas")
    return [
        {
            "step": int(buttons.nth(i).get_attribute("data-step")),
            "missing": "missing" in buttons.nth(i).locator(".frame").get_attribute("class"),
            "label": buttons.nth(i).get_attribute("aria-label"),
            **pixels[i],
        }
        for i in range(buttons.count())
    ]


def test_the_filmstrip_follows_one_channel_across_epochs_whose_subsets_differ(tab):
    frame = tab.open()
    select_layer(frame, BUDGET)
    go_to_epoch(frame, 0)
    # The board's pixels of each channel at each epoch, to compare the filmstrip with.
    board = {}
    for epoch, channels in CHANNELS.items():
        go_to_epoch(frame, epoch)
        for channel, pixels in zip(channels, canvases(frame), strict=True):
            board[(epoch, channel)] = pixels["sum"]
    assert len({board[(0, c)] for c in CHANNELS[0]}) == 4  # four different patterns
    go_to_epoch(frame, 0)
    frame.locator(".card").nth(0).click()  # channel 5: tile 0, then 2, then 1, then absent
    dialog = frame.locator("dialog.detail")
    dialog.wait_for()
    assert dialog.locator(".detail-title").inner_text() == "Channel 5"
    strip = frame_sums(frame)
    assert [f["step"] for f in strip] == [0, 1, 2, 3]
    for f in strip[:3]:
        assert not f["missing"] and f["label"] == f"Epoch {f['step']}"
        assert (f["w"], f["h"]) == (56, 56) and f["drawn"] == 56 * 56
        assert f["sum"] == board[(f["step"], 5)]  # channel 5's pixels, wherever its tile is
    assert board[(1, 2)] != board[(1, 5)]  # tile 0 at epoch 1 is another channel
    assert strip[3]["missing"] and strip[3]["drawn"] == 0
    assert strip[3]["label"] == "Epoch 3: Channel 5 not stored"
    # Moving through epochs in the detail keeps the channel, and says when it is absent.
    act(frame, lambda: frame.locator(".frame-button").nth(1).click())
    assert dialog.locator(".detail-title").inner_text() == "Channel 5"
    assert dialog.locator(".detail-epoch").inner_text() == "Epoch 1"
    rows = dict(zip(dialog.locator("dt").all_inner_texts(), dialog.locator("dd").all_inner_texts(),
                    strict=True))  # fmt: skip
    assert rows["Channel"] == "5" and rows["Activity rank"] == "3 of 16"
    assert canvases(frame, "canvas.big")[0]["sum"] == board[(1, 5)]
    act(frame, lambda: frame.locator(".frame-button").nth(3).click())
    assert dialog.locator(".detail-epoch").inner_text() == "Epoch 3"
    assert dialog.locator(".detail-note").inner_text() == "Channel 5 was not stored at this epoch."
    assert "missing" in frame.locator(".big-frame").get_attribute("class")
    assert dialog.locator("dt").count() == 0
    screenshot(tab.page, "deep_filmstrip_missing_channel")
    # The next item of epoch 3 is its tile 0 (nothing to step from): channel 7.
    dialog.get_by_role("button", name="Next item").click()
    frame.wait_for_function("document.querySelector('.detail-title').textContent === 'Channel 7'")
    assert dialog.locator(".detail-epoch").inner_text() == "Epoch 3"
    assert dialog.locator(".detail-note").is_hidden()
    strip = frame_sums(frame)
    assert [f["missing"] for f in strip] == [True, False, False, False]  # 7 is absent at 0
    assert [f["sum"] for f in strip if not f["missing"]] == [
        board[(1, 7)], board[(2, 7)], board[(3, 7)]
    ]  # fmt: skip
    assert tab.problems == []

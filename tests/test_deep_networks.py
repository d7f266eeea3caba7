"""Real-size networks: representative default layers, the byte budget, global-context
branches in receptive fields, refusal at set_model, and the progress of long steps."""

import io

import keras
import models
import numpy as np
import pytest
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis import CnnVisCallback, capture, views
from tb_cnnvis.progress import StepProgress
from tb_cnnvis.testing import decode_tiles, read_run

SIZE = 96


def _classifier(name):
    """A keras.applications base (weights=None) inside a small classifier, at 96 px."""
    base = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=(SIZE, SIZE, 3)
    )
    x = keras.Input((SIZE, SIZE, 3))
    y = layers.GlobalAveragePooling2D()(base(x))
    return keras.Model(x, layers.Dense(5)(y), name=f"{name.lower()}_classifier")


DEFAULTS = {
    "MobileNetV2": [
        "block_1_expand_relu",
        "block_3_expand_relu",
        "block_6_expand_relu",
        "block_13_expand_relu",
        "out_relu",
    ],
    "ResNet50": [
        "conv1_relu",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ],
    "EfficientNetB0": [
        "block2a_expand_activation",
        "block3a_expand_activation",
        "block4a_expand_activation",
        "block6a_expand_activation",
        "top_activation",
    ],
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default_layers_are_one_per_resolution_stage(name):
    model = _classifier(name)
    cb = CnnVisCallback("unused", np.zeros((2, SIZE, SIZE, 3), np.float32), views=views.VIEWS)
    cb.set_model(model)
    base = model.layers[1].name
    expected = [f"{base}/{layer}" for layer in DEFAULTS[name]]
    for kind in ("feature_maps", "filter_patterns", "deconvnet"):
        assert [ref.path for ref in cb._plan.layers[kind]] == expected, kind
    assert [ref.path for ref in cb._plan.layers["grad_cam"]] == [expected[-1]]
    assert cb._plan.defaults["feature_maps"].startswith("one per resolution stage")
    sizes = [ref.output_shape[0] for ref in cb._plan.layers["feature_maps"]]
    assert sizes == [48, 24, 12, 6, 3]


def test_small_networks_keep_every_convolution_and_at_most_eight_stages_are_shown():
    four_d = capture.select_layers(models.functional(), None)
    assert [ref.path for ref in views.registry.representative_layers(four_d)] == [
        "conv1",
        "conv1b",
        "conv2",
    ]
    x = inputs = keras.Input((512, 512, 3))
    for i in range(10):  # 10 stages of two convolutions: 512 ... 1 px (1 px is no stage)
        x = layers.Conv2D(2, 3, padding="same", name=f"c{i}a")(x)
        x = layers.Conv2D(2, 3, padding="same", name=f"c{i}b")(x)
        x = layers.MaxPooling2D(name=f"p{i}")(x) if i < 9 else x
    chosen = views.registry.representative_layers(
        capture.select_layers(keras.Model(inputs, x), None)
    )
    assert [ref.path for ref in chosen] == ["c0b", "c1b", "c2b", "c3b", "c5b", "c6b", "c7b", "c8b"]


def _wide_model():
    """128 px input, a 96-channel first layer (too much for a small budget)."""
    x = keras.Input((128, 128, 3))
    y = layers.Conv2D(96, 3, padding="same", activation="relu", name="wide")(x)
    y = layers.MaxPooling2D(4, name="pool")(y)
    y = layers.Conv2D(8, 3, padding="same", activation="relu", name="narrow")(y)
    y = layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, layers.Dense(3, activation="softmax")(y))


def test_the_byte_budget_keeps_the_most_active_channels_and_says_so(logdir):
    model = _wide_model()
    images = np.random.default_rng(0).random((2, 128, 128, 3)).astype(np.float32)
    budget = 40_000
    cb = CnnVisCallback(
        logdir, images, views=["feature_maps"], max_bytes_per_epoch=budget, metrics=False
    )
    cb.set_model(model)
    cb.log_step(0)
    cb.close()
    steps = read_run(logdir)
    wide, _ = steps["feature_maps/wide"][0]
    narrow, _ = steps["feature_maps/narrow"][0]
    # The narrow layer (2 probes x 32 x 32 x 8 = 16 kB) fits; the wide one gets the rest.
    assert narrow["channels"] == list(range(8)) and narrow["map_size"] == [32, 32]
    assert wide["channel_count"] == 96 and wide["map_size"] == [128, 128]
    tile = wide["images"][0]["tile"]
    assert tile == [64, 64]  # 128 px maps stored at half size
    kept = len(wide["channels"])
    assert kept == (budget - 2 * 32 * 32 * 8) // (2 * 64 * 64) == 2
    activity = cv.feature_maps(model, images, "wide").mean(axis=(0, 1, 2))
    assert wide["channels"] == np.argsort(-activity, kind="stable")[:kept].tolist()
    assert len(wide["min"][0]) == kept and wide["images"][0]["count"] == kept
    raw = sum(np.prod(t.shape[:3]) for f, p in (steps["feature_maps/wide"][0],
                                                 steps["feature_maps/narrow"][0])
              for t in decode_tiles(f, p))  # fmt: skip
    assert raw <= budget


def _se_model():
    """conv -> squeeze-and-excitation (global pool, dense, sigmoid gate) -> conv."""
    x = keras.Input((16, 16, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(x)
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(a)
    gate = layers.Conv2D(4, 1, activation="sigmoid", name="excite")(gate)
    b = layers.Multiply(name="scale")([a, gate])
    c = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2")(b)
    y = layers.GlobalAveragePooling2D()(c)
    return keras.Model(x, layers.Dense(3, activation="softmax")(y))


def test_a_squeeze_and_excitation_block_keeps_the_field_of_its_spatial_path():
    model = _se_model()
    plain = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(4, 3, padding="same", name="conv1"),
            layers.Conv2D(4, 3, padding="same", name="conv2"),
        ]
    )
    assert cv.receptive_field(model, "conv2") == cv.receptive_field(plain, "conv2")
    assert cv.receptive_field(model, "scale") == cv.receptive_field(plain, "conv1")
    assert cv.receptive_field(model, "excite").size == (16, 16)  # the gate sees everything


def test_top_examples_through_a_squeeze_and_excitation_block_match_brute_force():
    model = _se_model()
    reference = np.random.default_rng(1).random((12, 16, 16, 3)).astype(np.float32)
    top = cv.top_examples(model, reference, "conv2", k=3)
    acts = keras.Model(model.inputs, model.get_layer("conv2").output)(reference).numpy()
    maxima = acts.reshape(12, -1, 4).max(axis=1)  # (images, channels)
    for f in range(4):
        expected = np.lexsort((np.arange(12), -maxima[:, f]))[:3]
        assert top.indices[f].tolist() == expected.tolist()
        np.testing.assert_allclose(top.activations[f], maxima[expected, f], rtol=1e-5)
    field = top.receptive_field
    assert field.size == (5, 5) and field.start == (-2, -2)
    for f in range(4):
        for j, image in enumerate(top.indices[f]):
            y, x = top.positions[f, j]
            window = np.zeros((5, 5, 3), np.float32)
            padded = np.pad(reference[image], [(2, 2), (2, 2), (0, 0)])
            window[:] = padded[y : y + 5, x : x + 5]
            np.testing.assert_array_equal(top.patches[f, j], window)


def test_a_named_layer_a_view_cannot_run_on_is_refused_at_set_model():
    x = keras.Input((16, 16, 3))
    y = layers.Conv2D(3, 3, padding="same", name="conv1")(x)
    y = layers.Conv2D(3, 3, padding="same", name="conv_up")(layers.UpSampling2D(name="up")(y))
    y = layers.GlobalAveragePooling2D()(y)
    model = keras.Model(x, layers.Dense(3, activation="softmax")(y))
    images = np.zeros((2, 16, 16, 3), np.float32)
    cb = CnnVisCallback(
        "unused", images, views=["top_examples"], layers="conv_up", reference_images=images
    )
    with pytest.raises(ValueError, match=r"top_examples view cannot run on layer 'conv_up'.*Up"):
        cb.set_model(model)


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_long_step_shows_a_bar_per_view_on_a_terminal(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("tb_cnnvis.progress.time.perf_counter", clock)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    progress = StepProgress(3, mid_line=True, stream=out, delay=2.0)
    progress.start("feature_maps", 2)
    progress.advance("feature_maps", 1)
    assert out.getvalue() == ""  # a quick step shows nothing
    clock.now = 5.0
    progress.advance("feature_maps", 1)
    progress.finish("feature_maps")
    text = out.getvalue()
    assert text.startswith("\n\rcnnvis step 3 · feature_maps 1/2 ")
    assert text.endswith("\rcnnvis step 3 · feature_maps 2/2 " + "━" * 20 + " 5s\n")


def test_a_long_step_shows_one_line_per_view_in_a_log(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("tb_cnnvis.progress.time.perf_counter", clock)
    out = io.StringIO()
    progress = StepProgress(0, stream=out, delay=2.0)
    for kind, layers_count in (("feature_maps", 5), ("filter_patterns", 5)):
        progress.start(kind, layers_count)
        clock.now += 3.0
        for done in range(1, layers_count + 1):
            progress.advance(kind, done)
        progress.finish(kind)
    assert out.getvalue().splitlines() == [
        "cnnvis step 0 · feature_maps 5/5 " + "━" * 20 + " 3s",
        "cnnvis step 0 · filter_patterns 5/5 " + "━" * 20 + " 3s",
    ]


def test_verbose_names_the_default_layers_once(logdir, capsys):
    images = np.zeros((2, 16, 16, 3), np.float32)
    cb = CnnVisCallback(logdir, images, views=["feature_maps", "grad_cam"], verbose=1)
    cb.set_model(models.sequential())
    cb.log_step(0)
    cb.log_step(1)
    cb.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cnnvis")]
    assert lines[0].endswith(
        "; default layers: feature_maps conv1, conv2 (every convolution); "
        "grad_cam conv2 (the last layer with a (h, w, c) output before the model's output)"
    )
    assert "default layers" not in lines[1]

"""Filter patterns people can read: every preset's specificity on a trained CNN, MaCo's fixed
magnitude and transparency, receptive-field canvases, data-seeded restarts, diversity.

The quality checks train a tiny CNN for a few seconds on the demo's shapes (``demo.shapes``)
and ask of every preset what activation maximization promises: the pattern made for a
filter excites that filter more than the pattern of any other filter of the layer does
("diagonal dominance", measured on the units the objective averages).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from demo.shapes import make_shapes
from tb_cnnvis import CnnVisCallback
from tb_cnnvis.algorithms.filters import PRESETS, filter_patterns
from tb_cnnvis.algorithms.fv_canvas import MIN_CANVAS, plan_canvas
from tb_cnnvis.algorithms.fv_maco import power_law_spectrum, spectrum_for
from tb_cnnvis.algorithms.fv_specificity import cross_activations, specificity
from tb_cnnvis.testing import read_run
from tests import models

SIZE = 32


@pytest.fixture(scope="module")
def shapes_model():
    """A 3-conv CNN trained 10 short epochs on 2000 32 px shapes (about 6 s on 2 cores)."""
    keras.utils.set_random_seed(0)
    images, labels, _ = make_shapes(2000, size=SIZE, seed=0)
    model = models.trainable_cnn(SIZE, 6)
    history = model.fit(images, labels, epochs=10, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.45  # chance is 1/6
    return model, make_shapes(100, size=SIZE, seed=1)[0]


# Lucid's quality preset runs 512 steps by default; 128 keep the test short.
@pytest.mark.parametrize(("preset", "steps"), [("fast", None), ("maco", None), ("quality", 128)])
@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_each_presets_patterns_excite_their_own_filter_most(shapes_model, preset, steps, layer):
    model, reference = shapes_model
    result = filter_patterns(model, layer, preset=preset, steps=steps, reference_images=reference)
    responses = cross_activations(model, result)
    np.testing.assert_allclose(np.diag(responses), result.activations, rtol=1e-3, atol=1e-5)
    assert specificity(model, result, responses) > 0.9
    assert (result.activations > 0).sum() >= 12  # most of the 16 filters have a pattern


def _gated_model():
    """Filter 0 of ``conv_b`` fires only where red > 0.9, through a steep sigmoid: from a
    grey start the sigmoid and its gradient are exactly 0 in float32 (sigmoid(-300)),
    redirected ReLU or not. (At sigmoid(-80) the gradient is 1e-33, tiny but not zero,
    and the scale-free step rules follow it to a live pattern without any data.)"""
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(1, 1, activation="sigmoid", name="gate"),
            layers.Conv2D(1, 1, activation="relu", name="conv_b"),
        ]
    )
    gate = np.zeros((1, 1, 3, 1), np.float32)
    gate[0, 0, 0, 0] = 1000.0
    model.get_layer("gate").set_weights([gate, np.array([-900.0], np.float32)])
    model.get_layer("conv_b").set_weights([np.ones((1, 1, 1, 1), np.float32), np.array([-0.5])])
    return model


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_patterns_do_not_depend_on_the_scale_of_the_activations(preset):
    # An absolute epsilon in the step rule (Adam's 1e-8) left patterns of layers whose
    # activations are 1e-12 (deep layers of untrained networks) where they started.
    plain = filter_patterns(models.scaled_cnn(1.0), "conv2", steps=12, preset=preset)
    tiny = filter_patterns(models.scaled_cnn(1e-6), "conv2", steps=12, preset=preset)
    assert plain.activations.sum() > 1.1 * plain.start_activations.sum()
    np.testing.assert_allclose(tiny.activations, plain.activations * 1e-6, rtol=2e-3)
    np.testing.assert_allclose(tiny.images, plain.images, atol=2e-3)


def test_a_filter_that_fires_on_data_but_not_from_noise_gets_a_live_data_seeded_pattern():
    model = _gated_model()
    images = np.full((4, 16, 16, 3), 0.5, np.float32)
    images[2, 3:9, 8:14] = (1.0, 0.2, 0.2)  # one red patch in one image
    alone = filter_patterns(model, "conv_b", [0])
    seeded = filter_patterns(model, "conv_b", [0], reference_images=images)
    assert alone.dead.tolist() == [0] and alone.seeded.tolist() == []
    assert seeded.seeded.tolist() == [0] and seeded.dead.tolist() == []
    assert seeded.activations[0] > 0.01
    assert seeded.images[0][..., 0].max() > 0.9  # the red it needs came from the data
    grey = np.full((4, 16, 16, 3), 0.5, np.float32)  # data on which it does not fire either
    assert filter_patterns(model, "conv_b", [0], reference_images=grey).seeded.tolist() == []


@pytest.mark.parametrize("with_images", [False, True])
def test_maco_keeps_the_magnitude_spectrum_and_gives_a_transparency_of_the_images_shape(
    shapes_model, with_images
):
    model, reference = shapes_model
    images = reference if with_images else None
    result = filter_patterns(model, "conv3", [0, 1, 2, 3], preset="maco", reference_images=images)
    assert result.spectrum == ("images" if with_images else "power_law")
    shape = result.images.shape[1:]
    magnitude, _ = spectrum_for(PRESETS["maco"].parametrization, images, result.input_range, shape)
    unit = result.input_range.to_unit(result.images)
    found = np.abs(np.fft.rfft2(np.moveaxis(unit, -1, 1), axes=(-2, -1)))
    error = np.linalg.norm(found - magnitude[None]) / (np.linalg.norm(magnitude) * 2)
    # Only the clipping of the pixels pushed outside [0, 1] departs from the magnitude.
    assert error < 0.1
    strong = np.broadcast_to(magnitude > 1e-3 * magnitude.max(), found.shape)
    ratio = found[strong] / np.broadcast_to(magnitude, found.shape)[strong]
    assert abs(np.median(ratio) - 1) < 0.1
    # The phases did move: every filter that responds rose (one that stays dead from a
    # start of exactly 0 is listed as dead, and left to the data-seeded restart's tests).
    live = ~np.isin(result.filters, result.dead)
    assert live.sum() >= 3
    assert np.all(result.activations[live] > result.start_activations[live])
    assert result.attribution.shape == result.images.shape[:3]
    alpha = result.transparency()
    assert alpha.shape == result.display().shape[:3]
    assert alpha.min() >= 0.0 and alpha.max() == 1.0 and alpha.std() > 0.05


@pytest.mark.parametrize("shape", [(16, 16, 3), (12, 9, 3), (7, 10, 1)])
def test_the_maco_parametrization_has_exactly_the_prescribed_magnitude(shape):
    param = PRESETS["maco"].parametrization
    magnitude = power_law_spectrum(shape, std=0.05)
    phases = tf.constant(param.init([0, 1], shape, seed=3))
    unit = param.to_unit(phases, shape, magnitude).numpy()
    assert unit.shape == (2, *shape) and unit.min() > 0.0 and unit.max() < 1.0  # no clipping
    found = np.abs(np.fft.rfft2(np.moveaxis(unit, -1, 1), axes=(-2, -1)))
    np.testing.assert_allclose(found, np.broadcast_to(magnitude, found.shape), rtol=1e-3, atol=1e-3)
    assert not np.allclose(unit[0], unit[1])  # the phases make the difference


def _deep_model(size):
    """A 3x3 convolution, then three 5x5 ones with two poolings: fields 3, 7, 16, 34 px."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(4, 5, padding="same", activation="relu", name="wide1"),
            layers.MaxPooling2D(),
            layers.Conv2D(4, 5, padding="same", activation="relu", name="wide2"),
            layers.MaxPooling2D(),
            layers.Conv2D(4, 5, padding="same", activation="relu", name="wide3"),
        ]
    )


def test_the_canvas_and_the_display_crop_follow_the_receptive_field():
    model = _deep_model(64)
    # A 3x3 field: the smallest canvas, shown as the central unit's 3x3 patch.
    small = plan_canvas(model, "conv1")
    assert small.field.size == (3, 3)
    assert small.size == (MIN_CANVAS, MIN_CANVAS) and small.crop == (6, 6, 9, 9)
    result = filter_patterns(model, "conv1", [0, 1], steps=3)
    assert result.images.shape == (2, 16, 16, 3) and result.display().shape == (2, 3, 3, 3)
    assert result.display(crop=False).shape == (2, 16, 16, 3)
    # wide2's field is 16 px at stride 2: a 32 px canvas, its central field shown.
    middle = plan_canvas(model, "wide2")
    assert middle.field.size == (16, 16) and middle.size == (32, 32)
    assert middle.crop == (7, 7, 23, 23)
    # A field larger than the input: the whole input is the canvas, shown whole.
    tiny = _deep_model(24)
    large = plan_canvas(tiny, "wide3")
    assert large.field.size == (34, 34)
    assert large.size == (24, 24) and large.crop == (0, 0, 24, 24)
    shown = filter_patterns(tiny, "wide3", [0], steps=3)
    assert shown.display().shape == (1, 24, 24, 3)


def test_diversity_makes_several_distinct_live_patterns_per_filter(shapes_model):
    model, _ = shapes_model
    single = filter_patterns(model, "conv3", [0, 3, 5], steps=48)
    diverse = filter_patterns(model, "conv3", [0, 3, 5], steps=48, diversity=3)
    assert diverse.variants.shape == (3, 3, *single.images.shape[1:])
    assert diverse.variant_activations.shape == (3, 3)
    np.testing.assert_array_equal(diverse.images, diverse.variants[:, 0])
    live = single.activations > 0
    assert np.all(diverse.variant_activations[live] > 0)
    for row in diverse.variants[live]:
        gaps = [np.abs(row[i] - row[j]).mean() for i in range(3) for j in range(i + 1, 3)]
        assert min(gaps) > 0.02
    assert diverse.display_variants().shape == (3, 3, *single.display().shape[1:])


def test_the_callback_stores_maco_transparency_and_diversity_as_the_format_says(tmp_path):
    model = _deep_model(32)
    rng = np.random.default_rng(0)
    probes = rng.random((2, 32, 32, 3)).astype(np.float32)
    callback = CnnVisCallback(
        str(tmp_path), probes, views=["filter_patterns"], layers=["conv1", "wide2"],
        filter_preset="maco", filter_steps=4, filter_diversity=2, max_filters_per_layer=3,
    )  # fmt: skip
    callback.set_model(model)
    callback.log_step(0)
    callback.close()
    run = read_run(str(tmp_path))
    for layer, tile in [("conv1", [3, 3]), ("wide2", [16, 16])]:
        facts, pngs = run[f"filter_patterns/{layer}"][0]
        assert facts["atlases"] == ["patterns", "transparency", "diversity"]
        assert [image["grid"] for image in facts["images"]][2] == [3, 2]
        assert all(image["tile"] == tile for image in facts["images"])
        assert [image["channels"] for image in facts["images"]] == [3, 1, 3]
        assert facts["preset"] == "maco" and facts["spectrum"] == "probe_images"
        assert facts["diversity"] == 2 and np.shape(facts["diversity_activations"]) == (3, 2)
        top, left, bottom, right = facts["crop"]
        assert [bottom - top, right - left] == tile == facts["receptive_field"]["size"]
        assert len(pngs) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filter_preset": "pretty"}, r"filter_preset 'pretty'.*\['fast', 'maco', 'quality'\]"),
        ({"filter_diversity": 0}, "filter_diversity must be an int >= 1"),
    ],
)
def test_the_callback_refuses_unknown_presets_and_diversity_before_training(
    tmp_path, kwargs, message
):
    probes = np.zeros((2, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match=message):
        CnnVisCallback(str(tmp_path), probes, **kwargs)

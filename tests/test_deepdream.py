"""DeepDream (Mordvintsev et al. 2015): the layer's activations grow in every probe, the
dreams stay in the model's range, one batch equals one probe at a time, and it repeats."""

import models
import numpy as np
import pytest

import tb_cnnvis as cv
from tb_cnnvis import capture
from tb_cnnvis.algorithms.deepdream import deepdream


def _images(count=3, size=32):
    return np.random.default_rng(0).random((count, size, size, 3)).astype(np.float32)


def test_the_layers_mean_squared_activation_grows_in_every_probe():
    model = models.sequential(size=32)
    dream = deepdream(model, _images(), "conv2", steps=6)
    assert dream.images.shape == (3, 32, 32, 3)
    assert np.all(dream.objective > 1.5 * dream.start_objective)
    assert dream.octaves == ((16, 16), (23, 23), (32, 32))  # 32 / 1.4**k, smallest first
    _, taps = capture.run_graph(model, dream.images, taps=["conv2"], stop_at=["conv2"])
    np.testing.assert_allclose(
        np.mean(np.square(taps["conv2"]), axis=(1, 2, 3)), dream.objective, rtol=1e-4
    )


@pytest.mark.parametrize("spec", ["caffe", "tf"])
def test_dreams_stay_in_the_models_input_range_and_display_as_rgb(spec):
    model = models.sequential()
    low, high = cv.InputRange.resolve(spec).bounds(3)
    probes = low + _images(2, models.SIZE) * (high - low)
    dream = deepdream(model, probes, "conv1", steps=3, input_range=spec)
    assert np.all(dream.images >= low - 1e-3) and np.all(dream.images <= high + 1e-3)
    assert dream.octaves == ((16, 16),)  # a 16 px model has no smaller octave
    assert dream.display().dtype == np.uint8 and dream.display().shape == (2, 16, 16, 3)


def test_a_batch_equals_each_probe_alone_and_the_seed_repeats():
    model = models.sequential(size=32)
    images = _images()
    together = deepdream(model, images, "conv2", steps=4, seed=1)
    alone = deepdream(model, images[1:2], "conv2", steps=4, seed=1)
    np.testing.assert_allclose(together.images[1], alone.images[0], atol=1e-4)
    again = deepdream(model, images, "conv2", steps=4, seed=1)
    np.testing.assert_array_equal(again.images, together.images)
    other = deepdream(model, images, "conv2", steps=4, seed=2)
    assert not np.allclose(other.images, together.images)


def test_the_dream_does_not_depend_on_the_scale_of_the_activations():
    # Deep layers of an untrained keras.applications network have objectives of 1e-23;
    # a step normalized as g / (mean|g| + eps) then stood still (MobileNetV2, 96 px: the
    # objective rose 1.00x at four of its five stages).
    images = _images()
    plain = deepdream(models.scaled_cnn(1.0), images, "conv2", steps=4)
    tiny = deepdream(models.scaled_cnn(1e-6), images, "conv2", steps=4)
    assert np.all(plain.objective > 1.5 * plain.start_objective)
    np.testing.assert_allclose(tiny.start_objective, plain.start_objective * 1e-12, rtol=1e-4)
    np.testing.assert_allclose(tiny.images, plain.images, atol=1e-3)


def test_bad_settings_say_what_is_allowed():
    with pytest.raises(ValueError, match="octaves >= 1"):
        deepdream(models.sequential(), _images(1, models.SIZE), "conv1", octaves=0)
    with pytest.raises(ValueError, match="height, width, channels"):
        deepdream(models.sequential(), _images(1, models.SIZE), "gap")

"""InputRange and to_display_rgb: the model's input scale and the one way back to RGB."""

import keras
import numpy as np
import pytest
from keras import layers

from tb_cnnvis.input_range import InputRange, to_display_rgb


def _unit_images(n=2, size=5, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("name", InputRange.NAMES)
def test_every_named_range_round_trips_display_rgb(name):
    rng = InputRange.named(name)
    unit = _unit_images()
    back = to_display_rgb(rng.from_unit(unit), rng, dtype="float32")
    np.testing.assert_allclose(back, unit, atol=1e-5)


def test_caffe_range_is_mean_subtracted_bgr():
    rng = InputRange.named("caffe")
    red = np.zeros((1, 1, 1, 3), np.float32)
    red[..., 0] = 1.0  # pure red in display RGB
    model_values = rng.from_unit(red)[0, 0, 0]
    # BGR order, ImageNet means subtracted: B = 0 - 103.939, G = 0 - 116.779, R = 255 - 123.68.
    np.testing.assert_allclose(model_values, [-103.939, -116.779, 131.32], atol=1e-3)
    assert to_display_rgb(model_values[None, None, None], rng)[0, 0, 0].tolist() == [255, 0, 0]


def test_torch_range_standardizes_each_channel():
    rng = InputRange.named("torch")
    mean_colour = np.array([[[[0.485, 0.456, 0.406]]]], np.float32)
    np.testing.assert_allclose(rng.from_unit(mean_colour), 0.0, atol=1e-6)
    np.testing.assert_allclose(
        rng.from_unit(np.ones((1, 1, 1, 3), np.float32))[0, 0, 0],
        [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
        rtol=1e-5,
    )


def test_byte_images_display_as_themselves_and_out_of_range_values_clip():
    images = np.array([[[[0.0, 127.0, 255.0], [-20.0, 300.0, 64.0]]]], np.float32)
    shown = to_display_rgb(images, (0, 255))
    assert shown.dtype == np.uint8
    assert shown[0, 0].tolist() == [[0, 127, 255], [0, 255, 64]]


def test_grey_one_channel_images_become_rgb():
    images = np.full((2, 3, 3, 1), 0.5, np.float32)
    shown = to_display_rgb(images)
    assert shown.shape == (2, 3, 3, 3)
    assert np.all(shown == 128)


def test_symmetric_range_maps_minus_one_to_black():
    shown = to_display_rgb(np.array([[[-1.0, 0.0, 1.0]]], np.float32), "tf")
    assert shown.tolist() == [[[0, 128, 255]]]


def test_resolve_defaults_to_unit_and_detects_a_leading_rescaling():
    plain = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(2, 3)])
    rescaled = keras.Sequential(
        [keras.Input((8, 8, 3)), layers.Rescaling(1 / 255.0), layers.Conv2D(2, 3)]
    )
    assert InputRange.resolve(None, plain) == InputRange(0.0, 1.0)
    assert InputRange.resolve(None, rescaled) == InputRange(0.0, 255.0)
    assert InputRange.resolve((-1, 1)) == InputRange.named("tf")
    assert InputRange.resolve("caffe").bgr is True


def test_per_channel_bounds_broadcast_and_clip():
    rng = InputRange((0.0, -1.0, 10.0), (1.0, 1.0, 20.0))
    low, high = rng.bounds(3)
    assert low.tolist() == [0.0, -1.0, 10.0] and high.tolist() == [1.0, 1.0, 20.0]
    clipped = rng.clip(np.array([[[5.0, 5.0, 5.0]]], np.float32))
    assert clipped.tolist() == [[[1.0, 1.0, 10.0]]]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: InputRange(1.0, 0.0), "high > low"),
        (lambda: InputRange((0, 0), (1, 1, 1)), "must agree"),
        (lambda: InputRange.named("imagenet"), "caffe"),
        (lambda: InputRange.resolve(3.0), "input_range must be"),
        (lambda: InputRange((0, 0), (1, 1)).bounds(3), "2 channels"),
        (lambda: to_display_rgb(np.zeros((1, 4, 4, 4))), "C = 1 or 3"),
        (lambda: to_display_rgb(np.zeros((1, 4, 4, 3)), dtype="int8"), "dtype"),
    ],
)
def test_invalid_ranges_and_images_are_rejected_with_what_is_allowed(make, message):
    with pytest.raises(ValueError, match=message):
        make()

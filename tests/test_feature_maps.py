"""feature_maps / layer_outputs: exact layer outputs, nested layers, early stop, bad input."""

import gc
import weakref

import keras
import models
import numpy as np
import pytest
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis import capture
from tb_cnnvis.algorithms.feature_maps import layer_outputs


def _images(n=2):
    return np.random.default_rng(1).normal(size=(n, models.SIZE, models.SIZE, 3)).astype("float32")


class _CountCalls(layers.Layer):
    """Identity layer that counts how often it is called (traced)."""

    calls = 0

    def call(self, x):
        _CountCalls.calls += 1
        return x


def test_feature_maps_equal_keras_submodel_output():
    model = models.sequential()
    images = _images()
    maps = cv.feature_maps(model, images, "conv2")
    expected = keras.Model(model.inputs[0], model.get_layer("conv2").output)(images).numpy()
    assert maps.dtype == np.float32 and maps.shape == (2, 8, 8, 6)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def test_feature_maps_of_a_layer_inside_a_nested_model_by_path_or_bare_name():
    model = models.nested()
    base = model.get_layer("base")
    images = _images()
    expected = keras.Model(base.inputs[0], base.get_layer("conv1").output)(images).numpy()
    np.testing.assert_allclose(cv.feature_maps(model, images, "base/conv1"), expected, atol=1e-6)
    np.testing.assert_allclose(cv.feature_maps(model, images, "conv1"), expected, atol=1e-6)


def test_a_single_image_is_a_batch_of_one():
    model = models.functional()
    images = _images()
    single = cv.feature_maps(model, images[0], "add")
    assert single.shape == (1, 16, 16, 4)
    np.testing.assert_allclose(single[0], cv.feature_maps(model, images, "add")[0], atol=1e-6)


def test_layer_outputs_returns_every_layer_in_the_order_given():
    model = models.relu_layers()
    images = _images()
    outputs = layer_outputs(model, images, ["relu2", "conv1", "relu2"])
    assert list(outputs) == ["relu2", "conv1"]
    np.testing.assert_allclose(outputs["conv1"], cv.feature_maps(model, images, "conv1"))
    assert outputs["relu2"].min() >= 0 and outputs["conv1"].min() < 0


def test_layers_after_the_requested_one_are_not_computed():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Conv2D(2, 3, name="conv"),
            _CountCalls(name="after"),
            layers.Flatten(),
        ]
    )
    _CountCalls.calls = 0
    assert cv.feature_maps(model, np.ones((1, 8, 8, 3), "float32"), "conv").shape == (1, 6, 6, 2)
    assert _CountCalls.calls == 0


def test_second_call_with_the_same_shapes_does_not_retrace():
    model = models.nested()
    images = _images()
    cv.feature_maps(model, images, "base/conv2")
    traces = capture.total_traces(model)
    cv.feature_maps(model, images + 1.0, "base/conv2")
    assert capture.total_traces(model) == traces == 1


def test_the_cache_does_not_keep_the_model_alive():
    model = models.sequential()
    cv.feature_maps(model, _images(), "conv1")
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_unknown_layer_is_named_and_usable_layers_listed():
    with pytest.raises(ValueError, match=r"'conv7' was not found.*\['conv1', 'pool1', 'conv2'\]"):
        cv.feature_maps(models.sequential(), _images(), "conv7")


def test_dense_layer_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"'head' \(Dense\) has output shape \(3,\)"):
        cv.feature_maps(models.sequential(), _images(), "head")


def test_wrong_image_shape_names_expected_and_received():
    with pytest.raises(ValueError, match=r"\(N, 16, 16, 3\).*got shape \(2, 16, 16, 4\)"):
        cv.feature_maps(models.sequential(), np.zeros((2, 16, 16, 4), "float32"), "conv1")


def test_non_finite_outputs_become_zeros_with_a_warning():
    model = models.relu_layers()  # conv1 is linear: an inf pixel gives +-inf or NaN
    images = _images()
    clean = cv.feature_maps(model, images, "conv1")
    images[1, 3, 3, 0] = np.inf
    with pytest.warns(RuntimeWarning, match=r"conv1.*images \[1\]"):
        maps = cv.feature_maps(model, images, "conv1")
    np.testing.assert_allclose(maps[0], clean[0], atol=1e-6)
    assert not maps[1].any()

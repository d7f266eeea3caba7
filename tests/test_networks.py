"""Networks users train today: the Keras backend, fully-convolutional inputs, no ReLUs."""

import keras
import models
import numpy as np
import pytest

import tb_cnnvis as cv
from tb_cnnvis import CnnVisCallback

IMAGES = np.random.default_rng(5).random((2, models.SIZE, models.SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_keras_backends_are_refused_first_with_the_backend_named(monkeypatch, backend):
    model = models.sequential()
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    expected = f"computes with TensorFlow, but Keras runs on the '{backend}' backend"
    calls = [
        lambda: CnnVisCallback("unused", IMAGES).set_model(model),
        lambda: cv.conv_layers(model),
        lambda: cv.feature_maps(model, IMAGES, "conv1"),
        lambda: cv.grad_cam(model, IMAGES),
        lambda: cv.backprop(model, IMAGES, "conv2"),
        lambda: cv.filter_patterns(model, "conv1", filters=[0], steps=1),
        lambda: cv.deepdream(model, IMAGES, "conv1"),
        lambda: cv.attribution(model, IMAGES, "smoothgrad"),
        lambda: cv.receptive_field(model, "conv2"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=expected) as error:
            call()
        assert "KERAS_BACKEND=tensorflow" in str(error.value)

"""A real architecture: keras.applications.VGG16 (random weights) through every function.

One 224x224 image. Score-CAM is limited to 8 channels (the full last layer would be 512
forward passes of VGG16).
"""

import keras
import numpy as np

import tb_cnnvis as cv
from tb_cnnvis.algorithms import backprop, cam


def test_vgg16_works_with_every_function():
    model = keras.applications.VGG16(weights=None)
    image = np.random.default_rng(5).uniform(-120, 130, size=(224, 224, 3)).astype(np.float32)
    assert cv.conv_layers(model)[-1] == "block5_pool" and len(cv.conv_layers(model)) == 18

    maps = cv.feature_maps(model, image, "block3_conv3")
    assert maps.shape == (1, 56, 56, 256) and maps.dtype == np.float32 and maps.min() >= 0

    for method in cam.METHODS:
        details = cam.cam_details(model, image, method=method, max_channels=8)
        assert details.layer == "block5_pool" and details.maps.shape == (1, 224, 224)
        assert details.maps.dtype == np.float32 and np.isfinite(details.maps).all()
        assert details.maps.min() >= 0.0 and details.maps.max() <= 1.0
        assert 0.0 < details.probability[0] <= 1.0
        assert details.class_index[0] == details.predicted[0]

    for rule in backprop.RULES:
        details = backprop.projection_details(model, image, "block5_conv3", rule=rule)
        assert details.projections.shape == (1, 224, 224, 3)
        assert np.isfinite(details.projections).all() and np.abs(details.projections).max() > 0
        assert 0 <= details.channel[0] < 512 and (details.position[0] >= 0).all()
        assert (details.position[0] < 14).all()

    guided = cv.guided_grad_cam(model, image, "block5_conv3", class_index=7)
    assert guided.shape == (1, 224, 224, 3) and np.isfinite(guided).all()

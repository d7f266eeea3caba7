"""LayerCAM, HiResCAM, XGrad-CAM and Eigen-CAM against numpy on the tape's own evidence.

The model's conv base and head are separate models here, so the activations of the base's
output and the gradients of a class logit with respect to them come from a plain
``tf.GradientTape`` over ``head(base(x))``, independently of ``capture``. The head reads
the activations through a convolution and a dense layer (no global pooling), so that the
gradients vary over space and the element-wise methods differ from Grad-CAM.
"""

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis.algorithms import cam, cam_methods

SIZE = 8


def _split_model():
    keras.utils.set_random_seed(3)
    base = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)),
         layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
         layers.Conv2D(5, 3, padding="same", activation="relu", name="conv2")],
        name="base",
    )  # fmt: skip
    head = keras.Sequential(
        [keras.Input((SIZE, SIZE, 5)), layers.Conv2D(3, 3, activation="relu", name="mix"),
         layers.Flatten(), layers.Dense(3, name="logits")],
        name="head",
    )  # fmt: skip
    x = keras.Input((SIZE, SIZE, 3))
    return keras.Model(x, layers.Softmax()(head(base(x))), name="split")


@pytest.fixture(scope="module")
def split():
    model = _split_model()
    images = np.random.default_rng(7).random((3, SIZE, SIZE, 3)).astype(np.float32)
    return model, images


def _evidence(model, images, classes):
    """Activations of the base's output and d logit / d activations, from a plain tape."""
    acts = tf.constant(model.get_layer("base")(images))
    with tf.GradientTape() as tape:
        tape.watch(acts)
        logits = model.get_layer("head")(acts)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    return acts.numpy().astype(np.float64), tape.gradient(score, acts).numpy()


def _finish(raw):
    """What the template does to every raw map: ReLU, bilinear upsampling, scale to [0, 1]."""
    up = tf.image.resize(np.maximum(raw, 0)[..., None].astype(np.float32), (SIZE, SIZE))
    up = np.maximum(up.numpy()[..., 0], 0)
    top = up.max(axis=(1, 2))
    return up / np.where(top > 0, top, 1)[:, None, None], top


def _check(model, images, method, raw, classes):
    details = cam.cam_details(model, images, "base/conv2", classes, method=method)
    maps, top = _finish(raw)
    assert top.min() > 0, "a hand-computed map is all zero: the check would be empty"
    np.testing.assert_allclose(details.cam_max, top, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(details.maps, maps, atol=1e-5)
    return details


def test_layercam_is_relu_of_positive_gradients_times_activations(split):
    model, images = split
    classes = np.array([0, 1, 2])
    acts, grads = _evidence(model, images, classes)
    raw = (np.maximum(grads, 0) * acts).sum(axis=-1)
    _check(model, images, "layercam", raw, classes)


def test_hirescam_is_gradients_times_activations_and_differs_from_grad_cam_here(split):
    model, images = split
    classes = np.array([2, 0, 1])
    acts, grads = _evidence(model, images, classes)
    details = _check(model, images, "hirescam", (grads * acts).sum(axis=-1), classes)
    grad_cam = cv.grad_cam(model, images, "base/conv2", classes)
    assert np.abs(details.maps - grad_cam).max() > 0.05  # the head is not GAP + dense


def test_xgradcam_weights_are_activation_weighted_gradient_sums(split):
    model, images = split
    classes = np.array([1, 1, 0])
    acts, grads = _evidence(model, images, classes)
    weights = (grads * acts).sum(axis=(1, 2)) / acts.sum(axis=(1, 2))
    _check(model, images, "xgradcam", np.einsum("nhwk,nk->nhw", acts, weights), classes)


def test_eigencam_projects_on_the_first_right_singular_vector_whatever_the_class(split):
    model, images = split
    acts, _ = _evidence(model, images, np.zeros(3, np.int32))
    flat = acts.reshape(3, SIZE * SIZE, -1)
    raw = []
    for matrix in flat:  # not centred, as in the paper
        vector = np.linalg.svd(matrix)[2][0]
        projection = matrix @ vector
        raw.append(projection if projection.sum() > 0 else -projection)
    raw = np.stack(raw).reshape(3, SIZE, SIZE)
    for classes in ([0, 0, 0], [2, 1, 0]):
        _check(model, images, "eigencam", raw, np.array(classes))


def test_eigencam_sign_makes_the_projection_sum_positive():
    # A rank-one (h*w = 4, K = 2) activation u v^T: its first right singular vector is
    # +-v / |v| and the projection +-u |v|; the sign rule picks the positive one.
    acts = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0], [3.0, 6.0]]).reshape(1, 2, 2, 2)
    evidence = cam_methods.Evidence(None, None, acts, np.zeros_like(acts), None, "x", None)
    expected = np.array([1.0, 2.0, 0.0, 3.0]).reshape(1, 2, 2) * np.sqrt(5.0)
    np.testing.assert_allclose(cam_methods.MAPS["eigencam"](evidence), expected, atol=1e-12)
    np.testing.assert_allclose(cam_methods.MAPS["eigencam"](evidence._replace(acts=-acts)),
                               expected, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("builder", ["sequential", "functional", "nested", "relu_layers"])
def test_hirescam_equals_grad_cam_on_a_global_average_pooling_and_dense_head(builder):
    # Draelos & Carin 2020: with GAP + dense, d logit / d A_k is the same at every pixel,
    # so sum_k g_k * A_k = sum_k mean(g_k) A_k.
    model = models.BUILDERS[builder]()
    images = np.random.default_rng(1).normal(size=(4, models.SIZE, models.SIZE, 3))
    images = images.astype(np.float32)
    grad_cam = cam.cam_details(model, images, class_index=[0, 1, 2, 0])
    hires = cam.cam_details(model, images, class_index=[0, 1, 2, 0], method="hirescam")
    assert grad_cam.cam_max.min() > 0
    np.testing.assert_allclose(hires.cam_max, grad_cam.cam_max, rtol=1e-4)
    np.testing.assert_allclose(hires.maps, grad_cam.maps, atol=1e-5)

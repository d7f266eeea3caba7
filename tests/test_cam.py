"""Grad-CAM, Grad-CAM++ and Score-CAM: hand-computed maps, class handling, bad input.

The methods added later (LayerCAM, HiResCAM, XGrad-CAM, Eigen-CAM) are checked against
the tape's own activations and gradients in ``test_cam_methods.py``.
"""

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis.algorithms import cam, cam_methods

# One 4x4 grey image; conv channel 0 is relu(x), channel 1 is relu(-x).
IMAGE = np.array(
    [[1.0, -2.0, 3.0, 0.0], [-1.0, 2.0, -4.0, 0.5], [0.0, 1.5, -0.5, 2.5], [-3.0, 0.25, 1.0, -1.0]],
    np.float32,
)[..., None]
HEAD = np.array([[1.0, -1.0], [-2.0, 3.0]], np.float32)  # HEAD[channel, class]
BIAS = np.array([0.5, 0.0], np.float32)


def _tiny(activation="softmax"):
    """conv (1x1, kernel [1, -1], ReLU) -> global average -> dense head; weights set by hand."""
    x = keras.Input((4, 4, 1))
    a = layers.Conv2D(2, 1, use_bias=False, activation="relu", name="conv")(x)
    y = layers.Dense(2, activation=activation, name="head")(layers.GlobalAveragePooling2D()(a))
    model = keras.Model(x, y, name="tiny")
    model.get_layer("conv").set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 2)])
    model.get_layer("head").set_weights([HEAD, BIAS])
    return model


def _acts(image=IMAGE):
    return np.stack([np.maximum(image[..., 0], 0), np.maximum(-image[..., 0], 0)], axis=-1)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _logits(image):
    return _acts(image).mean(axis=(0, 1)) @ HEAD + BIAS


def _images(n=2):
    return np.random.default_rng(2).normal(size=(n, models.SIZE, models.SIZE, 3)).astype("float32")


def test_grad_cam_matches_the_hand_computed_map_using_the_logit():
    # d logit_0 / d A = HEAD[:, 0] / 16 everywhere, so the weights are [1, -2] / 16 and
    # the map is relu(relu(x) - 2 relu(-x)) / 16 = relu(x) / 16. (Through the softmax the
    # gradient would be scaled by p (1 - p), and cam_max would differ.)
    details = cam.cam_details(_tiny(), IMAGE, "conv", class_index=0)
    positive = np.maximum(IMAGE[..., 0], 0)
    np.testing.assert_allclose(details.maps[0], positive / 3.0, atol=1e-6)
    np.testing.assert_allclose(details.cam_max, [3.0 / 16], rtol=1e-6)
    probabilities = _softmax(_logits(IMAGE))
    assert details.class_index.tolist() == [0]
    assert details.predicted.tolist() == [int(np.argmax(probabilities))]
    np.testing.assert_allclose(details.target_probability, [probabilities[0]], rtol=1e-5)
    np.testing.assert_allclose(details.probability, [probabilities.max()], rtol=1e-5)


def test_grad_cam_of_another_class_and_the_predicted_class_by_default():
    # Class 1: weights [-1, 3] / 16, map relu(-relu(x) + 3 relu(-x)) / 16 = 3 relu(-x) / 16.
    model = _tiny()
    maps = cv.grad_cam(model, IMAGE, "conv", class_index=1)
    np.testing.assert_allclose(maps[0], np.maximum(-IMAGE[..., 0], 0) / 4.0, atol=1e-6)
    predicted = int(np.argmax(_logits(IMAGE)))
    np.testing.assert_allclose(
        cv.grad_cam(model, IMAGE, "conv"), cv.grad_cam(model, IMAGE, "conv", predicted)
    )


def test_grad_cam_plus_plus_matches_the_paper_formula():
    # Constant gradients g_k = HEAD[k, 0] / 16: alpha_k = g^2 / (2 g^2 + sum(A_k) g^3),
    # w_k = sum_ij alpha_k relu(g_k) (Chattopadhyay et al. 2018, eq. 19).
    acts = _acts()
    g = HEAD[:, 0] / 16
    alpha = g**2 / (2 * g**2 + acts.sum(axis=(0, 1)) * g**3)
    weights = 16 * alpha * np.maximum(g, 0)
    raw = np.maximum(acts @ weights, 0)
    details = cam.cam_details(_tiny(), IMAGE, "conv", 0, method="gradcam++")
    np.testing.assert_allclose(details.cam_max, [raw.max()], rtol=1e-5)
    np.testing.assert_allclose(details.maps[0], raw / raw.max(), atol=1e-6)


def test_score_cam_matches_masked_forward_passes():
    # Wang et al. 2020: mask_k = minmax(A_k), weights = softmax_k(logit_c(x * mask_k)).
    acts = _acts()
    masks = [(a - a.min()) / (a.max() - a.min()) for a in np.moveaxis(acts, -1, 0)]
    scores = np.array([_logits(IMAGE * m[..., None])[1] for m in masks])
    raw = np.maximum(acts @ _softmax(scores), 0)
    details = cam.cam_details(_tiny(), IMAGE, "conv", 1, method="scorecam")
    np.testing.assert_allclose(details.cam_max, [raw.max()], rtol=1e-5)
    np.testing.assert_allclose(details.maps[0], raw / raw.max(), atol=1e-6)


@pytest.mark.parametrize(
    "method, image, class_index",
    [(m, np.zeros_like(IMAGE), 0) for m in cam.METHODS]
    # All-positive image: relu(-x) = 0 and class 1 weighs relu(x) negatively.
    + [(m, np.abs(IMAGE) + 0.5, 1) for m in ("gradcam", "gradcam++")],
)
def test_an_all_zero_map_stays_zero_without_nan(method, image, class_index):
    details = cam.cam_details(_tiny(), image, "conv", class_index, method=method)
    assert details.cam_max.tolist() == [0.0]
    assert np.isfinite(details.maps).all() and not details.maps.any()


def test_score_cam_does_not_depend_on_the_batch_size(monkeypatch):
    model = models.sequential()
    images = _images()
    whole = cv.grad_cam(model, images, method="scorecam")
    monkeypatch.setattr(cam_methods, "SCORE_CAM_BATCH", 5)  # 12 masked images: 5 + 5 + 2 (padded)
    np.testing.assert_allclose(cv.grad_cam(model, images, method="scorecam"), whole, atol=1e-5)


def test_score_cam_with_one_channel_shows_the_most_varied_channel():
    model = models.sequential()
    images = _images(1)
    acts = cv.feature_maps(model, images, "conv2")
    k = int(np.argmax(acts.var(axis=(1, 2))[0]))
    expected = tf.image.resize(acts[..., k : k + 1], (16, 16)).numpy()[0, ..., 0]
    maps = cv.grad_cam(model, images, "conv2", method="scorecam", max_channels=1)
    np.testing.assert_allclose(maps[0], expected / expected.max(), atol=1e-5)


def test_default_layer_is_the_last_with_a_4d_output_and_maps_have_input_size():
    details = cam.cam_details(models.relu_layers(), _images(3))
    assert details.layer == "relu2" and details.maps.shape == (3, 16, 16)
    assert np.allclose(details.maps.max(axis=(1, 2)), 1.0)


def test_class_index_per_image():
    model = _tiny()
    images = np.stack([IMAGE, -IMAGE])
    details = cam.cam_details(model, images, "conv", class_index=[1, 0])
    assert details.class_index.tolist() == [1, 0]
    np.testing.assert_allclose(details.maps[0], cv.grad_cam(model, IMAGE, "conv", 1)[0])
    np.testing.assert_allclose(details.maps[1], cv.grad_cam(model, -IMAGE, "conv", 0)[0])


def test_probabilities_are_the_outputs_or_the_softmax_of_logits():
    images = _images()
    functional = models.functional()
    details = cam.cam_details(functional, images)
    expected = _softmax(functional(images).numpy())
    np.testing.assert_allclose(details.probability, expected.max(axis=1), rtol=1e-5)
    sequential = models.sequential()
    details = cam.cam_details(sequential, images, class_index=2)
    np.testing.assert_allclose(details.target_probability, sequential(images)[:, 2], rtol=1e-5)
    sigmoid = _tiny("sigmoid")
    outputs = sigmoid(IMAGE[None]).numpy()
    details = cam.cam_details(sigmoid, IMAGE, "conv", class_index=1)
    np.testing.assert_allclose(details.target_probability, outputs[:, 1], rtol=1e-5)


@pytest.mark.parametrize(
    "class_index, message",
    [
        (2, r"class_index \[2\] out of range: expected 0 <= class_index < 2"),
        (-1, r"class_index \[-1\] out of range"),
        ([0], r"None, an int, or 2 ints"),
        (0.5, r"None, an int, or 2 ints"),
    ],
)
def test_bad_class_index(class_index, message):
    with pytest.raises(ValueError, match=message):
        cv.grad_cam(_tiny(), np.stack([IMAGE, IMAGE]), "conv", class_index=class_index)


def test_unknown_method_lists_the_allowed_ones():
    known = (
        r"\['gradcam', 'gradcam\+\+', 'scorecam', 'layercam', 'hirescam', 'xgradcam', 'eigencam'\]"
    )
    with pytest.raises(ValueError, match=r"'ablationcam'.*" + known):
        cv.grad_cam(_tiny(), IMAGE, method="ablationcam")


def test_bad_layers_and_images_and_models_are_refused():
    with pytest.raises(ValueError, match=r"'conv9' was not found.*\['conv'\]"):
        cv.grad_cam(_tiny(), IMAGE, "conv9")
    with pytest.raises(ValueError, match=r"'head' \(Dense\) has output shape \(2,\)"):
        cv.grad_cam(_tiny(), IMAGE, "head")
    with pytest.raises(ValueError, match=r"\(N, 4, 4, 1\).*got shape \(4, 4, 3\)"):
        cv.grad_cam(_tiny(), np.zeros((4, 4, 3), "float32"))
    sequence = keras.Sequential(
        [keras.Input((4, 4, 1)), layers.Conv2D(2, 1, name="c"), layers.Reshape((16, 2))]
    )
    with pytest.raises(ValueError, match=r"\(None, 16, 2\) is an output that is not a class.*"
                       r"callable target.*Eigen-CAM"):  # fmt: skip
        cv.grad_cam(sequence, IMAGE)
    with pytest.raises(ValueError, match="max_channels"):
        cv.grad_cam(_tiny(), IMAGE, method="scorecam", max_channels=0)


@pytest.mark.parametrize("method", cam.METHODS)
def test_non_finite_outputs_give_zero_maps_with_a_warning(method):
    broken = IMAGE.copy()
    broken[0, 0, 0] = np.inf  # activations and logits become +-inf, the map inf or NaN
    clean = cam.cam_details(_tiny(), IMAGE, "conv", 0, method=method)
    with pytest.warns(RuntimeWarning, match=r"images \[1\]"):
        details = cam.cam_details(_tiny(), np.stack([IMAGE, broken]), "conv", 0, method=method)
    np.testing.assert_allclose(details.maps[0], clean.maps[0], atol=1e-6)
    assert not details.maps[1].any() and details.cam_max[1] == 0.0


def test_the_compiled_gradient_differentiates_only_the_operations_after_the_layer():
    import gc

    from tensorflow.python.framework import func_graph

    def graphs():
        return {id(g): g for g in gc.get_objects() if isinstance(g, func_graph.FuncGraph)}

    model, before = models.sequential(), graphs()
    maps = cv.grad_cam(model, _images(), layer="conv2", class_index=[0, 1])
    built = [g for key, g in graphs().items() if key not in before]
    ops = {op.type for graph in built for op in graph.get_operations()}
    # The head's backward (global average pooling, dense) is there; no convolution's.
    assert "MatMul" in ops and maps.shape == (2, models.SIZE, models.SIZE)
    assert not {op for op in ops if op.startswith("Conv2DBackprop") or op == "ReluGrad"}

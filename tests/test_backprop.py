"""Gradient / deconvnet / guided projections and Guided Grad-CAM: exact values, bad input."""

import keras
import models
import numpy as np
import pytest
import tensorflow as tf

import tb_cnnvis as cv
from tb_cnnvis import capture
from tb_cnnvis.algorithms import backprop


def _images(n=2):
    return np.random.default_rng(3).normal(size=(n, models.SIZE, models.SIZE, 3)).astype("float32")


def _relu_gradient(relu, x, dy):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = relu(x)
    return tape.gradient(y, x, output_gradients=tf.constant(dy)).numpy()


def _compiled_relu_gradient(relu, x, dy, symbolic):
    """The gradient inside a compiled function: by a tape, or by ``tf.gradients`` (the
    registered gradient a symbolic differentiation of a graph looks up)."""

    @tf.function
    def gradient(x, dy):
        if symbolic:
            return tf.gradients(relu(x), x, grad_ys=dy)[0]
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = relu(x)
        return tape.gradient(y, x, output_gradients=dy)

    return gradient(tf.constant(x), tf.constant(dy)).numpy()


@pytest.mark.parametrize("where", ["eager", "tape in a graph", "symbolic in a graph"])
def test_relu_rules_pass_gradients_as_the_papers_define(where):
    from tb_cnnvis.algorithms.fv_objectives import rescue_relu

    def grad(relu, x, dy):
        if where == "eager":
            return _relu_gradient(relu, x, dy).tolist()
        return _compiled_relu_gradient(relu, x, dy, where.startswith("symbolic")).tolist()

    x, dy = [-1.0, 2.0, 3.0, 0.0], [5.0, -1.0, 2.0, 4.0]
    assert grad(backprop.deconvnet_relu, x, dy) == [5.0, 0.0, 2.0, 4.0]
    assert grad(backprop.guided_relu, x, dy) == [0.0, 0.0, 2.0, 0.0]
    assert grad(tf.nn.relu, x, dy) == [0.0, -1.0, 2.0, 0.0]
    assert backprop.deconvnet_relu(tf.constant(x)).numpy().tolist() == [0.0, 2.0, 3.0, 0.0]
    # Rescue (rows are images): a row whose plain gradient is zero also passes dy > 0.
    x2, dy2 = [[-1.0, -2.0], [-1.0, 3.0]], [[4.0, -1.0], [4.0, 2.0]]
    assert grad(rescue_relu(tf.constant(True)), x2, dy2) == [[4.0, 0.0], [0.0, 2.0]]
    assert grad(rescue_relu(tf.constant(False)), x2, dy2) == [[0.0, 0.0], [0.0, 2.0]]


def test_the_unit_is_the_strongest_activation_of_the_strongest_channel():
    model = models.sequential()
    images = _images()
    maps = cv.feature_maps(model, images, "conv2")
    details = backprop.projection_details(model, images, "conv2")
    peaks = maps.max(axis=(1, 2))
    assert details.channel.tolist() == peaks.argmax(axis=1).tolist()
    np.testing.assert_allclose(details.activation, peaks.max(axis=1), rtol=1e-6)
    for n, (y, x) in enumerate(details.position):
        assert maps[n, y, x, details.channel[n]] == pytest.approx(details.activation[n])
    fixed = backprop.projection_details(model, images, "conv2", channel=[4, 1])
    assert fixed.channel.tolist() == [4, 1]
    np.testing.assert_allclose(fixed.activation, maps[:, :, :, [4, 1]].max(axis=(1, 2)).diagonal())


def test_gradient_rule_equals_a_plain_gradient_tape_gradient():
    model = models.sequential()
    images = _images()
    details = backprop.projection_details(model, images, "conv2", rule="gradient")
    submodel = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        acts = submodel(x)
        target = sum(
            acts[n, y, w, c] for n, ((y, w), c) in enumerate(zip(details.position, details.channel))
        )
    expected = tape.gradient(target, x).numpy()
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(details.projections, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rule", backprop.RULES)
def test_projections_stay_inside_the_receptive_field_of_the_unit(rule):
    # conv2 (3x3) on pool1 (2x2) on conv1 (3x3): unit (y, x) sees input rows 2y-3 .. 2y+4.
    model = models.sequential()
    details = backprop.projection_details(model, _images(), "conv2", rule=rule)
    for projection, (y, x) in zip(details.projections, details.position):
        inside = np.zeros(projection.shape[:2], bool)
        inside[max(2 * y - 3, 0) : 2 * y + 5, max(2 * x - 3, 0) : 2 * x + 5] = True
        magnitude = np.abs(projection).sum(axis=-1)
        assert magnitude[inside].max() > 0
        assert not magnitude[~inside].any()


@pytest.mark.parametrize("rule", backprop.RULES)
def test_projection_of_a_first_layer_unit_is_its_kernel(rule):
    model = models.sequential()
    kernel = model.get_layer("conv1").get_weights()[0]  # (3, 3, 3, 4)
    details = backprop.projection_details(model, _images(), "conv1", rule=rule)
    for projection, (y, x), c in zip(details.projections, details.position, details.channel):
        expected = np.zeros_like(projection)
        padded = np.pad(expected, ((1, 1), (1, 1), (0, 0)))
        padded[y : y + 3, x : x + 3] = kernel[..., c]
        np.testing.assert_allclose(projection, padded[1:-1, 1:-1], atol=1e-6)


@pytest.mark.parametrize("relu", ["activation", "layer"])
def test_rules_differ_once_a_relu_lies_below_the_unit(relu):
    # No pooling: the first ReLU sees negative inputs with positive and negative gradients.
    layer = keras.layers.ReLU if relu == "layer" else lambda: keras.layers.Activation("relu")
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same", name="conv1"),
            layer(),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2"),
        ]
    )
    images = _images()[:, :8, :8]
    gradient, deconvnet, guided = (
        cv.backprop(model, images, "conv2", 0, r) for r in backprop.RULES
    )
    assert not np.allclose(gradient, deconvnet)
    assert not np.allclose(deconvnet, guided)
    assert not np.allclose(gradient, guided)


def test_guided_grad_cam_is_guided_backprop_of_the_class_times_grad_cam():
    model = models.nested()
    images = _images()
    maps = cv.grad_cam(model, images, class_index=[0, 2])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits, _ = capture.run_graph(model, x, relu_fn=backprop.guided_relu, logits=True)
        score = logits[0, 0] + logits[1, 2]
    expected = tape.gradient(score, x).numpy() * maps[..., None]
    result = cv.guided_grad_cam(model, images, class_index=[0, 2])
    assert result.shape == (2, 16, 16, 3) and result.dtype == np.float32
    assert np.abs(result).max() > 0
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-7)


def test_the_users_model_is_left_as_it_was():
    model = models.sequential()
    images = _images()
    before = model(images).numpy()
    for rule in backprop.RULES:
        cv.backprop(model, images, "conv2", rule=rule)
    cv.guided_grad_cam(model, images)
    assert model.get_layer("conv1").activation is keras.activations.relu
    assert model.get_layer("head").activation is keras.activations.softmax
    np.testing.assert_allclose(model(images).numpy(), before)


def test_bad_arguments_are_refused_with_what_is_allowed():
    model, images = models.sequential(), _images()
    with pytest.raises(ValueError, match=r"'saliency'.*\['gradient', 'deconvnet', 'guided'\]"):
        cv.backprop(model, images, "conv2", rule="saliency")
    with pytest.raises(ValueError, match=r"channel \[6\] out of range: expected 0 <= channel < 6"):
        cv.backprop(model, images, "conv2", channel=6)
    with pytest.raises(ValueError, match=r"channel must be None, an int, or 2 ints"):
        cv.backprop(model, images, "conv2", channel=[1, 2, 3])
    with pytest.raises(ValueError, match=r"'head' \(Dense\) has output shape"):
        cv.backprop(model, images, "head")
    with pytest.raises(ValueError, match=r"'nope' was not found.*\['conv1', 'pool1', 'conv2'\]"):
        cv.backprop(model, images, "nope")
    with pytest.raises(ValueError, match=r"\(N, 16, 16, 3\).*got shape \(2, 8, 8, 3\)"):
        cv.backprop(model, images[:, :8, :8], "conv2")
    with pytest.raises(ValueError, match=r"class_index \[3\] out of range"):
        cv.guided_grad_cam(model, images, class_index=3)


@pytest.mark.parametrize("rule", backprop.RULES)
def test_non_finite_projections_become_zeros_with_a_warning(rule):
    model = models.relu_layers()
    images = _images()
    clean = cv.backprop(model, images, "conv1", channel=0, rule=rule)
    images[1, 3, 3, 0] = np.inf
    with pytest.warns(RuntimeWarning, match=r"images \[1\]"):
        projections = cv.backprop(model, images, "conv1", channel=0, rule=rule)
    np.testing.assert_allclose(projections[0], clean[0], atol=1e-6)
    assert not projections[1].any()

"""Targets: each head's maps equal a textbook Grad-CAM of the right score, computed by hand.

The models end in a conv layer ``conv`` (ReLU), global average pooling and a dense head, so
the textbook Grad-CAM has a closed form: the score ``s = w . GAP(A) + b`` has gradient
``w_k / (h * w)`` at every position of channel ``k``, the Grad-CAM weights are those, and
the map is ``ReLU(sum_k w_k A_k)`` (times a positive constant that the scaling to [0, 1]
removes). A negated score (a binary head's class 0, ``Regression(-1)``) flips the sign
inside the ReLU: the map lights up where the positive score's map is dark.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis import heads, targets
from tb_cnnvis.algorithms import attribution, cam, faithfulness

SIZE = 12


def _images(count=4, seed=0):
    return np.random.default_rng(seed).random((count, SIZE, SIZE, 3)).astype("float32")


def _gap_model(units, activation=None, loss=None, seed=1):
    """conv (ReLU) -> GAP -> Dense(units, activation), with seeded weights."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.Conv2D(6, 3, activation="relu", padding="same", name="conv"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(units, activation=activation, name="head"),
        ]
    )
    if loss is not None:
        model.compile("sgd", loss)
    return model


def _textbook(model, images, weights):
    """ReLU(sum_k weights_k A_k) upsampled bilinearly and scaled to [0, 1] per image."""
    acts = keras.Model(model.inputs, model.get_layer("conv").output)(images).numpy()
    raw = np.maximum(np.einsum("nhwk,k->nhw", acts, weights), 0.0)
    up = np.maximum(tf.image.resize(raw[..., None], images.shape[1:3]).numpy()[..., 0], 0.0)
    top = up.max(axis=(1, 2), keepdims=True)
    return up / np.where(top > 0, top, 1.0)


def _correlation(a, b):
    return np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1]


def _kernel(model, column=0):
    return model.get_layer("head").get_weights()[0][:, column]


def test_heads_are_read_from_shape_activation_and_loss():
    assert heads.head_of(_gap_model(1, "sigmoid")).kind == "binary"
    logit = _gap_model(1, None, keras.losses.BinaryCrossentropy(from_logits=True))
    assert heads.head_of(logit).kind == "binary"  # the Keras tutorial's cats vs dogs head
    assert heads.head_of(_gap_model(1, None, "mse")).kind == "regression"
    assert heads.head_of(_gap_model(1)).kind == "regression"  # one linear unit, no loss
    assert heads.head_of(_gap_model(3, "sigmoid")).kind == "multilabel"
    assert heads.head_of(_gap_model(3, "softmax")).kind == "softmax"
    assert heads.head_of(_gap_model(3, None, "mse")).kind == "regression"
    segmenter = keras.Sequential([keras.Input((SIZE, SIZE, 3)), layers.Conv2D(4, 1)])
    assert heads.head_of(segmenter) == heads.Head("segmentation", 4, (SIZE, SIZE, 4), "linear",
                                                  heads.head_of(segmenter).name)  # fmt: skip


@pytest.mark.parametrize("activation", ["sigmoid", None])
def test_a_binary_head_explains_class_1_by_its_logit_and_class_0_by_its_negation(activation):
    model = _gap_model(1, activation, "binary_crossentropy")
    images = _images()
    w = _kernel(model)
    one = cam.cam_details(model, images, "conv", class_index=1, class_names=["cat", "dog"])
    zero = cam.cam_details(model, images, "conv", class_index=0, class_names=["cat", "dog"])
    np.testing.assert_allclose(one.maps, _textbook(model, images, w), atol=1e-5)
    np.testing.assert_allclose(zero.maps, _textbook(model, images, -w), atol=1e-5)
    assert zero.captions[0] == "class 0 (cat): negated logit"
    assert one.captions[0] == "class 1 (dog): logit"
    p = keras.ops.sigmoid(_logit(model, images)).numpy() if activation is None else None
    p = model(images).numpy()[:, 0] if activation == "sigmoid" else p
    np.testing.assert_allclose(one.target_probability, p, rtol=1e-5)
    np.testing.assert_allclose(zero.target_probability, 1 - p, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(one.predicted, (p > 0.5).astype(int))
    # The default explains each image's own prediction.
    default = cam.cam_details(model, images, "conv")
    np.testing.assert_array_equal(default.class_index, (p > 0.5).astype(int))
    # Class(i) on a one-unit head is the two-class model the user sees.
    np.testing.assert_allclose(cv.grad_cam(model, images, "conv", target=targets.Class(0)),
                               zero.maps, atol=1e-6)  # fmt: skip


def _logit(model, images):
    features = keras.Model(model.inputs, model.get_layer("gap").output)(images).numpy()
    kernel, bias = model.get_layer("head").get_weights()
    return features @ kernel[:, 0] + bias[0]


def test_a_multi_label_head_explains_each_label_by_its_own_logit_and_sigmoid():
    model = _gap_model(3, "sigmoid")
    images = _images()
    details = cam.cam_details(model, images, "conv", class_index=2)
    np.testing.assert_allclose(details.maps, _textbook(model, images, _kernel(model, 2)),
                               atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(details.target_probability, model(images).numpy()[:, 2],
                               rtol=1e-5)  # fmt: skip
    assert details.head == "multilabel"


@pytest.mark.parametrize("sign", [1, -1])
def test_a_regression_is_explained_raised_or_lowered(sign):
    model = _gap_model(1, None, "mse")
    images = _images()
    details = cam.cam_details(model, images, "conv", target=targets.Regression(sign))
    expected = _textbook(model, images, sign * _kernel(model))
    assert _correlation(details.maps, expected) >= 0.99
    np.testing.assert_allclose(details.maps, expected, atol=1e-5)
    np.testing.assert_allclose(details.value, model(images).numpy()[:, 0], rtol=1e-5)
    assert details.captions[0] == ("regression: raise" if sign > 0 else "regression: lower")
    assert np.isnan(details.target_probability).all() and (details.class_index == -1).all()
    if sign > 0:  # the default target of a regression head
        np.testing.assert_allclose(cv.grad_cam(model, images, "conv"), details.maps, atol=1e-6)


def _segmenter(classes=3, seed=2):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.Conv2D(5, 3, activation="relu", padding="same", name="conv"),
            layers.Conv2D(classes, 1, activation="softmax", name="logits"),
        ]
    )


def _seg_textbook(model, images, class_index, mask):
    """Grad-CAM of sum over ``mask`` of class logits, by the chain rule through the 1x1 conv."""
    acts = keras.Model(model.inputs, model.get_layer("conv").output)(images).numpy()
    kernel = model.get_layer("logits").get_weights()[0][0, 0, :, class_index]  # (K,)
    # d score / d A[n, y, x, k] = mask[n, y, x] * kernel[k]; Grad-CAM averages over (y, x).
    weights = mask.mean(axis=(1, 2))[:, None] * kernel[None, :]  # (N, K)
    raw = np.maximum(np.einsum("nhwk,nk->nhw", acts, weights), 0.0)
    up = np.maximum(tf.image.resize(raw[..., None], images.shape[1:3]).numpy()[..., 0], 0.0)
    top = up.max(axis=(1, 2), keepdims=True)
    return up / np.where(top > 0, top, 1.0)


def test_segmentation_sums_a_class_over_a_mask_or_its_predicted_pixels():
    model = _segmenter()
    images = _images()
    box = np.zeros((SIZE, SIZE), np.float32)
    box[2:7, 3:9] = 1
    given = cv.grad_cam(model, images, "conv", target=targets.Segmentation(1, mask=box))
    expected = _seg_textbook(model, images, 1, np.broadcast_to(box, (4, SIZE, SIZE)))
    assert min(_correlation(g, e) for g, e in zip(given, expected)) >= 0.99
    np.testing.assert_allclose(given, expected, atol=1e-5)
    predicted = model(images).numpy().argmax(-1)
    details = cam.cam_details(model, images, "conv", target=targets.Segmentation(2))
    expected = _seg_textbook(model, images, 2, (predicted == 2).astype(np.float32))
    np.testing.assert_allclose(details.maps, expected, atol=1e-5)
    assert details.captions[0] == "segmentation: class 2 over its predicted mask"
    # Without a class: the class predicted on the most pixels; probability = its share.
    largest = np.array([np.bincount(p.reshape(-1), minlength=3).argmax() for p in predicted])
    default = cam.cam_details(model, images, "conv")
    np.testing.assert_array_equal(default.class_index, largest)
    share = np.array([(p == c).mean() for p, c in zip(predicted, largest)])
    np.testing.assert_allclose(default.probability, share, rtol=1e-6)


def test_eigen_cam_and_a_callable_target_run_on_any_output():
    x = keras.Input((SIZE, SIZE, 3))
    tokens = layers.Reshape((-1, 4))(layers.Conv2D(4, 3, name="conv")(x))
    model = keras.Model(x, tokens)
    images = _images()
    assert cv.grad_cam(model, images, "conv", method="eigencam").shape == (4, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"not a classifier.*callable target"):
        cv.grad_cam(model, images, "conv")
    custom = cv.grad_cam(model, images, "conv", target=lambda z: keras.ops.sum(z[:, :, 1], 1))
    direct = cv.grad_cam(model, images, "conv", target=targets.Score(lambda z: z[:, 0, 1]))
    assert custom.shape == direct.shape == (4, SIZE, SIZE)
    assert np.isfinite(custom).all() and custom.max() == pytest.approx(1.0)


def test_a_callable_equals_the_class_target_it_computes():
    model = _gap_model(3, "softmax")
    images = _images()
    for method in ("gradcam", "scorecam", "layercam"):
        by_class = cv.grad_cam(model, images, "conv", class_index=1, method=method)
        by_callable = cv.grad_cam(model, images, "conv", method=method, target=lambda z: z[:, 1])
        np.testing.assert_allclose(by_callable, by_class, atol=1e-5)


def test_attributions_follow_the_target_binary_class_0_is_the_negated_gradient():
    model = _gap_model(1, "sigmoid")
    images = _images()
    with tf.GradientTape() as tape:
        x = tf.constant(images)
        tape.watch(x)
        features = keras.Model(model.inputs, model.get_layer("gap").output)(x)
        kernel, bias = model.get_layer("head").weights
        z = tf.matmul(features, kernel)[:, 0] + bias[0]
    gradient = tape.gradient(z, x).numpy().sum(-1)
    zero = attribution.attribution_details(model, images, "smoothgrad", 0, noise=0.0)
    one = attribution.attribution_details(model, images, "smoothgrad", 1, noise=0.0)
    np.testing.assert_allclose(zero.maps, -gradient, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one.maps, gradient, rtol=1e-4, atol=1e-6)
    occluded = attribution.attribution_details(model, images, "occlusion", 0, patch_size=4)
    occluded_one = attribution.attribution_details(model, images, "occlusion", 1, patch_size=4)
    np.testing.assert_allclose(occluded.maps, -occluded_one.maps, rtol=1e-4, atol=1e-5)


def test_deletion_follows_the_probability_of_the_class_explained():
    model = _gap_model(1, "sigmoid")
    images = _images()
    maps = cv.grad_cam(model, images, "conv", class_index=0)
    _, curves, classes = faithfulness.deletion_curves(model, images, maps, 0, steps=4)
    p = model(images).numpy()[:, 0]
    np.testing.assert_allclose(curves[:, 0], 1 - p, rtol=1e-4)  # nothing deleted yet
    np.testing.assert_array_equal(classes, 0)
    with pytest.raises(ValueError, match="has none"):
        faithfulness.deletion_curves(model, images, maps, target=targets.Regression(1))


@pytest.mark.parametrize(
    "model, kwargs, message",
    [
        ("binary", {"class_index": 2}, r"class_index \[2\] out of range.*binary classifier"),
        ("softmax", {"target": lambda z: z}, r"one score per image, shape \(N,\).*\(2, 3\)"),
        (
            "softmax",
            {"target": targets.Segmentation(0)},
            r"cannot explain .*softmax classifier"
            r".*class_index=0..2",
        ),
        ("regression", {"class_index": 0}, r"has no classes: use targets.Regression"),
        (
            "segmentation",
            {"target": targets.Segmentation(0, mask=np.ones((5, 5)))},
            r"mask of shape \(5, 5\) does not fit.*\(12, 12\)",
        ),
        ("segmentation", {"target": targets.Segmentation(7)}, r"class_index \[7\] out of range"),
        ("regression", {"target": targets.Regression(1, unit=3)}, r"unit=3\) is out of range"),
    ],
)
def test_targets_that_do_not_fit_the_output_are_refused_with_what_fits(model, kwargs, message):
    built = {
        "binary": lambda: _gap_model(1, "sigmoid"),
        "softmax": lambda: _gap_model(3, "softmax"),
        "regression": lambda: _gap_model(1, None, "mse"),
        "segmentation": _segmenter,
    }[model]()
    with pytest.raises(ValueError, match=message):
        cv.grad_cam(built, _images(2), "conv", **kwargs)


def test_method_names_have_one_meaning_in_every_spelling():
    assert {cam.method_name(n) for n in ("gradcam++", "gradcam_plus_plus", "gradcampp")} == {
        "gradcam++"
    }
    assert cam.method_name("score_cam") == "scorecam"
    model = _gap_model(3, "softmax")
    images = _images(2)
    np.testing.assert_array_equal(
        cv.grad_cam(model, images, "conv", method="gradcam_plus_plus"),
        cv.grad_cam(model, images, "conv", method="gradcam++"),
    )

"""SmoothGrad, integrated gradients and occlusion: hand computations, completeness, batching.

Gradients for the hand computations come from a plain ``tf.GradientTape`` on the model's
logits (``models.functional`` has a linear head), independently of ``capture``.
"""

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis import capture
from tb_cnnvis.algorithms import attribution, backprop

SIZE = models.SIZE


def _images(count=2, seed=0):
    return np.random.default_rng(seed).random((count, SIZE, SIZE, 3)).astype(np.float32)


def _gradients(model, images, classes):
    """d logit[class] / d images with a plain tape (the model's head is linear)."""
    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = model(images)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    return tape.gradient(score, images).numpy().astype(np.float64)


def _linear(softmax=True, size=4, seed=1):
    """Flatten + dense: the class logit is sum(w * x) + b, exactly linear in the pixels."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((size, size, 3)), layers.Flatten(),
         layers.Dense(2, activation="softmax" if softmax else None, name="dense")]
    )  # fmt: skip
    weights = model.get_layer("dense").get_weights()[0].reshape(size, size, 3, 2)
    return model, weights


@pytest.fixture(scope="module")
def functional():
    return models.functional()


def test_smoothgrad_without_noise_is_the_plain_gradient_summed_over_channels(functional):
    images, classes = _images(), np.array([2, 0])
    maps = cv.attribution(functional, images, "smoothgrad", classes, noise=0.0)
    expected = _gradients(functional, images, classes).sum(axis=-1)
    assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_the_mean_gradient_over_noise_of_a_fraction_of_the_input_range(functional):
    # Smilkov et al. 2017: sigma = noise * (high - low); here the range is [0, 255].
    images, classes, samples = _images() * 255, np.array([1, 1]), 5
    maps = cv.attribution(functional, images, "smoothgrad", classes, samples=samples,
                          noise=0.2, seed=3, input_range="byte")  # fmt: skip
    draws = np.random.default_rng(3).standard_normal((2 * samples, SIZE, SIZE, 3), np.float32)
    noisy = np.repeat(images, samples, axis=0) + draws * np.float32(0.2 * 255)
    grads = _gradients(functional, noisy, np.repeat(classes, samples))
    expected = grads.reshape(2, samples, SIZE, SIZE, 3).mean(axis=1).sum(axis=-1)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-7)


def test_integrated_gradients_is_the_path_mean_gradient_times_the_difference(functional):
    images, classes, steps = _images(), np.array([0, 2]), 4
    baseline = np.full(3, 0.25, np.float32)  # one value per channel
    maps = cv.attribution(functional, images, "integrated_gradients", classes, steps=steps,
                          baseline=baseline)  # fmt: skip
    path = [baseline + (k + 0.5) / steps * (images - baseline) for k in range(steps)]
    mean = np.mean([_gradients(functional, point, classes) for point in path], axis=0)
    np.testing.assert_allclose(maps, ((images - baseline) * mean).sum(axis=-1), rtol=1e-4,
                               atol=1e-7)  # fmt: skip


@pytest.mark.parametrize("builder", ["sequential", "relu_layers"])
def test_integrated_gradients_complete_within_5_percent_at_64_steps(builder):
    # Sundararajan et al. 2017: the attributions sum to f(x) - f(baseline), f the logit
    # (these models end in a softmax, which is skipped), baseline the range's low end: 0.
    model = models.BUILDERS[builder]()
    images = _images(4, seed=5)
    details = attribution.attribution_details(model, images, "integrated_gradients", steps=64)
    logits = lambda x: capture.run_graph(model, tf.constant(x), logits=True)[0].numpy()  # noqa: E731
    rows, target = np.arange(4), details.class_index
    change = logits(images)[rows, target] - logits(np.zeros_like(images))[rows, target]
    total = details.maps.sum(axis=(1, 2))
    assert np.abs(change).min() > 1e-3
    np.testing.assert_array_less(np.abs(total - change), 0.05 * np.abs(change))
    assert details.settings == {"steps": 64, "baseline": "low"}


def test_occlusion_of_single_pixels_on_a_linear_model_is_weight_times_input():
    # Zeiler & Fergus 2014: the drop of the class logit when a patch is replaced by the
    # baseline; with 1x1 patches and a zero baseline on sum(w * x) + b that is sum_c w * x.
    model, weights = _linear()
    images = np.random.default_rng(2).normal(size=(3, 4, 4, 3)).astype(np.float32)
    details = attribution.attribution_details(model, images, "occlusion", [0, 1, 1],
                                              patch_size=1, stride=1, baseline=0.0)  # fmt: skip
    expected = np.einsum("nhwc,hwcn->nhw", images, weights[..., [0, 1, 1]])
    np.testing.assert_allclose(details.maps, expected, rtol=1e-5, atol=1e-6)
    assert details.settings == {"patch_size": 1, "stride": 1, "baseline": 0.0}


def test_occlusion_averages_each_pixels_patches_and_the_last_patch_meets_the_edge():
    # 6 px, patch 3, stride 2: starts 0, 2 and then 3 (flush with the edge).
    model, weights = _linear(softmax=False, size=6)
    image = np.random.default_rng(4).normal(size=(6, 6, 3)).astype(np.float32)
    grey = np.float32(0.5)
    maps = cv.attribution(model, image, "occlusion", 1, patch_size=3, stride=2, baseline=grey)
    contribution = ((image - grey) * weights[..., 1]).sum(axis=-1)  # each pixel's share
    total, covered = np.zeros((6, 6)), np.zeros((6, 6))
    for top in (0, 2, 3):
        for left in (0, 2, 3):
            window = (slice(top, top + 3), slice(left, left + 3))
            total[window] += contribution[window].sum()
            covered[window] += 1
    np.testing.assert_allclose(maps[0], total / covered, rtol=1e-4, atol=1e-5)


def test_the_default_baselines_come_from_the_input_range():
    model, weights = _linear(softmax=False)
    images = np.random.default_rng(6).uniform(-1, 1, (1, 4, 4, 3)).astype(np.float32)
    occluded = cv.attribution(model, images, "occlusion", 0, patch_size=1, input_range="tf")
    np.testing.assert_allclose(occluded[0], (images[0] * weights[..., 0]).sum(-1), atol=1e-5)
    details = attribution.attribution_details(model, images, "integrated_gradients", 0,
                                              input_range="tf", steps=2)  # fmt: skip
    expected = ((images[0] + 1.0) * weights[..., 0]).sum(-1)  # from black, -1 in "tf" mode
    np.testing.assert_allclose(details.maps[0], expected, atol=1e-5)
    assert details.settings["baseline"] == "low"


def test_explained_class_predictions_and_probabilities(functional):
    images = _images(3)
    logits = functional(images).numpy()
    details = attribution.attribution_details(functional, images, "smoothgrad", samples=2)
    assert details.class_index.tolist() == details.predicted.tolist() == logits.argmax(1).tolist()
    chosen = attribution.attribution_details(functional, images, "occlusion", class_index=1)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(chosen.target_probability, probabilities[:, 1], rtol=1e-5)
    np.testing.assert_allclose(chosen.probability, probabilities.max(axis=1), rtol=1e-5)


@pytest.mark.parametrize(
    ("method", "options"),
    [("smoothgrad", {"samples": 7, "noise": 0.1}), ("integrated_gradients", {"steps": 7}),
     ("occlusion", {"patch_size": 4, "stride": 3})],
)  # fmt: skip
def test_copies_go_in_fixed_size_batches_and_the_batch_size_changes_nothing(
    method, options, functional, monkeypatch
):
    images = _images(3)
    whole = cv.attribution(functional, images, method, **options)
    calls, gradient = [], backprop.class_gradient

    def counted(model, inputs, *args, **kwargs):
        calls.append(len(inputs))
        return gradient(model, inputs, *args, **kwargs)

    monkeypatch.setattr(backprop, "class_gradient", counted)
    small = cv.attribution(functional, images, method, batch_size=4, **options)
    np.testing.assert_allclose(small, whole, rtol=1e-4, atol=1e-6)
    if method != "occlusion":
        assert calls == [4] * int(np.ceil(3 * 7 / 4))  # 21 copies: 6 calls of 4, no loop per copy
    monkeypatch.setattr(attribution, "BATCH_BYTES", 1)  # the memory bound: one copy per call
    np.testing.assert_allclose(cv.attribution(functional, images, method, **options), whole,
                               rtol=1e-4, atol=1e-6)  # fmt: skip


def test_a_non_finite_image_gets_a_zero_map_and_a_warning(functional):
    images = _images(2)
    images[1, 0, 0, 0] = np.nan
    with pytest.warns(RuntimeWarning, match=r"images \[1\]"):
        maps = cv.attribution(functional, images, "integrated_gradients", steps=2)
    assert not maps[1].any() and np.abs(maps[0]).max() > 0


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("lrp", {}, r"'lrp'.*\['smoothgrad', 'integrated_gradients', 'occlusion'\]"),
        ("integrated_gradients", {"steps": 0}, r"steps must be an int >= 1 \(points on the path"),
        ("integrated_gradients", {"step": 8}, r"Unknown options \['step'\].*'steps'"),
        ("smoothgrad", {"samples": 2.5}, r"samples must be an int >= 1 \(noisy copies"),
        ("smoothgrad", {"noise": -0.1}, r"noise must be a number >= 0.*fraction of the input"),
        ("occlusion", {"patch_size": 17}, r"patch_size must be an int from 1 to 16 \(the images"),
        ("occlusion", {"patch_size": 4, "stride": 5}, r"stride must be an int from 1 to "
         r"patch_size=4, so that every pixel is occluded"),
        ("occlusion", {"baseline": np.zeros((5, 5))}, r"baseline must be a number, one value per "
         r"channel \(3,\), one image \(16, 16, 3\) or one per image \(2, 16, 16, 3\); got shape"),
        ("integrated_gradients", {"baseline": "black"}, r"got a non-numeric value"),
        ("smoothgrad", {"batch_size": 0}, r"batch_size must be an int >= 1"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_in_the_users_terms(method, options, message, functional):
    with pytest.raises(ValueError, match=message):
        cv.attribution(functional, _images(), method, **options)


def test_a_model_that_is_no_classifier_and_a_bad_class_are_refused(functional):
    flat = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), layers.Conv2D(2, 1), layers.Reshape((SIZE * SIZE, 2))]
    )
    with pytest.raises(ValueError, match=r"not a classifier.*give a callable target"):
        cv.attribution(flat, _images(), "occlusion")
    with pytest.raises(ValueError, match=r"class_index \[3\] out of range"):
        cv.attribution(functional, _images(), "smoothgrad", class_index=3)

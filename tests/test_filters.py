"""Filter patterns: batched activation maximization, its quality on a trained CNN, its contract.

The quality checks train a small CNN for a few seconds on synthetic bars and discs, then
check what activation maximization promises: the objective rises, each image excites its
own filter at least as much as any other filter's image does, filters that fire on data
get a pattern (not silent grey), and the pattern excites its filter more than real images.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis import capture
from tb_cnnvis.algorithms.filters import PRESETS, filter_patterns, interior_window
from tb_cnnvis.algorithms.fv_objectives import L2, TotalVariation
from tb_cnnvis.algorithms.fv_params import FourierImage, PixelImage
from tb_cnnvis.algorithms.fv_transforms import Affine, Jitter, Pad, Roll, apply_transforms
from tb_cnnvis.input_range import InputRange
from tests import models

SIZE = 32


def _bars(n, size=SIZE, seed=0):
    """Bars at 0/45/90/135 degrees and discs, random colours, noisy background: 5 classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, 5, n)
    images = rng.uniform(0.0, 0.25, (n, size, size, 3)) + rng.uniform(0, 0.3, (n, 1, 1, 3))
    cy, cx = rng.uniform(size * 0.3, size * 0.7, (2, n))
    for i, label in enumerate(labels):
        if label < 4:
            angle = label * np.pi / 4
            across = np.abs((xx - cx[i]) * np.sin(angle) - (yy - cy[i]) * np.cos(angle))
            along = np.abs((xx - cx[i]) * np.cos(angle) + (yy - cy[i]) * np.sin(angle))
            mask = (across < size * 0.06) & (along < size * 0.35)
        else:
            mask = (xx - cx[i]) ** 2 + (yy - cy[i]) ** 2 < (size * 0.18) ** 2
        images[i][mask] = rng.uniform(0.5, 1.0, 3)
    return np.clip(images, 0, 1).astype(np.float32), labels


@pytest.fixture(scope="module")
def trained():
    """A 3-conv CNN trained to ~100% on the bars (a few seconds), and 200 probe images."""
    keras.utils.set_random_seed(0)
    images, labels = _bars(1000)
    model = models.trainable_cnn(SIZE, 5)
    history = model.fit(images, labels, epochs=4, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    return model, images[:200]


def _channel_means(model, layer, images):
    """(N, C) mean activation of every channel of ``layer`` for each image, over the
    positions the objective averages (units whose receptive field is inside the image)."""
    _, taps = capture.run_graph(model, tf.constant(images), taps=[layer], stop_at=[layer])
    top, bottom, left, right = interior_window(model, layer, images.shape[1:3])
    return tf.reduce_mean(taps[layer][:, top:bottom, left:right], axis=[1, 2]).numpy()


def _firing(model, layer, probes):
    """Filters whose activation on some probe image reaches 0.1% of the layer's largest."""
    best = _channel_means(model, layer, probes).max(axis=0)
    return best > 1e-3 * best.max()


@pytest.mark.parametrize(("preset", "steps"), [("fast", None), ("quality", 96)])
def test_the_objective_rises_for_every_preset(trained, preset, steps):
    model, probes = trained
    result = filter_patterns(model, "conv2", preset=preset, steps=steps)
    firing = _firing(model, "conv2", probes)
    assert result.activations.mean() > 1.5 * result.start_activations.mean()
    assert (result.activations > result.start_activations)[firing].mean() >= 0.9


@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_each_image_excites_its_own_filter_most(trained, layer):
    model, probes = trained
    result = filter_patterns(model, layer)
    responses = _channel_means(model, layer, result.images)  # (image, filter)
    own = np.diag(responses)
    others = np.array([np.delete(responses[:, i], i).max() for i in range(len(own))])
    # Two filters whose best image is the same saturated colour tie: 1% counts as a tie.
    dominant = own >= 0.99 * others
    assert dominant[_firing(model, layer, probes)].mean() >= 0.8
    np.testing.assert_allclose(own, result.activations, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
def test_filters_that_fire_on_data_get_a_pattern_and_the_dead_are_listed(trained, layer):
    model, probes = trained
    result = filter_patterns(model, layer)
    firing = _firing(model, layer, probes)
    assert (result.activations > 0)[firing].mean() >= 0.95
    assert (
        result.dead.tolist()
        == result.filters[result.activations == result.start_activations].tolist()
    )


@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_the_pattern_excites_its_filter_more_than_any_probe_image(trained, layer):
    model, probes = trained
    result = filter_patterns(model, layer)
    best_probe = _channel_means(model, layer, probes).max(axis=0)
    assert (result.activations > best_probe)[_firing(model, layer, probes)].mean() >= 0.75


def _dead_start_model():
    """conv_a filter 0 needs a red centre > 0.8 to fire; conv_b filter 0 passes it on."""
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(2, 3, padding="same", activation="relu", name="conv_a"),
            layers.Conv2D(1, 1, name="conv_b"),
            layers.ReLU(name="relu_b"),
        ]
    )
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[1, 1, 0, 0] = 1.0
    kernel[1, 1, 1, 1] = 1.0
    model.get_layer("conv_a").set_weights([kernel, np.array([-0.8, 0.0], np.float32)])
    model.get_layer("conv_b").set_weights([np.array([[[[1.0], [0.0]]]], np.float32), np.zeros(1)])
    return model


@pytest.mark.parametrize("layer", ["conv_a", "relu_b"])
def test_redirected_relu_rescues_a_filter_that_starts_dead(layer):
    model = _dead_start_model()
    rescued = filter_patterns(model, layer, [0], steps=24)
    plain = filter_patterns(
        model, layer, [0], steps=24, preset=dataclasses.replace(PRESETS["fast"], rescue_steps=0)
    )
    assert rescued.start_activations[0] == 0.0
    assert rescued.activations[0] > 0.05  # the red channel was pushed towards 1
    assert rescued.dead.tolist() == []
    assert plain.activations[0] == 0.0
    assert plain.dead.tolist() == [0]


def test_dead_means_never_responds_not_a_negative_sign():
    # After a LayerNorm, a filter's best activation can be negative: it still responds.
    # A channel with a zero kernel is a constant: it never does, whatever its sign.
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(3, 3, padding="same", name="conv"),
            layers.LayerNormalization(center=False, scale=False, name="norm"),
            layers.Conv2D(2, 1, name="head"),
        ]
    )
    kernel = model.get_layer("conv").get_weights()[0]
    model.get_layer("conv").set_weights([kernel, np.zeros(3, np.float32)])
    head = np.zeros((1, 1, 3, 2), np.float32)
    head[0, 0, 0, 0] = -1.0  # minus the first normalized channel: negative on average
    model.get_layer("head").set_weights([head, np.array([-5.0, -2.0], np.float32)])
    result = filter_patterns(model, "head", steps=16)
    assert result.activations[0] < 0 and result.activations[0] > result.start_activations[0]
    assert result.activations[1] == result.start_activations[1] == -2.0
    assert result.dead.tolist() == [1]


def test_chunked_requests_give_the_same_results_as_one_batch(trained):
    model, _ = trained
    whole = filter_patterns(model, "conv2", [3, 0, 7, 5, 1, 9, 2, 8], steps=6)
    chunked = filter_patterns(model, "conv2", [3, 0, 7, 5, 1, 9, 2, 8], steps=6, chunk_size=3)
    np.testing.assert_allclose(chunked.images, whole.images, atol=1e-5)
    np.testing.assert_allclose(chunked.activations, whole.activations, rtol=1e-5, atol=1e-6)


def test_filter_order_is_kept_and_a_filter_does_not_depend_on_its_neighbours(trained):
    model, _ = trained
    mixed = filter_patterns(model, "conv3", [5, 1, 3], steps=6)
    alone = filter_patterns(model, "conv3", [1], steps=6)
    assert mixed.filters.tolist() == [5, 1, 3]
    np.testing.assert_allclose(mixed.images[1], alone.images[0], atol=1e-5)


def test_one_trace_per_layer_reused_across_calls_and_weight_updates():
    model = models.sequential()
    first = filter_patterns(model, "conv2", steps=5, seed=3)
    traces = capture.CACHE.trace_count(model)
    again = filter_patterns(model, "conv2", steps=5, seed=3)
    np.testing.assert_array_equal(again.images, first.images)  # deterministic
    kernel, bias = model.get_layer("conv2").get_weights()
    model.get_layer("conv2").set_weights([kernel * 2.0, bias])
    updated = filter_patterns(model, "conv2", steps=9, seed=3)
    assert capture.CACHE.trace_count(model) == traces
    np.testing.assert_allclose(updated.start_activations, 2.0 * first.start_activations, rtol=1e-4)
    other_seed = filter_patterns(model, "conv2", steps=5, seed=4)
    assert not np.allclose(other_seed.images, first.images)


@pytest.mark.parametrize("name", ["functional", "nested", "relu_layers"])
def test_every_architecture_shape_works(name):
    model = models.BUILDERS[name]()
    layer = "base/conv2" if name == "nested" else "conv2"
    result = cv.filter_patterns(model, layer, steps=4)
    assert result.images.shape == (6, models.SIZE, models.SIZE, 3)
    assert result.layer == layer
    assert np.all(np.isfinite(result.images))


def test_a_fully_convolutional_prefix_runs_at_another_size():
    model = models.sequential()
    result = filter_patterns(model, "conv2", [0, 2], steps=4, size=(24, 40))
    assert result.images.shape == (2, 24, 40, 3)


def test_a_prefix_that_needs_the_model_size_says_so():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Conv2D(4, 3, padding="same", name="conv1"),
            layers.Flatten(),
            layers.Reshape((8, 8, 4)),
            layers.Conv2D(2, 3, padding="same", name="conv2"),
        ]
    )
    with pytest.raises(ValueError, match=r"cannot be computed at size \(12, 12\)"):
        filter_patterns(model, "conv2", steps=2, size=12)


@pytest.mark.parametrize("spec", [(0, 255), "caffe", "tf"])
def test_images_stay_in_the_models_input_range(spec):
    model = models.sequential()
    result = filter_patterns(model, "conv2", steps=6, input_range=spec)
    low, high = InputRange.resolve(spec).bounds(3)
    assert np.all(result.images >= low - 1e-3) and np.all(result.images <= high + 1e-3)
    assert result.display().dtype == np.uint8
    assert result.display(crop=False).shape == (6, models.SIZE, models.SIZE, 3)
    assert result.display().shape == (6, 8, 8, 3)  # conv2's receptive field


def test_the_quality_preset_keeps_the_requested_size():
    model = models.sequential()
    result = filter_patterns(model, "conv1", [1], preset="quality", steps=3)
    assert result.images.shape == (1, models.SIZE, models.SIZE, 3)
    assert result.images.min() > 0.0 and result.images.max() < 1.0  # a sigmoid's output


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer": "gap"}, "height, width, channels"),
        ({"layer": "conv2", "filters": [0, 6]}, r"\[6\] are out of range.*6 filters"),
        ({"layer": "conv2", "filters": [-1]}, "out of range"),
        ({"layer": "conv2", "filters": []}, "non-empty"),
        ({"layer": "conv2", "steps": 0}, "steps must be an int >= 1"),
        ({"layer": "conv2", "preset": "pretty"}, r"\['fast', 'maco', 'quality'\]"),
        ({"layer": "conv2", "size": (0, 4)}, "size must be"),
        ({"layer": "conv2", "chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_requests_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        filter_patterns(models.sequential(), **kwargs)


@pytest.mark.parametrize("penalty", [TotalVariation(0.3), L2(0.7)])
def test_written_out_penalty_gradients_match_automatic_differentiation(penalty):
    images = tf.random.stateless_uniform((2, 5, 7, 3), (1, 2))
    with tf.GradientTape() as tape:
        tape.watch(images)
        value = tf.reduce_sum(penalty(images))
    np.testing.assert_allclose(penalty.grad(images), tape.gradient(value, images), atol=1e-6)


def test_transforms_keep_or_change_the_size_as_documented_and_repeat_with_the_seed():
    images = tf.random.stateless_uniform((2, 20, 20, 3), (3, 4))
    chain = (Pad(4), Jitter(3), Roll(2), Affine(shift=1, scale=(0.9, 1.1), degrees=8), Jitter(2))
    once = apply_transforms(chain, images, seed=5, step=7)
    assert once.shape == (2, 20 + 8 - 3 - 2, 20 + 8 - 3 - 2, 3)
    np.testing.assert_array_equal(once, apply_transforms(chain, images, seed=5, step=7))
    assert not np.allclose(once, apply_transforms(chain, images, seed=5, step=8))
    identity = apply_transforms((Affine(),), images, seed=0, step=0)
    np.testing.assert_allclose(identity, images, atol=1e-5)
    skipped = apply_transforms((Affine(degrees=30, every=4),), images, seed=0, step=3)
    np.testing.assert_array_equal(skipped, images)


@pytest.mark.parametrize("shape", [(16, 16, 3), (9, 13, 3), (8, 10, 1)])
def test_parametrizations_give_unit_images_of_the_asked_shape(shape):
    for param in (PixelImage(), FourierImage()):
        params = param.init([4, 2], shape, seed=1)
        images = param.to_unit(tf.constant(params), shape).numpy()
        assert images.shape == (2, *shape)
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert not np.allclose(images[0], images[1])  # each filter draws its own start
        np.testing.assert_array_equal(params[1], param.init([2], shape, seed=1)[0])


def test_the_objective_ignores_units_that_see_the_zero_padding():
    # conv 3x3 "same" -> pool 2 -> conv 3x3 "same" on 16 px: the second conv's units see
    # 8x8 input pixels from (2y - 3, 2x - 3); those whose field stays inside are 2..6.
    model = models.sequential()
    assert interior_window(model, "conv1", (16, 16)) == (1, 15, 1, 15)
    assert interior_window(model, "conv2", (16, 16)) == (2, 6, 2, 6)
    # A patterns's reached activation is the mean over that window.
    result = filter_patterns(model, "conv2", filters=[0, 1], steps=2)
    _, taps = capture.run_graph(model, tf.constant(result.images), taps=["conv2"])
    window = taps["conv2"].numpy()[:, 2:6, 2:6]
    expected = [window[0, ..., 0].mean(), window[1, ..., 1].mean()]
    np.testing.assert_allclose(result.activations, expected, rtol=1e-4, atol=1e-6)


def test_no_compiled_function_goes_through_autograph(monkeypatch):
    # AutoGraph rewrites the source of every function a trace reaches (every Keras layer):
    # seconds at the first trace of a large network, for nothing (our code has no tensor
    # control flow in Python). The inner function of the loop once slipped through.
    from tensorflow.python.autograph.impl import api

    converted = []
    original = api.converted_call

    def counting(*args, **kwargs):
        converted.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(api, "converted_call", counting)
    model = models.sequential()
    filter_patterns(model, "conv2", [0, 1], steps=2)
    cv.deepdream(model, np.full((1, models.SIZE, models.SIZE, 3), 0.5, np.float32), "conv2")
    assert converted == []

"""capture: layer lookup (also nested), image checks, and run_graph's taps, ReLU rule, logits."""

import gc
import weakref

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import tb_cnnvis as cv
from tb_cnnvis import capture


def _images(n=2, size=models.SIZE):
    return np.random.default_rng(0).normal(size=(n, size, size, 3)).astype(np.float32)


def _two_bases():
    """A classifier holding two nested models that both have a layer named "conv"."""
    x = keras.Input((8, 8, 3))
    outs = []
    for name in ("left", "right"):
        inner_in = keras.Input((8, 8, 3))
        inner = keras.Model(inner_in, layers.Conv2D(2, 3, name="conv")(inner_in), name=name)
        outs.append(inner(x))
    return keras.Model(x, layers.Concatenate(name="cat")(outs), name="twins")


@pytest.mark.parametrize(
    "builder, expected",
    [
        ("sequential", ["conv1", "pool1", "conv2"]),
        ("functional", ["conv1", "conv1b", "add", "pool1", "conv2"]),
        ("nested", ["base/conv1", "base/pool1", "base/conv2"]),
        ("relu_layers", ["conv1", "relu1", "pool1", "conv2", "bn2", "relu2"]),
    ],
)
def test_conv_layers_lists_4d_layers_in_model_order_with_nested_paths(builder, expected):
    assert capture.conv_layers(models.BUILDERS[builder]()) == expected


def test_resolve_layer_by_path_bare_unique_name_index_and_object():
    model = models.nested()
    inner = model.get_layer("base").get_layer("conv2")
    assert capture.resolve_layer(model, "base/conv2").layer is inner
    assert capture.resolve_layer(model, "conv2").path == "base/conv2"
    assert capture.resolve_layer(model, -1).path == "base/conv2"
    assert capture.resolve_layer(model, inner).path == "base/conv2"
    assert capture.resolve_layer(model, "conv2").output_shape == (8, 8, 6)


def test_resolve_unknown_layer_names_it_and_lists_usable_layers():
    with pytest.raises(ValueError, match=r"'conv9' was not found") as error:
        capture.resolve_layer(models.nested(), "conv9")
    assert "['base/conv1', 'base/pool1', 'base/conv2']" in str(error.value)


def test_resolve_ambiguous_bare_name_lists_candidates():
    with pytest.raises(ValueError, match=r"ambiguous.*\['left/conv', 'right/conv'\]"):
        capture.resolve_layer(_two_bases(), "conv")
    assert capture.resolve_layer(_two_bases(), "right/conv").path == "right/conv"


def test_resolve_dense_layer_says_a_4d_output_is_needed():
    with pytest.raises(ValueError, match=r"'head' \(Dense\) has output shape \(3,\).*\(height"):
        capture.resolve_layer(models.sequential(), "head")
    assert capture.resolve_layer(models.sequential(), "head", need_4d=False).output_shape == (3,)


def test_resolve_index_out_of_range():
    with pytest.raises(ValueError, match=r"index 3 is out of range.*3 layers"):
        capture.resolve_layer(models.sequential(), 3)


def test_select_layers_none_regex_and_list():
    model = models.relu_layers()
    assert [r.path for r in capture.select_layers(model, None)] == capture.conv_layers(model)
    assert [r.path for r in capture.select_layers(model, "relu.")] == ["relu1", "relu2"]
    assert [r.path for r in capture.select_layers(model, ["conv2", "conv1", "conv2"])] == [
        "conv2",
        "conv1",
    ]


def test_check_images_accepts_a_batch_or_one_image_as_float32():
    model = models.sequential()
    batch = capture.check_images(model, _images(3).astype(np.float64))
    assert batch.shape == (3, 16, 16, 3) and batch.dtype == np.float32
    assert capture.check_images(model, _images(1)[0]).shape == (1, 16, 16, 3)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 16, 16), r"must have shape \(N, 16, 16, 3\).*got shape \(2, 16, 16\)"),
        ((2, 16, 16, 1), r"must have shape \(N, 16, 16, 3\).*got shape \(2, 16, 16, 1\)"),
        ((2, 12, 16, 3), r"must have shape \(N, 16, 16, 3\).*got shape \(2, 12, 16, 3\)"),
        ((0, 16, 16, 3), r"empty"),
    ],
)
def test_check_images_names_expected_and_received_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        capture.check_images(models.sequential(), np.zeros(shape, np.float32))


@pytest.mark.parametrize("builder", ["sequential", "functional", "relu_layers"])
def test_run_graph_taps_equal_keras_submodel_outputs(builder):
    model = models.BUILDERS[builder]()
    paths = capture.conv_layers(model)
    images = _images()
    output, taps = capture.run_graph(model, tf.constant(images), taps=paths)
    reference = keras.Model(model.inputs[0], [model.get_layer(p).output for p in paths])(images)
    for path, expected in zip(paths, reference):
        np.testing.assert_allclose(taps[path].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output.numpy(), model(images).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "builder, before_softmax, kind",
    [
        ("sequential", "gap", "softmax"),
        ("nested", "gap", "softmax"),
        ("relu_layers", "dense", "softmax"),
        ("functional", None, "linear"),
    ],
)
def test_logits_are_the_scores_before_a_final_softmax(builder, before_softmax, kind):
    model = models.BUILDERS[builder]()
    images = _images()
    logits, _ = capture.run_graph(model, tf.constant(images), logits=True)
    if before_softmax == "gap":
        kernel, bias = model.get_layer("head").get_weights()
        features = keras.Model(model.inputs[0], model.get_layer("gap").output)(images).numpy()
        expected = features @ kernel + bias
    elif before_softmax == "dense":
        expected = keras.Model(model.inputs[0], model.get_layer("dense").output)(images).numpy()
    else:
        expected = model(images).numpy()
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert capture.final_activation(model) == kind
    # The user's model is untouched: it still ends in its softmax.
    outputs = model(images).numpy()
    assert np.allclose(outputs.sum(axis=1), 1.0, atol=1e-5) == (kind == "softmax")


@pytest.mark.parametrize(
    "builder, relus", [("sequential", 2), ("functional", 3), ("nested", 2), ("relu_layers", 2)]
)
def test_relu_fn_replaces_every_kind_of_relu(builder, relus):
    model = models.BUILDERS[builder]()
    calls = []

    def identity(x):
        calls.append(x.shape)
        return x

    conv1 = capture.resolve_layer(model, "conv1").path
    _, taps = capture.run_graph(model, tf.constant(_images()), taps=[conv1], relu_fn=identity)
    assert len(calls) == relus
    # With the ReLU replaced by the identity, conv1's tap keeps negative values.
    assert taps[conv1].numpy().min() < 0


def test_capped_relus_follow_the_rule_below_the_cap_and_keep_it():
    # MobileNetV2's ReLU(6.) and relu6 are min(relu(x), 6) to the rules.
    model = models.relu_layers(cap=6.0)
    calls = []

    def plain(x):
        calls.append(x.shape)
        return tf.nn.relu(x)

    images = tf.constant(_images() * 100)  # activations well above 6
    output, taps = capture.run_graph(model, images, taps=["relu1"], relu_fn=plain)
    assert len(calls) == 2 and taps["relu1"].numpy().max() == 6.0
    np.testing.assert_allclose(output.numpy(), model(images).numpy(), rtol=1e-5, atol=1e-6)
    # Below the cap, each rule gives what it gives for the uncapped twin.
    small = _images() * 0.1
    twin = models.twin_of(model, models.relu_layers)
    for rule in ("deconvnet", "guided"):
        np.testing.assert_allclose(
            cv.backprop(model, small, "conv2", channel=1, rule=rule),
            cv.backprop(twin, small, "conv2", channel=1, rule=rule),
            atol=1e-6,
        )
    assert capture.relu_cap(model.get_layer("relu2")) == 6.0
    assert capture.relu_cap(twin.get_layer("relu1")) is None


def test_stop_at_ends_the_walk_after_the_layer():
    model = models.nested()
    output, taps = capture.run_graph(
        model, tf.constant(_images()), taps=["base/pool1"], stop_at=["base/pool1"]
    )
    assert output is None and taps["base/pool1"].shape == (2, 8, 8, 4)


def test_cache_reuses_functions_counts_traces_and_lets_models_go():
    model = models.sequential()
    ref = weakref.ref(model)

    def build(model_ref):
        return lambda x: model_ref()(x)

    first = capture.CACHE.get(model, "probe", build)
    assert capture.CACHE.get(model, "probe", build) is first
    first(tf.constant(_images()))
    first(tf.constant(_images()))
    assert capture.CACHE.trace_count(model, "probe") == 1
    assert capture.total_traces(model) >= 1
    del model, first
    gc.collect()
    assert ref() is None


def test_the_cache_refuses_a_function_that_holds_the_model():
    model = models.sequential()
    with pytest.raises(TypeError, match="weak reference"):
        capture.CACHE.get(model, "holds", lambda model_ref: lambda x: model(x))
    with pytest.raises(TypeError, match="weak reference"):
        capture.CACHE.get(model, "holds", lambda model_ref, m=model: m)


def test_finite_or_zero_zeroes_only_the_bad_images_and_warns():
    maps = np.ones((3, 2, 2), np.float32)
    maps[1, 0, 0] = np.nan
    with pytest.warns(RuntimeWarning, match=r"images \[1\]"):
        fixed = capture.finite_or_zero(maps, "test")
    assert fixed[1].sum() == 0 and fixed[0].sum() == 4 and fixed[2].sum() == 4


class _SignGate(keras.Model):
    """A subclassed model whose ``call`` branches on a tensor, the Keras 3 way (``ops.cond``:
    Keras traces its own steps without AutoGraph, so a Python ``if`` fails in ``fit`` too)."""

    def __init__(self):
        super().__init__(name="gate")
        self.conv1 = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")
        self.gap = layers.GlobalAveragePooling2D(name="gap")
        self.head = layers.Dense(models.CLASSES, activation="softmax", name="head")

    def call(self, x):
        features = self.conv1(x)
        features = keras.ops.cond(
            keras.ops.mean(x) > 0, lambda: features * 2.0, lambda: features * 0.5
        )
        return self.head(self.gap(features))


def test_a_branch_on_a_tensor_in_a_subclassed_call_compiles_once_and_takes_both_ways():
    model = _SignGate()
    positive, negative = np.abs(_images()), -np.abs(_images())
    model(positive)
    assert capture.conv_layers(model) == ["conv1"]  # the recorded call traced the branch
    run = capture.CACHE.get(model, "gate", lambda model_ref: lambda x: model_ref()(x))
    outputs = [run(tf.constant(images)).numpy() for images in (positive, negative)]
    for images, output in zip((positive, negative), outputs):
        np.testing.assert_allclose(output, model(images), rtol=1e-5, atol=1e-7)
    assert not np.allclose(outputs[0], outputs[1])
    assert capture.CACHE.trace_count(model, "gate") == 1


def _augmented(size=16):
    """Augmentation in a nested Sequential, then rescaling and two convolutions."""
    x = keras.Input((size, size, 3))
    augment = keras.Sequential(
        [layers.RandomFlip(name="flip"), layers.RandomRotation(0.2, name="rot")], name="augment"
    )
    y = layers.Rescaling(1 / 255.0, name="rescaling")(augment(x))
    y = layers.Conv2D(4, 3, activation="relu", name="conv1")(y)
    y = layers.CenterCrop(8, 8, name="crop")(y)
    y = layers.Conv2D(3, 3, activation="relu", name="conv2")(y)
    y = layers.Dense(2, activation="softmax", name="head")(layers.GlobalAveragePooling2D()(y))
    return keras.Model(x, y)


def test_preprocessing_and_augmentation_layers_are_not_convolutional_and_run_in_inference():
    model = _augmented()
    assert capture.conv_layers(model) == ["conv1", "conv2"]
    assert [ref.path for ref in capture.select_layers(model, ".*")] == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="preprocessing or augmentation") as error:
        cv.grad_cam(model, _images(1, 16), layer="flip")
    assert "['conv1', 'conv2']" in str(error.value)
    images = _images(3, 16) * 255.0
    # Inference mode: flips and rotations are identities, so the taps equal a plain forward
    # pass of the rescaled images through the same convolutions.
    _, taps = capture.run_graph(model, tf.constant(images), taps=["conv1"])
    conv1 = model.get_layer("conv1")
    expected = conv1(images / 255.0)
    np.testing.assert_allclose(taps["conv1"].numpy(), np.asarray(expected), atol=1e-4)

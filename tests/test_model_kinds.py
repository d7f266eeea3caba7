"""The models users write: subclassed models, custom blocks, several inputs and outputs.

Each kind is compared with a twin built the usual way (Sequential or functional) holding
the same weights: every function must give the same numbers.
"""

import keras
import models
import numpy as np
import pytest
import tensorflow as tf

import tb_cnnvis as cv
from tb_cnnvis import CnnVisCallback, capture
from tb_cnnvis.testing import read_run

RELU = tf.nn.relu
IMAGES = np.random.default_rng(3).random((3, models.SIZE, models.SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def subclassed():
    """A subclassed model and its Sequential twin with the same weights."""
    model = models.subclassed()
    return model, models.twin_of(model)


def _same(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _close(a, b, where):
    """Facts equal up to float rounding, recursively."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5), where
    else:
        assert a == b, where


def test_a_subclassed_model_lists_its_layers_in_call_order(subclassed):
    model, twin = subclassed
    assert capture.conv_layers(model) == capture.conv_layers(twin) == ["conv1", "pool1", "conv2"]
    assert capture.final_activation(model) == "softmax"
    assert capture.input_shape(model) == (models.SIZE, models.SIZE, 3)


def test_a_subclassed_model_gives_its_twins_feature_maps_and_cams(subclassed):
    model, twin = subclassed
    for layer in ("conv1", "pool1", "conv2"):
        _same(cv.feature_maps(model, IMAGES, layer), cv.feature_maps(twin, IMAGES, layer))
    for method in ("gradcam", "gradcam++", "scorecam"):
        _same(
            cv.grad_cam(model, IMAGES, "conv2", method=method),
            cv.grad_cam(twin, IMAGES, "conv2", method=method),
        )
    _same(cv.guided_grad_cam(model, IMAGES), cv.guided_grad_cam(twin, IMAGES))


@pytest.mark.parametrize("rule", ["gradient", "deconvnet", "guided"])
def test_a_subclassed_model_gives_its_twins_projections(subclassed, rule):
    model, twin = subclassed
    _same(
        cv.backprop(model, IMAGES, "conv2", rule=rule),
        cv.backprop(twin, IMAGES, "conv2", rule=rule),
    )


def test_a_subclassed_model_gives_its_twins_filter_patterns_and_top_examples(subclassed):
    model, twin = subclassed
    mine, theirs = (cv.filter_patterns(m, "conv2", steps=6, seed=1) for m in subclassed)
    _same(mine.images, theirs.images)
    _same(mine.activations, theirs.activations)
    top, twin_top = (cv.top_examples(m, IMAGES, "conv2", k=2) for m in (model, twin))
    assert top.indices.tolist() == twin_top.indices.tolist()
    _same(top.projections, twin_top.projections)
    assert cv.receptive_field(model, "conv2") == cv.receptive_field(twin, "conv2")


def test_the_callback_logs_a_subclassed_model_as_it_logs_its_twin(tmp_path, subclassed):
    found = []
    for model, name in zip(subclassed, ("sub", "twin")):
        logdir = str(tmp_path / name)
        callback = CnnVisCallback(
            logdir, IMAGES, [0, 1, 2], reference_images=IMAGES, filter_steps=2,
            max_filters_per_layer=2, top_k=2,
        )  # fmt: skip
        callback.set_model(model)
        callback.log_step(0)
        callback.close()
        found.append(read_run(logdir))
    mine, theirs = found
    assert sorted(mine) == sorted(theirs)
    for tag in mine:
        facts, pngs = mine[tag][0]
        twin_facts, twin_pngs = theirs[tag][0]
        facts.pop("seconds")
        twin_facts.pop("seconds")
        _close(facts, twin_facts, tag)
        assert pngs == twin_pngs, tag


def test_relu_calls_in_call_follow_the_backprop_rules():
    model = models.relu_calls()
    twin = models.twin_of(model, models.relu_calls_twin)
    plain = cv.backprop(twin, IMAGES, "conv2", rule="gradient")
    for rule in ("deconvnet", "guided"):
        mine = cv.backprop(model, IMAGES, "conv2", rule=rule)
        _same(mine, cv.backprop(twin, IMAGES, "conv2", rule=rule))
        assert np.abs(mine - plain).max() > 1e-3  # the rule made a difference
    assert tf.nn.relu is RELU  # put back after each call


def test_a_custom_block_inside_a_functional_model_is_reached_by_path():
    model = models.with_block()
    twin = models.twin_of(model)
    assert capture.conv_layers(model) == ["block1", "block1/conv", "pool1", "conv2"]
    _same(cv.feature_maps(model, IMAGES, "block1"), cv.feature_maps(twin, IMAGES, "conv1"))
    for rule in ("deconvnet", "guided"):
        _same(
            cv.backprop(model, IMAGES, "conv2", rule=rule),
            cv.backprop(twin, IMAGES, "conv2", rule=rule),
        )
    _same(cv.grad_cam(model, IMAGES, "conv2"), cv.grad_cam(twin, IMAGES, "conv2"))
    assert cv.receptive_field(model, "block1/conv").size == (3, 3)


def test_nothing_of_the_users_model_is_changed_by_interception(subclassed):
    model, _ = subclassed
    before = {layer.name: dict(vars(layer)) for layer in model.layers}
    cv.backprop(model, IMAGES, "conv2", rule="guided")
    cv.grad_cam(model, IMAGES, "conv2")
    for layer in model.layers:
        assert "call" not in vars(layer)
        assert vars(layer).keys() == before[layer.name].keys()
    assert model.get_layer("conv1").activation is keras.activations.relu


def test_the_randomization_check_of_a_subclassed_model_equals_its_twins_and_restores_it(
    subclassed,
):
    model, twin = subclassed
    weights = [w.copy() for w in model.get_weights()]
    mine = cv.randomization_check(model, IMAGES, methods=("gradcam", "guided"))
    theirs = cv.randomization_check(twin, IMAGES, methods=("gradcam", "guided"))
    assert [name for name, _ in mine["gradcam"]] == [name for name, _ in theirs["gradcam"]]
    for method in mine:
        _same([rho for _, rho in mine[method]], [rho for _, rho in theirs[method]])
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)

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
from tb_cnnvis.algorithms import cam
from tb_cnnvis.testing import read_run

RELU, RELU6 = tf.nn.relu, tf.nn.relu6
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


@pytest.mark.parametrize("capped", [False, True])
def test_relu_calls_in_call_follow_the_backprop_rules(capped):
    model = models.relu_calls(capped=capped)
    twin = models.twin_of(model, lambda: models.relu_calls_twin(capped=capped))
    images = IMAGES * (40 if capped else 1)  # some units above 6
    if capped:
        assert capture.run_graph(model, images, taps=["conv1"])[1]["conv1"].numpy().max() > 6
    plain = cv.backprop(twin, images, "conv2", rule="gradient")
    for rule in ("deconvnet", "guided"):
        mine = cv.backprop(model, images, "conv2", rule=rule)
        _same(mine, cv.backprop(twin, images, "conv2", rule=rule))
        assert np.abs(mine - plain).max() > 1e-3  # the rule made a difference
    assert tf.nn.relu is RELU and tf.nn.relu6 is RELU6  # put back after each call


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


def _single_head(two_heads):
    """The classifier of ``models.two_heads()`` alone, with the same weights."""
    model = models.sequential()
    for layer in model.layers:
        layer.set_weights(two_heads.get_layer(layer.name).get_weights())
    return model


@pytest.mark.parametrize("as_dict", [False, True])
def test_output_selects_the_head_to_explain(as_dict):
    model = models.two_heads(as_dict=as_dict)
    single = _single_head(model)
    assert capture.output_keys(model) == ("box", "head")
    for output in ("head", 1):
        for method in ("gradcam", "scorecam", "layercam"):
            _same(
                cv.grad_cam(model, IMAGES, "conv2", method=method, output=output),
                cv.grad_cam(single, IMAGES, "conv2", method=method),
            )
    _same(cv.guided_grad_cam(model, IMAGES, output="head"), cv.guided_grad_cam(single, IMAGES))
    _same(
        cv.attribution(model, IMAGES, "integrated_gradients", output="head", steps=8),
        cv.attribution(single, IMAGES, "integrated_gradients", steps=8),
    )
    maps = cv.grad_cam(single, IMAGES)
    mine = cv.faithfulness_scores(model, IMAGES, maps, steps=4, output="head")
    theirs = cv.faithfulness_scores(single, IMAGES, maps, steps=4)
    _same(mine.deletion, theirs.deletion)
    _same(mine.insertion, theirs.insertion)
    table = cv.randomization_check(model, IMAGES, methods=("gradient",), output="head")
    assert [name for name, _ in table["gradient"]] == ["head", "box", "conv2", "conv1"]
    # Views that need no class score need no output.
    _same(cv.feature_maps(model, IMAGES, "conv2"), cv.feature_maps(single, IMAGES, "conv2"))


def test_several_outputs_without_output_are_refused_naming_them():
    model = models.two_heads(as_dict=True)
    for call in (
        lambda: cv.grad_cam(model, IMAGES),
        lambda: cv.guided_grad_cam(model, IMAGES),
        lambda: cv.attribution(model, IMAGES, "smoothgrad"),
        lambda: cv.faithfulness_scores(model, IMAGES, np.ones((3, 16, 16))),
        lambda: cv.randomization_check(model, IMAGES),
    ):
        with pytest.raises(ValueError, match=r"2 outputs \['box', 'head'\].*output="):
            call()
    with pytest.raises(ValueError, match=r"output='score' is not an output.*\['box', 'head'\]"):
        cv.grad_cam(model, IMAGES, output="score")


def test_the_callback_explains_the_output_it_is_told_and_refuses_at_set_model_without(logdir):
    model = models.two_heads()
    with pytest.raises(ValueError, match=r"2 outputs \['box', 'head'\]"):
        CnnVisCallback("unused", IMAGES, [0, 1, 2]).set_model(model)
    CnnVisCallback("unused", IMAGES, views=["feature_maps", "deconvnet"]).set_model(model)
    callback = CnnVisCallback(logdir, IMAGES, [0, 1, 2], views=["grad_cam"], output="head")
    callback.set_model(model)
    callback.log_step(0)
    callback.close()
    facts, _ = read_run(logdir)["grad_cam/conv2"][0]
    expected = cam.cam_details(model, IMAGES, "conv2", class_index=[0, 1, 2], output="head")
    assert facts["class_index"] == [0, 1, 2]
    np.testing.assert_allclose(facts["cam_max"], expected.cam_max, rtol=1e-5)
    np.testing.assert_allclose(facts["probability"], expected.probability, rtol=1e-5)


META = np.random.default_rng(4).random((3, 2)).astype(np.float32)


def test_grad_cam_with_a_side_input_equals_a_hand_computed_tape():
    model = models.image_and_meta()
    inputs = {"image": IMAGES, "meta": META}
    maps = cv.grad_cam(model, inputs, "conv2", class_index=[0, 1, 2])
    conv2 = model.get_layer("conv2")
    head = keras.Model(model.inputs, [conv2.output, model.get_layer("head").output])
    logits_layer = model.get_layer("head")
    image = tf.constant(IMAGES)
    with tf.GradientTape() as tape:
        acts, _ = head({"image": image, "meta": tf.constant(META)})
        tape.watch(acts)
        pooled = tf.reduce_mean(acts, axis=(1, 2))
        joined = tf.concat([pooled, tf.constant(META)], axis=-1)
        logits = tf.matmul(joined, logits_layer.kernel) + logits_layer.bias
        score = tf.reduce_sum(tf.gather(logits, [0, 1, 2], axis=1, batch_dims=1))
    grads = tape.gradient(score, acts).numpy()
    weights = grads.mean(axis=(1, 2))
    raw = np.maximum(np.einsum("nhwk,nk->nhw", acts.numpy(), weights), 0)
    up = np.maximum(tf.image.resize(raw[..., None], (16, 16)).numpy()[..., 0], 0)
    expected = up / up.max(axis=(1, 2), keepdims=True)
    _same(maps, expected)
    # The side input is held at each probe's values: other metadata, other probabilities.
    mine = cam.cam_details(model, inputs, "conv2", [0, 1, 2])
    other = cam.cam_details(model, {"image": IMAGES, "meta": META + 5}, "conv2", [0, 1, 2])
    assert np.abs(other.target_probability - mine.target_probability).max() > 1e-3
    assert cv.feature_maps(model, inputs, "conv1").shape == (3, 16, 16, 4)
    assert cv.backprop(model, [IMAGES, META], "conv2", rule="guided").shape == (3, 16, 16, 3)


def test_a_model_with_several_inputs_without_them_is_refused_naming_its_inputs():
    model = models.image_and_meta()
    with pytest.raises(ValueError, match=r"takes several inputs .*'image'.*'meta'.*dict"):
        cv.grad_cam(model, IMAGES)
    with pytest.raises(ValueError, match=r"has no \['meta'\]"):
        cv.feature_maps(model, {"image": IMAGES}, "conv1")


@pytest.mark.parametrize("source", ["dict", "dataset"])
def test_the_callback_takes_dict_probes_and_datasets_of_dict_features(logdir, source):
    model = models.image_and_meta()
    labels = np.array([0, 1, 2])
    probes = {"image": IMAGES, "meta": META}
    if source == "dataset":
        probes = tf.data.Dataset.from_tensor_slices((probes, labels)).batch(2)
    callback = CnnVisCallback(
        logdir, probes, None if source == "dataset" else labels,
        reference_images={"image": IMAGES, "meta": META}, filter_steps=2,
        max_filters_per_layer=2, top_k=2,
    )  # fmt: skip
    callback.set_model(model)
    callback.log_step(0)
    callback.close()
    steps = read_run(logdir)
    facts, _ = steps["grad_cam/conv2"][0]
    assert facts["labels"] == [0, 1, 2]
    expected = cam.cam_details(model, {"image": IMAGES, "meta": META}, "conv2", [0, 1, 2])
    np.testing.assert_allclose(facts["cam_max"], expected.cam_max, rtol=1e-5)
    assert {tag.split("/")[0] for tag in steps} >= {
        "probes", "feature_maps", "filter_patterns", "grad_cam", "deconvnet", "top_examples",
    }  # fmt: skip


def test_channels_first_models_are_refused_everywhere_with_one_message():
    model = keras.Sequential(
        [
            keras.Input((3, 16, 16)),
            keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv"),
            keras.layers.GlobalAveragePooling2D(data_format="channels_first"),
            keras.layers.Dense(3),
        ]
    )
    images = np.zeros((2, 3, 16, 16), np.float32)
    for call in (
        lambda: cv.conv_layers(model),
        lambda: cv.feature_maps(model, images, "conv"),
        lambda: cv.grad_cam(model, images),
        lambda: cv.filter_patterns(model, "conv"),
        lambda: cv.receptive_field(model, "conv"),
        lambda: CnnVisCallback("unused", images).set_model(model),
    ):
        with pytest.raises(ValueError, match=r"'conv' .*channels_first.*channels-last"):
            call()


def test_filter_patterns_and_deepdream_hold_the_other_inputs():
    model = models.image_and_meta()
    inputs = {"image": IMAGES, "meta": META}
    mean = {"meta": META.mean(axis=0)}
    held = cv.filter_patterns(model, "conv2", steps=4, side_inputs=mean, reference_images=IMAGES)
    from_images = cv.filter_patterns(model, "conv2", steps=4, reference_images=inputs)
    _same(held.images, from_images.images)  # the mean of the images' side inputs
    # conv2 does not see the metadata: the patterns equal the image-only model's.
    twin = models.sequential()
    for layer in twin.layers[:3]:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    _same(held.images, cv.filter_patterns(twin, "conv2", steps=4, reference_images=IMAGES).images)
    with pytest.raises(ValueError, match=r"besides the image; give side_inputs"):
        cv.filter_patterns(model, "conv2", steps=4)
    dream = cv.deepdream(model, inputs, "conv2", octaves=1, steps=2)
    assert dream.images.shape == IMAGES.shape
    _same(dream.images, cv.deepdream(twin, IMAGES, "conv2", octaves=1, steps=2).images)

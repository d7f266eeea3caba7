"""Networks users train today: the Keras backend, fully-convolutional inputs, no ReLUs."""

import keras
import models
import numpy as np
import pytest

import tb_cnnvis as cv
from tb_cnnvis import CnnVisCallback

IMAGES = np.random.default_rng(5).random((2, models.SIZE, models.SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_keras_backends_are_refused_first_with_the_backend_named(monkeypatch, backend):
    model = models.sequential()
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    expected = f"computes with TensorFlow, but Keras runs on the '{backend}' backend"
    calls = [
        lambda: CnnVisCallback("unused", IMAGES).set_model(model),
        lambda: cv.conv_layers(model),
        lambda: cv.feature_maps(model, IMAGES, "conv1"),
        lambda: cv.grad_cam(model, IMAGES),
        lambda: cv.backprop(model, IMAGES, "conv2"),
        lambda: cv.filter_patterns(model, "conv1", filters=[0], steps=1),
        lambda: cv.deepdream(model, IMAGES, "conv1"),
        lambda: cv.attribution(model, IMAGES, "smoothgrad"),
        lambda: cv.receptive_field(model, "conv2"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=expected) as error:
            call()
        assert "KERAS_BACKEND=tensorflow" in str(error.value)


def _fully_convolutional(classes=3):
    """A classifier that takes images of any size: (None, None, 3) in, a softmax out."""
    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(x)
    y = keras.layers.MaxPooling2D(name="pool1")(y)
    y = keras.layers.Conv2D(5, 3, activation="relu", name="conv2")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(classes, activation="softmax", name="head")(y))


def test_default_callback_on_a_fully_convolutional_model_writes_every_view_each_epoch(
    logdir, recwarn
):
    from tb_cnnvis import views
    from tb_cnnvis.testing import read_run

    rng = np.random.default_rng(0)
    x, y = rng.random((8, 40, 40, 3), dtype=np.float32), rng.integers(0, 3, 8)
    model = _fully_convolutional()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = CnnVisCallback(
        logdir, x[:2], y[:2], filters_every_n_epochs=1, filter_steps=2, max_filters_per_layer=2
    )
    model.fit(x, y, epochs=2, batch_size=4, callbacks=[cb], verbose=0)
    ours = [str(w.message) for w in recwarn if "cnnvis" in str(w.message)]
    assert ours == []
    run = read_run(logdir)
    for kind in views.DEFAULT_VIEWS:
        tags = [tag for tag in run if tag.startswith(kind + "/")]
        assert tags, kind
        for tag in tags:
            assert sorted(run[tag]) == [0, 1, 2], tag
    facts, _ = run["filter_patterns/conv2"][2]
    # conv2's field is 8 px (3x3, pool 2, 3x3): its canvas is 2 fields, within the probes' 40 px.
    assert facts["canvas"] == [16, 16]
    assert facts["receptive_field"]["size"] == [8, 8]
    assert cv.receptive_field(model, "conv2").size == (8, 8)
    # Outside the callback no images say the size: the smallest that holds the field.
    assert cv.filter_patterns(model, "conv2", filters=[0], steps=1).canvas.size == (16, 16)


def _gelu_net(size=models.SIZE, classes=3):
    """A ConvNeXt-like classifier: GELU convolutions and a LayerNorm, no ReLU anywhere."""
    x = keras.Input((size, size, 3))
    y = keras.layers.Conv2D(4, 3, activation="gelu", name="conv1")(x)
    y = keras.layers.LayerNormalization(name="norm")(y)
    y = keras.layers.Conv2D(5, 3, activation="gelu", name="conv2")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(classes, activation="softmax", name="head")(y))


def test_deconvnet_without_relu_warns_at_set_model_and_says_it_ran_as_a_plain_gradient(logdir):
    from tb_cnnvis.algorithms import backprop
    from tb_cnnvis.testing import read_run

    model = _gelu_net()
    cb = CnnVisCallback(logdir, IMAGES, views=["deconvnet", "guided_backprop", "saliency"])
    with pytest.warns(RuntimeWarning, match="no ReLU on the path") as caught:
        cb.set_model(model)
    said = [str(w.message) for w in caught if "ReLU" in str(w.message)]
    assert len(said) == 2 and "plain gradient" in said[0] and "['conv1', 'conv2']" in said[0]
    cb.log_step(0)
    cb.close()
    run = read_run(logdir)
    for kind in ("deconvnet", "guided_backprop"):
        facts, pngs = run[f"{kind}/conv2"][0]
        assert facts["rule"] == "gradient"
        assert facts["notes"] == [backprop.NO_RELU_NOTE]
        assert pngs == run["saliency/conv2"][0][1]  # the same pixels as the plain gradient
    assert run["saliency/conv2"][0][0]["rule"] == "gradient"
    assert "notes" not in run["saliency/conv2"][0][0]


def test_default_views_leave_out_deconvnet_where_it_would_repeat_the_plain_gradient(logdir):
    from tb_cnnvis import views

    cb = CnnVisCallback(logdir, IMAGES)
    with pytest.warns(
        RuntimeWarning, match="deconvnet view is left out of all its default"
    ) as said:
        cb.set_model(_gelu_net())
    assert "add 'saliency' to views" in str(said[0].message)
    assert cb.views == tuple(kind for kind in views.DEFAULT_VIEWS if kind != "deconvnet")
    mixed = keras.Sequential(
        [
            keras.Input((models.SIZE, models.SIZE, 3)),
            keras.layers.Conv2D(4, 3, activation="gelu", name="conv1"),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv2"),
            keras.layers.Conv2D(4, 3, activation="gelu", name="conv3"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    cb = CnnVisCallback(logdir, IMAGES)
    with pytest.warns(RuntimeWarning, match=r"left out of layer\(s\) \['conv1'\]"):
        cb.set_model(mixed)
    assert [ref.path for ref in cb._plan.layers["deconvnet"]] == ["conv2", "conv3"]


def test_deconvnet_with_relus_keeps_its_rule_and_says_nothing_more():
    from tb_cnnvis.algorithms import backprop

    model = models.sequential()
    result = backprop.projection_details(model, IMAGES, "conv2", rule="deconvnet")
    assert (result.rule, result.applied, result.notes) == ("deconvnet", "deconvnet", [])
    assert backprop.relus_up_to(model, "conv1") == 1  # conv1's own activation="relu"
    assert backprop.layers_without_relu(model, capture_refs(model)) == []


def capture_refs(model):
    from tb_cnnvis import capture

    return capture.select_layers(model, None)


def test_deepdream_rises_after_a_layernorm_and_stops_when_its_objective_stops_rising():
    from tb_cnnvis.algorithms import deepdream

    images = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    dream = cv.deepdream(_gelu_net(size=32), images, "norm", steps=6)
    # After a LayerNorm the mean square over channels is 1 for any image; the positive
    # part's is not, and grows.
    assert np.all(dream.objective > 1.2 * dream.start_objective)
    x = keras.Input((32, 32, 3))
    flat = keras.layers.Conv2D(2, 3, kernel_initializer="zeros", bias_initializer="ones")
    model = keras.Model(x, flat(x))  # the same output for every image: nothing to raise
    still = cv.deepdream(model, images, flat.name, steps=10, octaves=2)
    # The first step sets the mark to beat; PATIENCE more without rising end the ascent.
    assert still.steps_run.tolist() == [[deepdream.PATIENCE + 1] * 2] * 2
    assert still.notes == [
        "The objective stopped rising, so the ascent stopped early: 4.0 of 10 steps per "
        "octave on average."
    ]
    np.testing.assert_allclose(still.images, images, atol=1e-6)


def _grouped_net(size=32):
    """ConvNeXt's block shape: grouped (depthwise) 7x7 convolutions, which Keras runs through
    a new XLA function at every eager call."""
    x = keras.Input((size, size, 3))
    y = keras.layers.Conv2D(8, 3, activation="gelu", name="stem")(x)
    for i in range(6):
        y = keras.layers.Conv2D(8, 7, padding="same", groups=8, name=f"dw{i}")(y)
        y = keras.layers.LayerNormalization(name=f"ln{i}")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(3, activation="softmax", name="head")(y))


def test_filter_patterns_and_deepdream_never_run_the_model_eagerly_so_nothing_retraces(logdir):
    # Checking whether a smaller canvas runs used to call the model eagerly: on ConvNeXt
    # each grouped convolution then compiled anew, and TensorFlow warned of retracing.
    import logging

    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    # TensorFlow warns at most twice per function a process: forget earlier tests' counts.
    polymorphic_function._frequent_tracing_detector_manager._detectors.clear()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        model = _grouped_net()
        images = np.random.default_rng(2).random((2, 32, 32, 3)).astype(np.float32)
        cb = CnnVisCallback(
            logdir, images, views=["filter_patterns", "deepdream"], layers=["ln5"],
            max_filters_per_layer=2, filter_steps=2, budget=None,
        )  # fmt: skip
        cb.set_model(model)
        cb.log_step(0)  # six grouped convolutions before ln5: enough for the warning
        cb.close()
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert [m for m in messages if "retracing" in m] == []
    from tb_cnnvis.testing import read_run

    run = read_run(logdir)
    assert sorted(run) == ["deepdream/ln5", "filter_patterns/ln5", "probes"]
    assert all(list(steps) == [0] for steps in run.values())

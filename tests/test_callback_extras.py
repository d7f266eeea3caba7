"""CnnVisCallback beyond the probe views: top examples, per-epoch metrics, warn-and-skip."""

import keras
import models
import numpy as np
import pytest
import tensorflow as tf

from tb_cnnvis import metadata, testing, views
from tb_cnnvis.algorithms import cam, drift, faithfulness
from tb_cnnvis.algorithms import feature_maps as fm
from tb_cnnvis.algorithms import top_examples as te
from tb_cnnvis.callback import CnnVisCallback
from tb_cnnvis.input_range import to_display_rgb
from tb_cnnvis.testing import data_provider, read_run

FAST = {"filter_steps": 2, "max_filters_per_layer": 3}


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, models.SIZE, models.SIZE, 3), dtype=np.float32)
    return x, rng.integers(0, models.CLASSES, n)


def _fit(model, callbacks, epochs, learning_rate=1e-2):
    x, y = _data(16)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=8, callbacks=callbacks, verbose=0)


def _read(logdir):
    """``({tag: {step: (facts, pngs)}}, {tag: {step: value}})`` of the cnnvis run."""
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000, "scalars": 1000})
    steps = read_run(logdir)
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=1000)
    values = {tag: {d.step: d.value for d in s} for tag, s in scalars["cnnvis"].items()}
    return steps, values


class _Weights(keras.callbacks.Callback):
    """The model's weights at each step: 0 before training, ``e`` after epoch ``e``."""

    def on_train_begin(self, logs=None):
        self.at = {0: self.model.get_weights()}

    def on_epoch_end(self, epoch, logs=None):
        self.at[epoch + 1] = self.model.get_weights()


def test_top_examples_are_logged_per_step_and_are_the_true_top_k_at_that_step(logdir):
    model = models.sequential()
    probes, labels = _data(2)
    reference = _data(24, seed=1)[0]
    cb = CnnVisCallback(
        logdir,
        probes,
        labels,
        views=["feature_maps", "top_examples"],
        reference_images=reference,
        top_examples_every_n_epochs=2,
        top_k=4,
        max_filters_per_layer=3,
    )
    weights = _Weights()
    _fit(model, [weights, cb], epochs=3)
    steps, _ = _read(logdir)
    assert sorted(steps["top_examples/conv2"]) == [0, 2, 3]
    assert sorted(steps["feature_maps/conv2"]) == [0, 1, 2, 3]
    for step in (0, 2, 3):
        model.set_weights(weights.at[step])
        for layer in ("conv1", "conv2"):
            facts, pngs = steps[f"top_examples/{layer}"][step]
            maxima = fm.feature_maps(model, reference, layer).max(axis=(1, 2))[:, :3]
            order = np.stack([np.lexsort((np.arange(24), -column)) for column in maxima.T])[:, :4]
            assert facts["filters"] == [0, 1, 2] and facts["reference_count"] == 24
            np.testing.assert_array_equal(facts["indices"], order)
            expected = np.take_along_axis(maxima.T, order, axis=1)
            np.testing.assert_allclose(facts["activations"], expected, rtol=1e-5)
    first, last = (steps["top_examples/conv2"][s][0]["indices"] for s in (0, 3))
    assert first != last  # training changed the top examples, so each step was checked
    # The last step's atlases hold the patches and projections of the final model.
    top = te.top_examples(model, reference, "conv2", k=4, filters=[0, 1, 2])
    facts, pngs = steps["top_examples/conv2"][3]
    assert facts["atlases"] == ["patches", "projections"]
    assert facts["images"][0]["grid"] == [3, 4] and facts["images"][0]["tile"] == [8, 8]
    patch_tiles, _ = testing.decode_tiles(facts, pngs)
    np.testing.assert_array_equal(patch_tiles, to_display_rgb(top.patches.reshape(12, 8, 8, 3)))
    np.testing.assert_array_equal(facts["boxes"], top.boxes)
    assert facts["receptive_field"]["size"] == list(top.receptive_field.size)


def test_reference_images_turn_top_examples_on_unless_views_are_chosen():
    x, y = _data(2)
    reference = tf.data.Dataset.from_tensor_slices((_data(30)[0], np.zeros(30))).batch(8)
    cb = CnnVisCallback("unused", x, y, reference_images=reference, max_reference_images=20)
    assert cb.views == (*views.DEFAULT_VIEWS, "top_examples")
    assert cb.reference_images.shape == (20, 16, 16, 3)
    assert CnnVisCallback("unused", x, y).views == views.DEFAULT_VIEWS
    chosen = CnnVisCallback("unused", x, y, views=["grad_cam"], reference_images=x)
    assert chosen.views == ("grad_cam",)
    with pytest.raises(ValueError, match="top_examples view needs reference_images"):
        CnnVisCallback("unused", x, y, views=["top_examples"])
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        CnnVisCallback("unused", x, y, reference_images=x, top_k=0)
    wrong_size = CnnVisCallback("unused", x, y, reference_images=np.zeros((4, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"reference_images must have shape \(N, 16, 16, 3\)"):
        wrong_size.set_model(models.sequential())
    wrong_masks = CnnVisCallback("unused", x, y, probe_masks=np.ones((2, 8, 8)))
    with pytest.raises(ValueError, match=r"probe_masks must have shape \(2, 16, 16\)"):
        wrong_masks.set_model(models.sequential())


def test_metrics_are_scalars_at_every_logged_step_and_facts_of_their_tags(logdir):
    model = models.sequential()
    x, y = _data(4)
    masks = np.zeros((4, 16, 16), bool)
    masks[:, :, :8] = True  # the "object" is the left half
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps", "grad_cam"], probe_masks=masks, **FAST)
    _fit(model, [cb], epochs=2)
    steps, scalars = _read(logdir)
    metric = {
        tag[len(metadata.SCALAR_TAG_PREFIX) :]: values
        for tag, values in scalars.items()
        if tag.startswith(metadata.SCALAR_TAG_PREFIX)
    }
    assert sorted(metric) == [
        "cam_drift/gradcam",
        "dead_filters/conv1",
        "dead_filters/conv2",
        "deletion_auc/gradcam",
        "deletion_auc/random",
        "pointing_game/gradcam",
        "sparsity/conv1",
        "sparsity/conv2",
    ]
    for name, values in metric.items():
        assert sorted(values) == ([1, 2] if name.startswith("cam_drift") else [0, 1, 2]), name
    for step in (0, 1, 2):
        facts, _ = steps["grad_cam/conv2"][step]
        for name in ("deletion_auc/gradcam", "deletion_auc/random", "pointing_game/gradcam"):
            assert 0.0 <= metric[name][step] <= 1.0
        assert metric["pointing_game/gradcam"][step] == pytest.approx(
            np.mean(facts["pointing_hits"])
        )
        assert metric["deletion_auc/gradcam"][step] == pytest.approx(np.mean(facts["deletion_auc"]))
        assert facts["drift_from"] == (None if step == 0 else step - 1)
        if step:
            assert -1.0 <= metric["cam_drift/gradcam"][step] <= 1.0
            assert metric["cam_drift/gradcam"][step] == pytest.approx(np.mean(facts["drift"]))
    # The last step's values are those of the trained model, recomputed here.
    facts, _ = steps["grad_cam/conv2"][2]
    details = cam.cam_details(model, x, "conv2", class_index=y)
    scores = faithfulness.faithfulness_scores(model, x, details.maps, y, insertion=False)
    np.testing.assert_allclose(facts["deletion_auc"], scores.deletion, atol=1e-5)
    np.testing.assert_allclose(facts["deletion_auc_random"], scores.deletion_random, atol=1e-5)
    hits = faithfulness.pointing_game(details.maps, masks, 15 / 224 * 16).hits
    assert facts["pointing_hits"] == hits.tolist()
    for layer in ("conv1", "conv2"):
        maps = fm.feature_maps(model, x, layer)
        facts, _ = steps[f"feature_maps/{layer}"][2]
        assert facts["dead_filters"] == drift.dead_filters(maps).tolist()
        assert metric[f"dead_filters/{layer}"][2] == len(facts["dead_filters"])
        assert facts["sparsity"] == pytest.approx(drift.activation_sparsity(maps))
        assert 0.0 < facts["sparsity"] < 1.0
        assert metric[f"sparsity/{layer}"][2] == pytest.approx(facts["sparsity"])


def test_drift_is_exactly_one_when_the_model_does_not_change(logdir):
    model = models.sequential()
    x, y = _data(3)
    cb = CnnVisCallback(
        logdir,
        x,
        y,
        views=["feature_maps", "filter_patterns", "grad_cam"],
        filters_every_n_epochs=1,
        **FAST,
    )
    # In fit, views are not computed again on the same weights (test_budget); logged
    # outside fit, the same weights give the same results.
    cb.set_model(model)
    for step in range(3):
        cb.log_step(step)
    cb.close()
    steps, scalars = _read(logdir)
    prefix = metadata.SCALAR_TAG_PREFIX
    assert scalars[prefix + "cam_drift/gradcam"] == {1: 1.0, 2: 1.0}
    for layer in ("conv1", "conv2"):
        assert scalars[prefix + f"pattern_drift/{layer}"] == {1: 1.0, 2: 1.0}
        assert steps[f"filter_patterns/{layer}"][2][0]["drift"] == [1.0, 1.0, 1.0]
        sparsity = scalars[prefix + f"sparsity/{layer}"]
        assert sparsity[0] == sparsity[1] == sparsity[2]
    assert steps["grad_cam/conv2"][2][0]["drift"] == [1.0, 1.0, 1.0]
    deletion = scalars[prefix + "deletion_auc/gradcam"]
    assert deletion[0] == pytest.approx(deletion[2], abs=1e-6)


def test_a_failing_metric_warns_and_the_rest_is_logged(logdir, monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("boom")

    monkeypatch.setattr(faithfulness, "faithfulness_scores", broken)
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps", "grad_cam"], **FAST)
    with pytest.warns(
        RuntimeWarning, match=r"deletion_auc metric of layer 'conv2' failed at step 0"
    ):
        _fit(models.sequential(), [cb], epochs=1)
    steps, scalars = _read(logdir)
    assert sorted(steps["grad_cam/conv2"]) == [0, 1]
    assert steps["grad_cam/conv2"][1][0]["deletion_auc"] is None
    assert sorted(scalars["cnnvis_metrics/cam_drift/gradcam"]) == [1]
    assert "cnnvis_metrics/deletion_auc/gradcam" not in scalars
    assert sorted(scalars["cnnvis_metrics/sparsity/conv2"]) == [0, 1]


def test_a_layer_without_a_receptive_field_warns_and_other_layers_get_top_examples(logdir):
    inputs = keras.Input((models.SIZE, models.SIZE, 3))
    y = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(inputs)
    y = keras.layers.UpSampling2D(name="up")(y)
    y = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv_up")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(y))
    x, labels = _data(2)
    cb = CnnVisCallback(
        logdir, x, labels, views=["top_examples"], reference_images=_data(6)[0], top_k=2
    )
    with pytest.warns(RuntimeWarning, match=r"top_examples view of layer 'conv_up' failed"):
        _fit(model, [cb], epochs=1)
    steps, _ = _read(logdir)
    assert sorted(steps["top_examples/conv1"]) == [0, 1]
    assert "top_examples/conv_up" not in steps


def test_metrics_can_be_turned_off(logdir):
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps"], metrics=False)
    _fit(models.sequential(), [cb], epochs=1)
    steps, scalars = _read(logdir)
    assert sorted(scalars) == ["cnnvis_seconds/feature_maps"]
    assert "sparsity" not in steps["feature_maps/conv1"][0][0]


def test_log_step_logs_a_model_outside_fit_and_refuses_unknown_views(logdir):
    model = models.sequential()
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps", "grad_cam"])
    cb.set_model(model)
    cb.log_step(7, views=["grad_cam"])
    with pytest.raises(ValueError, match=r"Views \['deconvnet'\] are not logged"):
        cb.log_step(8, views=["deconvnet"])
    cb.close()
    steps, _ = _read(logdir)
    assert sorted(steps) == ["grad_cam/conv2", "probes"]
    assert sorted(steps["grad_cam/conv2"]) == [7] and sorted(steps["probes"]) == [7]

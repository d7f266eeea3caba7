"""CnnVisCallback: what a real ``model.fit`` writes, when, and how bad input is refused."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import models
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.compat.proto import event_pb2

from tb_cnnvis import callback, capture, metadata, testing, views
from tb_cnnvis.callback import CnnVisCallback
from tb_cnnvis.testing import data_provider

FAST = {"filter_steps": 2, "max_filters_per_layer": 3}


def _data(n=16, size=models.SIZE, classes=models.CLASSES):
    rng = np.random.default_rng(0)
    return rng.random((n, size, size, 3), dtype=np.float32), rng.integers(0, classes, n)


def _fit(model, callbacks, epochs=3, **kwargs):
    x, y = _data()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=8, callbacks=callbacks, verbose=0, **kwargs)


def _steps(logdir):
    """{(run, tag): [steps]} for cnnvis blob sequences and scalars, read as TensorBoard does."""
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000, "scalars": 1000})
    found = {}
    blobs = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=1000)
    for data in (blobs, scalars):
        for run, tags in data.items():
            for tag, series in tags.items():
                found[(run, tag)] = [datum.step for datum in series]
    return found


def test_three_epoch_fit_writes_exactly_these_tags_at_steps_0_to_3(logdir):
    model = models.nested()
    x, y = _data(4)
    cb = CnnVisCallback(logdir, x, y, filters_every_n_epochs=1, class_names=["a", "b", "c"], **FAST)
    _fit(model, [keras.callbacks.TensorBoard(logdir), cb])
    found = {key: steps for key, steps in _steps(logdir).items() if key[0] == "cnnvis"}
    layers = ["base/conv1", "base/conv2"]
    expected = {("cnnvis", "probes"): [0], ("cnnvis", "grad_cam/base/conv2"): [0, 1, 2, 3]}
    for kind in ("feature_maps", "filter_patterns", "deconvnet"):
        expected.update({("cnnvis", f"{kind}/{layer}"): [0, 1, 2, 3] for layer in layers})
    for view in (*views.DEFAULT_VIEWS, "metrics"):
        expected[("cnnvis", f"cnnvis_seconds/{view}")] = [0, 1, 2, 3]
    for name in ("deletion_auc/gradcam", "deletion_auc/random"):
        expected[("cnnvis", f"cnnvis_metrics/{name}")] = [0, 1, 2, 3]
    expected[("cnnvis", "cnnvis_metrics/cam_drift/gradcam")] = [1, 2, 3]
    for layer in layers:
        for name in ("dead_filters", "sparsity"):
            expected[("cnnvis", f"cnnvis_metrics/{name}/{layer}")] = [0, 1, 2, 3]
        expected[("cnnvis", f"cnnvis_metrics/pattern_drift/{layer}")] = [1, 2, 3]
    assert found == expected
    assert sorted(os.listdir(logdir)) == ["cnnvis", "train"]


def test_stored_steps_hold_the_models_real_feature_maps_and_predictions(logdir):
    model = models.sequential()
    x, y = _data(3)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps", "grad_cam"], **FAST)
    _fit(model, [cb], epochs=1)
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000})
    data = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )["cnnvis"]

    def last(tag):
        blobs = [provider.read_blob(ctx, blob_key=ref.blob_key) for ref in data[tag][-1].values]
        return testing.decode_step(blobs, os.path.join(logdir, "cnnvis"))

    facts, pngs = last("feature_maps/conv2")
    truth = keras.Model(model.inputs, model.get_layer("conv2").output).predict(x, verbose=0)
    recovered = testing.recover_feature_maps(facts, pngs)
    span = np.ptp(truth, axis=(1, 2), keepdims=True)
    assert np.all(np.abs(recovered - truth) <= span / 255 + 1e-4)
    facts, _ = last("grad_cam/conv2")
    probabilities = model.predict(x, verbose=0)
    assert facts["predicted"] == probabilities.argmax(axis=1).tolist()
    assert facts["class_index"] == y.tolist() == facts["labels"]  # explains the true label
    np.testing.assert_allclose(facts["probability"], probabilities.max(axis=1), rtol=1e-4)


def test_each_view_has_its_own_frequency_and_the_last_epoch_is_always_logged(logdir):
    x, y = _data(2)
    cb = CnnVisCallback(
        logdir,
        x,
        y,
        views=["feature_maps", "filter_patterns"],
        every_n_epochs=2,
        filters_every_n_epochs=3,
        **FAST,
    )
    _fit(models.sequential(), [cb], epochs=5)
    found = _steps(logdir)
    assert found[("cnnvis", "feature_maps/conv1")] == [0, 2, 4, 5]
    assert found[("cnnvis", "filter_patterns/conv2")] == [0, 3, 5]
    assert found[("cnnvis", "cnnvis_seconds/filter_patterns")] == [0, 3, 5]


def test_no_retracing_after_the_first_logged_epoch(logdir):
    model = models.relu_layers()
    x, y = _data(4)
    traces = []
    count = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: traces.append(capture.total_traces(model))
    )
    cb = CnnVisCallback(logdir, x, y, views=views.VIEWS, filters_every_n_epochs=1, **FAST)
    _fit(model, [cb, count], epochs=3)
    assert traces[0] > 0
    assert traces == [traces[0]] * 3


def test_default_layers_are_convolutions_and_cam_uses_the_last_4d_layer():
    model = models.functional()
    cb = CnnVisCallback("unused", _data(2)[0], views=views.VIEWS)
    cb.set_model(model)
    assert [ref.path for ref in cb._plan.layers["feature_maps"]] == ["conv1", "conv1b", "conv2"]
    assert [ref.path for ref in cb._plan.layers["grad_cam"]] == ["conv2"]


def test_layers_accept_names_paths_regex_and_per_view_dicts():
    model = models.nested()
    x = _data(2)[0]
    cb = CnnVisCallback("unused", x, layers={"feature_maps": "base/pool.*", "grad_cam": "conv1"})
    cb.set_model(model)
    assert [ref.path for ref in cb._plan.layers["feature_maps"]] == ["base/pool1"]
    assert [ref.path for ref in cb._plan.layers["grad_cam"]] == ["base/conv1"]
    assert [ref.path for ref in cb._plan.layers["deconvnet"]] == ["base/conv1", "base/conv2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"views": ["heatmap"]}, "choose from .*'feature_maps'"),
        ({"every_n_epochs": 0}, "every_n_epochs must be an int >= 1"),
        ({"filters_every_n_epochs": 1.5}, "filters_every_n_epochs must be an int"),
        ({"cam_target": "truth"}, "cam_target must be one of"),
        ({"layers": {"score_cam": "conv1"}}, "not logged"),
        ({"probe_images": np.zeros((4, 4))}, "probe_images must have shape"),
        ({"probe_labels": [0, 1, 2]}, "must be 2 labels"),
    ],
)
def test_init_refuses_bad_arguments(kwargs, message):
    arguments = {"log_dir": "unused", "probe_images": _data(2)[0], **kwargs}
    with pytest.raises(ValueError, match=message):
        CnnVisCallback(**arguments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": "conv9"}, r"'conv9' was not found.*\['conv1', 'pool1', 'conv2'\]"),
        ({"layers": "gap"}, "'gap' .*has output shape.*Layers with 4-D outputs"),
        ({"probe_images": np.zeros((2, 8, 8, 3))}, r"probe_images must have shape \(N, 16"),
        ({"probe_labels": [0, 7]}, r"probe_labels \[0, 7\] must lie in \[0, 3\)"),
        ({"class_names": ["a", "b"]}, "2 names but the model has 3 classes"),
        (
            {"probe_images": tf.data.Dataset.from_tensor_slices({"image": np.zeros((2, 4, 4, 3))})},
            r"probe_images must have shape \(N, 16, 16, 3\)",
        ),
        (
            {"probe_images": {"a": np.zeros((2, 16, 16, 3)), "b": np.zeros((2, 2))}},
            r"probe_images has no .*: model 'seq' takes the inputs",
        ),
    ],
)
def test_set_model_refuses_what_does_not_fit_the_model(kwargs, message):
    arguments = {"log_dir": "unused", "probe_images": _data(2)[0], **kwargs}
    cb = CnnVisCallback(**arguments)
    with pytest.raises(ValueError, match=message):
        cb.set_model(models.sequential())


def test_class_views_on_an_output_without_classes_are_refused_or_left_out():
    x = keras.Input((models.SIZE, models.SIZE, 3))
    tokens = keras.layers.Reshape((-1, 2))(keras.layers.Conv2D(2, 3, name="conv")(x))
    encoder = keras.Model(x, tokens)  # (N, positions, 2): no classes, values or pixels
    cb = CnnVisCallback("unused", _data(2)[0], views=["feature_maps", "grad_cam"])
    with pytest.raises(ValueError, match=r"\['grad_cam'\] cannot explain output .* of shape "
                       r"\(None, \d+, 2\).*callable target.*Views that apply: \['feature_maps'\]"):  # fmt: skip
        cb.set_model(encoder)
    defaults = CnnVisCallback("unused", _data(2)[0])
    with pytest.warns(RuntimeWarning, match=r"class views \['grad_cam'\] cannot explain.*left out"):
        defaults.set_model(encoder)
    assert "grad_cam" not in defaults.views and "feature_maps" in defaults.views
    agnostic = CnnVisCallback("unused", _data(2)[0], views=["eigencam"])
    agnostic.set_model(encoder)  # class-agnostic: runs on any output
    assert agnostic.views == ("eigencam",)


def test_unbuilt_sequential_and_subclassed_models_are_built_from_the_probes():
    model = keras.Sequential([keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten()])
    cb = CnnVisCallback("unused", _data(2)[0], views=["feature_maps"])
    cb.set_model(model)
    assert model.built and [ref.path for ref in cb._plan.layers["feature_maps"]] == ["conv"]

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    subclassed = Subclassed()
    cb = CnnVisCallback("unused", _data(2)[0], views=["feature_maps"])
    cb.set_model(subclassed)
    assert subclassed.built
    assert [r.path for r in cb._plan.layers["feature_maps"]] == [subclassed.conv.name]


def test_probes_from_a_dataset_with_labels_take_the_first_max_probes():
    x, y = _data(10)
    dataset = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(y, 3))).batch(4)
    cb = CnnVisCallback("unused", dataset, max_probes=6)
    np.testing.assert_array_equal(cb.probe_images, x[:6])
    np.testing.assert_array_equal(cb.probe_labels, y[:6])
    images_only = CnnVisCallback("unused", tf.data.Dataset.from_tensor_slices(x), max_probes=3)
    assert images_only.probe_images.shape == (3, 16, 16, 3) and images_only.probe_labels is None


def test_probe_images_are_stored_as_display_rgb_through_the_input_range(logdir):
    x = np.random.default_rng(3).integers(0, 256, (2, 16, 16, 1)).astype(np.float32)
    model = keras.Sequential(
        [keras.Input((16, 16, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten()]
    )
    cb = CnnVisCallback(logdir, x, views=["feature_maps"], input_range=(0, 255))
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_train_end()
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000})
    [datum] = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )["cnnvis"]["probes"]
    blobs = [provider.read_blob(ctx, blob_key=ref.blob_key) for ref in datum.values]
    facts, pngs = testing.decode_step(blobs, os.path.join(logdir, "cnnvis"))
    [first, _] = testing.decode_tiles(facts, pngs)
    assert facts["images"][0]["channels"] == 3 and facts["labels"] is None
    np.testing.assert_array_equal(first[0], np.repeat(x[0], 3, axis=-1).astype(np.uint8))


def test_nothing_is_written_before_training(logdir):
    cb = CnnVisCallback(logdir, _data(2)[0])
    cb.set_model(models.sequential())
    assert os.listdir(logdir) == []


def test_a_failing_view_warns_with_view_and_layer_and_the_rest_is_logged(logdir, monkeypatch):
    def broken(*args):
        raise FloatingPointError("boom")

    monkeypatch.setattr(views.cams.FAMILY, "write", broken)
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps", "grad_cam"], **FAST)
    with pytest.warns(RuntimeWarning, match=r"grad_cam view of layer 'conv2' failed at step 0"):
        _fit(models.sequential(), [cb], epochs=2)
    found = _steps(logdir)
    assert found[("cnnvis", "feature_maps/conv2")] == [0, 1, 2]
    assert ("cnnvis", "grad_cam/conv2") not in found


def test_nan_weights_mid_training_do_not_stop_training_or_other_views(logdir):
    model = models.sequential()

    def poison(epoch, logs):
        if epoch == 0:
            kernel = model.get_layer("conv2").kernel
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=views.VIEWS, filters_every_n_epochs=1, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(model, [keras.callbacks.LambdaCallback(on_epoch_end=poison), cb], epochs=2)
    assert any("conv2" in str(w.message) for w in caught)
    found = _steps(logdir)
    assert found[("cnnvis", "feature_maps/conv1")] == [0, 1, 2]
    assert found[("cnnvis", "deconvnet/conv1")] == [0, 1, 2]


def test_verbose_prints_one_line_per_logged_step(logdir, capsys):
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps", "grad_cam"], verbose=1)
    _fit(models.sequential(), [cb], epochs=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cnnvis")]
    assert [line.split(":")[0] for line in lines] == [
        "cnnvis step 0",
        "cnnvis step 1",
        "cnnvis step 2",
    ]
    assert "feature_maps " in lines[1] and "grad_cam " in lines[1] and "total" in lines[1]


def test_verbose_lines_come_after_keras_finishes_the_epoch_line(logdir, capsys):
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps"], verbose=1)
    model = models.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, callbacks=[cb], verbose=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    tags = [
        "cnnvis" if line.startswith("cnnvis") else "epoch" if line.startswith("Epoch") else "bar"
        for line in lines
    ]
    # step 0 before training, then each epoch's Keras line is complete before our line.
    assert tags == ["cnnvis", "epoch", "bar", "cnnvis", "epoch", "bar", "cnnvis"], lines


def test_a_second_fit_with_initial_epoch_continues_the_steps(logdir):
    model = models.sequential()
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps"])
    _fit(model, [cb], epochs=2)
    _fit(model, [cb], epochs=4, initial_epoch=2)
    assert _steps(logdir)[("cnnvis", "feature_maps/conv1")] == [0, 1, 2, 3, 4]


def test_logs_to_a_tf_gfile_filesystem():
    logdir = "ram://cnnvis-test/logs"
    x, y = _data(2)
    _fit(models.sequential(), [CnnVisCallback(logdir, x, y, views=["grad_cam"])], epochs=1)
    files = tf.io.gfile.glob(f"{logdir}/cnnvis/events.out.tfevents.*")
    tags = set()
    for record in tf.data.TFRecordDataset(files):
        event = event_pb2.Event.FromString(record.numpy())
        tags |= {(value.tag, event.step) for value in event.summary.value}
    assert {("probes", 0), ("grad_cam/conv2", 0), ("grad_cam/conv2", 1)} <= tags


@pytest.mark.parametrize(
    ("tf_config", "chief"),
    [
        (None, True),
        ({"chief": ["a:1"], "worker": ["b:1"]}, {"chief": True, "worker": False}),
        ({"worker": ["a:1", "b:1"]}, {"worker": True}),
        ({"worker": ["a:1", "b:1"], "evaluator": ["c:1"]}, {"evaluator": False}),
    ],
)
def test_only_the_chief_writes_under_multi_worker(monkeypatch, tf_config, chief):
    if tf_config is None:
        assert callback.is_chief(tf.distribute.get_strategy())
        return
    resolver_class = tf.distribute.cluster_resolver.TFConfigClusterResolver
    for task_type, expected in chief.items():
        for task_id in range(len(tf_config[task_type])):
            config = {"cluster": tf_config, "task": {"type": task_type, "index": task_id}}
            monkeypatch.setenv("TF_CONFIG", json.dumps(config))
            writes = expected and task_id == 0
            assert callback.is_chief(resolver_class()) is writes, (task_type, task_id)


def test_a_non_chief_task_writes_nothing(logdir, monkeypatch):
    config = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))

    class Worker:
        cluster_resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()

    model = models.sequential()
    monkeypatch.setattr(type(model), "distribute_strategy", Worker(), raising=False)
    x, y = _data(2)
    cb = CnnVisCallback(logdir, x, y, views=["feature_maps"])
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0)
    assert os.listdir(logdir) == []


MIRRORED = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, models
from tb_cnnvis import CnnVisCallback, views
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    model = models.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
x = np.random.default_rng(0).random((16, 16, 16, 3), dtype=np.float32)
y = np.arange(16) % 3
cb = CnnVisCallback(sys.argv[1], x[:2], y[:2], views=views.VIEWS, filters_every_n_epochs=1,
                    filter_steps=2, max_filters_per_layer=2)
model.fit(x, y, epochs=2, batch_size=8, callbacks=[cb], verbose=0)
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(logdir, tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(textwrap.dedent(MIRRORED))
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(script), logdir], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = _steps(logdir)
    for view in views.VIEWS:
        assert found[("cnnvis", f"cnnvis_seconds/{view}")] == [0, 1, 2]
    assert found[("cnnvis", "score_cam/conv2")] == [0, 1, 2]
    assert found[("cnnvis", "filter_patterns/conv1")] == [0, 1, 2]

"""Snapshots: the callback keeps the model at filter-pattern steps and the last one, within a
byte budget, rebuildable in safe mode; failures and unrebuildable models are warned about."""

import json
import os
import warnings

import keras
import models
import numpy as np

from tb_cnnvis import snapshots
from tb_cnnvis.callback import CnnVisCallback

FAST = {"filter_steps": 2, "max_filters_per_layer": 2, "views": ["feature_maps"]}


def _fit(logdir, epochs, model=None, **options):
    """Fit a tiny model with the callback; return (model, callback, cnnvis warnings)."""
    rng = np.random.default_rng(0)
    x = rng.random((8, models.SIZE, models.SIZE, 3), dtype=np.float32)
    y = rng.integers(0, models.CLASSES, 8)
    model = model or models.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = CnnVisCallback(logdir, x[:2], y[:2], **{**FAST, **options})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[cb])
    return model, cb, [str(w.message) for w in caught if "cnnvis" in str(w.message)]


def test_snapshots_at_filter_steps_and_the_last_rebuild_in_safe_mode(logdir):
    model, cb, said = _fit(logdir, 3, filters_every_n_epochs=2)
    assert said == []
    folder = snapshots.model_dir(cb.run_dir)
    found = snapshots.list_snapshots(folder)
    assert list(found) == [0, 2, 3]
    assert not [name for name in os.listdir(folder) if name.endswith(".part")]
    rebuilt = keras.saving.load_model(found[3], safe_mode=True, compile=False)
    for mine, theirs in zip(model.get_weights(), rebuilt.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    untrained = keras.saving.load_model(found[0], safe_mode=True, compile=False)
    assert not np.array_equal(untrained.get_weights()[0], model.get_weights()[0])
    with open(os.path.join(folder, snapshots.META_FILE)) as source:
        meta = json.load(source)
    assert meta["input_range"] == {"low": [0.0], "high": [1.0], "bgr": False}
    assert meta["labels"] == cb.probe_labels.tolist()
    stored = np.load(os.path.join(folder, snapshots.PROBES_FILE))["images"]
    np.testing.assert_array_equal(stored, cb.probe_images)


def test_keep_models_false_keeps_none(logdir):
    _, cb, _ = _fit(logdir, 1, keep_models=False)
    assert not os.path.exists(snapshots.model_dir(cb.run_dir))


def test_thinned_evenly_never_the_last():
    sizes = dict.fromkeys(range(0, 90, 10), 10)
    assert snapshots.thinned(list(sizes), sizes, 50) == [10, 30, 50, 70]
    assert snapshots.thinned([0, 10], {0: 10, 10: 10}, 5) == [0]
    assert snapshots.thinned([5], {5: 100}, 1) == []


def test_budget_keeps_the_newest_and_thins_the_older(logdir):
    trained = models.sequential()
    trained.compile("adam", "sparse_categorical_crossentropy")
    trained.train_on_batch(np.zeros((1, models.SIZE, models.SIZE, 3), np.float32), np.zeros(1))
    size = os.path.getsize(_save(trained, logdir))
    _, cb, said = _fit(logdir, 4, filters_every_n_epochs=1, max_model_bytes=int(size * 3.5))
    found = snapshots.list_snapshots(snapshots.model_dir(cb.run_dir))
    assert list(found) == [0, 2, 4]  # 0..4 thinned evenly to three, the newest kept
    assert said == []


def _save(model, logdir):
    """Save ``model`` beside the logs; return the path."""
    path = os.path.join(logdir, "size.keras")
    model.save(path)
    return path


def test_a_failed_write_warns_and_training_goes_on(logdir):
    run_dir = os.path.join(logdir, "cnnvis", "plugins", "cnnvis")
    os.makedirs(run_dir)
    open(os.path.join(run_dir, "models"), "w").close()  # a file where the folder should be
    _, _, said = _fit(logdir, 2)
    assert len(said) == 1 and "could not keep a model snapshot" in said[0]
    assert "training goes on" in said[0]


class Doubler(keras.layers.Layer):
    """A custom layer defined where TensorBoard cannot import it."""

    def call(self, inputs):
        return inputs * 2.0


Doubler.__module__ = "__main__"


def test_an_unrebuildable_model_is_said_at_set_model_with_what_works(logdir):
    inputs = keras.Input((models.SIZE, models.SIZE, 3))
    hidden = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(Doubler()(inputs))
    pooled = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(models.CLASSES, "softmax")(pooled))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CnnVisCallback(
            logdir, np.zeros((1, models.SIZE, models.SIZE, 3), np.float32), **FAST
        ).set_model(model)
    said = [str(w.message) for w in caught if "snapshots cannot be rebuilt" in str(w.message)]
    assert len(said) == 1
    assert "Doubler" in said[0] and "__main__" in said[0]
    assert "register_keras_serializable" in said[0] and "cv.explore(logdir" in said[0]

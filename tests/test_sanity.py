"""Model-randomization sanity check: the user's model is untouched, Grad-CAM loses its map."""

import keras
import numpy as np
import pytest
from keras import layers

from tb_cnnvis.algorithms import sanity
from tests import models

SIZE = 24


def bars(count, seed):
    """Noise images with one bright bar each: label 0 horizontal, 1 vertical."""
    rng = np.random.default_rng(seed)
    images = rng.random((count, SIZE, SIZE, 3), dtype=np.float32) * 0.5
    labels = rng.integers(0, 2, count)
    for image, label, (y, x) in zip(images, labels, rng.integers(2, SIZE - 14, (count, 2))):
        height, width = (12, 3) if label else (3, 12)
        image[y : y + height, x : x + width] = 1.0
    return images, labels


@pytest.fixture(scope="module")
def trained():
    """A two-conv CNN trained to tell the bars apart (about 1-2 s on two cores)."""
    keras.utils.set_random_seed(0)
    images, labels = bars(320, seed=0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(2, activation="softmax", name="head"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(images, labels, epochs=15, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def probes():
    return bars(8, seed=1)


def test_trained_model_learned_the_task(trained, probes):
    predicted = trained.predict(probes[0], verbose=0).argmax(axis=1)
    assert (predicted == probes[1]).mean() >= 0.75


def test_grad_cam_no_longer_matches_after_full_randomization(trained, probes):
    before = [w.copy() for w in trained.get_weights()]
    outputs = trained.predict(probes[0], verbose=0)
    table = sanity.randomization_check(trained, probes[0], layer="conv2")
    assert set(table) == set(sanity.METHODS)
    for method, rows in table.items():
        assert [name for name, _ in rows] == ["head", "conv2", "conv1"], method
        assert all(-1.0 <= rho <= 1.0 for _, rho in rows)
    assert table["gradcam"][-1][1] < 0.5
    # The user's model was not touched.
    for old, new in zip(before, trained.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_array_equal(trained.predict(probes[0], verbose=0), outputs)


def test_same_seed_gives_the_same_table_and_another_seed_another():
    model = models.sequential()
    images = np.random.default_rng(0).random((3, models.SIZE, models.SIZE, 3), np.float32)
    first = sanity.randomization_check(model, images, methods=("gradient",), seed=4)
    again = sanity.randomization_check(model, images, methods=("gradient",), seed=4)
    other = sanity.randomization_check(model, images, methods=("gradient",), seed=5)
    assert first == again
    assert first != other


def test_constant_weights_stay_constant_so_that_layer_changes_nothing():
    # relu_layers has an untrained BatchNormalization (gamma 1, beta 0): re-drawing it keeps
    # it, so its row repeats the row of the layer above. Nested layers are named by path.
    model = models.relu_layers()
    images = np.random.default_rng(1).random((3, models.SIZE, models.SIZE, 3), np.float32)
    table = sanity.randomization_check(model, images, methods=("gradcam", "guided"))
    assert [name for name, _ in table["guided"]] == ["dense", "bn2", "conv2", "conv1"]
    assert table["guided"][0][1] == table["guided"][1][1]
    assert table["gradcam"][0][1] == table["gradcam"][1][1]
    nested = sanity.randomization_check(models.nested(), images, methods=("deconvnet",))
    assert [name for name, _ in nested["deconvnet"]] == ["head", "base/conv2", "base/conv1"]


def test_unknown_method_is_refused_with_the_known_ones():
    model = models.sequential()
    images = np.zeros((1, models.SIZE, models.SIZE, 3), np.float32)
    with pytest.raises(ValueError, match="gradcam"):
        sanity.randomization_check(model, images, methods=("lime",))

"""The default callback on every head users train: binary, multi-label, regression, segmentation.

Each model is fit for one epoch with the default views; every view the callback keeps must
write at steps 0 and 1, and the class views' facts must say what they explained.
"""

import warnings

import keras
import numpy as np
import pytest
from keras import layers

from tb_cnnvis import imaging, targets
from tb_cnnvis.callback import CnnVisCallback
from tb_cnnvis.testing import read_run

SIZE = 16


def _data(count=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((count, SIZE, SIZE, 3), dtype=np.float32)


def _trunk(x):
    x = layers.Conv2D(4, 3, activation="relu", padding="same", name="conv1")(x)
    return layers.Conv2D(4, 3, activation="relu", padding="same", name="conv2")(x)


def _classifier(units, activation, loss):
    x = keras.Input((SIZE, SIZE, 3))
    y = layers.Dense(units, activation=activation, name="head")(
        layers.GlobalAveragePooling2D()(_trunk(x))
    )
    model = keras.Model(x, y)
    model.compile("sgd", loss)
    return model


def _segmenter(classes=3):
    x = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(x, layers.Conv2D(classes, 1, activation="softmax", name="seg")(_trunk(x)))
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def _fit(logdir, model, x, y, probe_labels, **kwargs):
    callback = CnnVisCallback(logdir, x[:4], probe_labels, max_filters_per_layer=2,
                              filter_steps=4, **kwargs)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no view may fail at run time
        model.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[callback])
    return callback, read_run(logdir)


def _check_every_view_written(callback, steps):
    for kind in callback.views:
        tags = [tag for tag in steps if tag.startswith(f"{kind}/")]
        assert tags, f"{kind} wrote nothing"
        for tag in tags:
            assert len(steps[tag]) == 2, f"{tag} wrote {len(steps[tag])} steps, not 2"


def test_a_binary_sigmoid_classifier_takes_0_1_labels_and_two_names(logdir):
    x = _data()
    y = np.array([0, 1] * 4)
    model = _classifier(1, "sigmoid", "binary_crossentropy")
    callback, steps = _fit(logdir, model, x, y, y[:4], class_names=["cat", "dog"],
                           cam_classes=2)  # fmt: skip
    _check_every_view_written(callback, steps)
    facts, pngs = steps["grad_cam/conv2"][0]
    assert facts["head"] == "binary" and facts["labels"] == [0, 1, 0, 1]
    assert facts["class_index"][:2] in ([0, 1], [1, 0]) and len(pngs) == 8
    captions = dict(zip(facts["class_index"], facts["targets"]))
    assert captions == {0: "class 0 (cat): negated logit", 1: "class 1 (dog): logit"}
    p = model(x[:4]).numpy()[:, 0]
    probability = dict(zip(facts["class_index"][:2], facts["target_probability"][:2]))
    np.testing.assert_allclose([probability[0], probability[1]], [1 - p[0], p[0]], rtol=1e-4)
    assert set(facts["predicted"]) <= {0, 1}


def test_a_multi_label_head_explains_each_label(logdir):
    x = _data()
    y = (np.random.default_rng(1).random((8, 3)) > 0.5).astype("float32")
    model = _classifier(3, "sigmoid", "binary_crossentropy")
    callback, steps = _fit(logdir, model, x, y, None, cam_classes=[0, 2])
    _check_every_view_written(callback, steps)
    facts, _ = steps["grad_cam/conv2"][1]
    assert facts["head"] == "multilabel" and facts["class_index"] == [0, 2] * 4
    sigmoid = model(x[:4]).numpy()
    np.testing.assert_allclose(facts["target_probability"], sigmoid[:, [0, 2]].reshape(-1),
                               rtol=1e-4)  # fmt: skip


def test_a_regression_head_takes_float_labels_and_stores_the_values(logdir):
    x = _data()
    y = np.linspace(-1.0, 2.0, 8)
    model = _classifier(1, None, "mse")
    callback, steps = _fit(logdir, model, x, y, y[:4])
    _check_every_view_written(callback, steps)
    facts, _ = steps["grad_cam/conv2"][1]
    assert facts["head"] == "regression" and facts["targets"] == ["regression: raise"] * 4
    np.testing.assert_allclose(facts["labels"], y[:4])
    np.testing.assert_allclose(facts["values"], model(x[:4]).numpy()[:, 0], rtol=1e-4)
    assert facts["deletion_auc"] is None  # no probability to delete: the metric is null
    assert steps["probes"][0][0]["labels"] == pytest.approx(y[:4].tolist())


def test_a_segmentation_head_explains_its_largest_class_with_the_predicted_mask(logdir):
    x = _data()
    y = np.random.default_rng(2).integers(0, 3, (8, SIZE, SIZE))
    model = _segmenter()
    callback, steps = _fit(logdir, model, x, y, None, class_names=["sky", "road", "car"])
    _check_every_view_written(callback, steps)
    facts, pngs = steps["grad_cam/conv2"][1]
    assert facts["head"] == "segmentation"
    roles = [image.get("role") for image in facts["images"]]
    assert roles == [None, "mask"] * 4 and len(pngs) == 8
    predicted = model(x[:4]).numpy().argmax(-1)
    for i, c in enumerate(facts["class_index"]):
        assert np.bincount(predicted[i].reshape(-1), minlength=3).argmax() == c
        mask = imaging.decode_png(pngs[2 * i + 1])[..., 0]
        np.testing.assert_array_equal(mask == 255, predicted[i] == c)
        names = ["sky", "road", "car"]
        assert (
            facts["targets"][i] == f"segmentation: class {c} ({names[c]}) over its predicted mask"
        )


def test_a_segmentation_target_with_a_mask_and_a_lowered_regression(logdir):
    x = _data()
    box = np.zeros((SIZE, SIZE))
    box[4:10, 4:10] = 1
    model = _segmenter()
    callback = CnnVisCallback(logdir, x[:2], views=["grad_cam"],
                              target=targets.Segmentation(1, mask=box))  # fmt: skip
    callback.set_model(model)
    callback.log_step(0)
    callback.close()
    facts, pngs = read_run(logdir)["grad_cam/conv2"][0]
    assert facts["class_index"] == [1, 1]
    assert facts["targets"] == ["segmentation: class 1 over the given mask"] * 2
    np.testing.assert_array_equal(imaging.decode_png(pngs[1])[..., 0] == 255, box == 1)


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (lambda: _classifier(3, "softmax", "categorical_crossentropy"),
         {"probe_labels": [0.5, 1.5]}, r"class indices 0 to 2.*Float labels are for regression"),
        (lambda: _classifier(1, "sigmoid", "binary_crossentropy"),
         {"probe_labels": [0, 2]}, r"\[0, 2\] must lie in \[0, 2\)"),
        (lambda: _classifier(1, "sigmoid", "binary_crossentropy"),
         {"class_names": ["a", "b", "c"]}, r"3 names but the model has 2 classes \(class 0 first"),
        (lambda: _classifier(1, None, "mse"),
         {"class_names": ["a"]}, r"class_names cannot apply.*regression"),
        (lambda: _classifier(1, None, "mse"),
         {"cam_classes": 2}, r"cam_classes=2 .*use cam_classes=1"),
        (_segmenter, {"probe_labels": [0, 1]}, r"probe_labels cannot apply.*segmentation"),
        (_segmenter, {"target": targets.Segmentation(0, mask=np.ones((3, 3)))},
         r"mask of shape \(3, 3\) does not fit"),
        (lambda: _classifier(3, "softmax", "categorical_crossentropy"),
         {"target": lambda z: z}, r"one score per image"),
    ],
)  # fmt: skip
def test_labels_names_and_targets_that_do_not_fit_the_head_fail_at_set_model(make, kwargs, message):
    callback = CnnVisCallback("unused", _data(2), views=["grad_cam"], **kwargs)
    with pytest.raises(ValueError, match=message):
        callback.set_model(make())

"""CnnVisCallback: class attributions at the input, and several classes per probe."""

import models
import numpy as np
import pytest

import tb_cnnvis as cv
from tb_cnnvis import metadata, views
from tb_cnnvis.algorithms import attribution, faithfulness
from tb_cnnvis.callback import CnnVisCallback
from tb_cnnvis.epoch_metrics import EpochMetrics
from tb_cnnvis.testing import data_provider, read_run
from tb_cnnvis.views.explained import Explained

SIZE = models.SIZE


def _probes(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, SIZE, SIZE, 3), dtype=np.float32), rng.integers(0, models.CLASSES, n)


def _log(logdir, model, x, y, **kwargs):
    callback = CnnVisCallback(logdir, x, y, **kwargs)
    callback.set_model(model)
    callback.log_step(0)
    callback.close()
    provider, ctx, eid = data_provider(logdir, {"scalars": 1000})
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=10)
    return read_run(logdir), {tag: s[0].value for tag, s in scalars["cnnvis"].items()}


def _gray(pngs):
    from tb_cnnvis import imaging

    return np.stack([imaging.decode_png(png)[..., 0] for png in pngs]).astype(np.float64)


def test_attribution_views_store_the_signed_maps_at_the_input_with_their_metrics(logdir):
    model = models.sequential()
    x, y = _probes()
    masks = np.zeros((3, SIZE, SIZE), bool)
    masks[:, 4:12, 4:12] = True
    steps, scalars = _log(logdir, model, x, y, views=["grad_cam", *attribution.METHODS],
                          layers="conv1", probe_masks=masks)  # fmt: skip
    assert sorted(steps) == ["grad_cam/conv1", "integrated_gradients/input", "occlusion/input",
                             "probes", "smoothgrad/input"]  # fmt: skip
    for method in attribution.METHODS:
        facts, pngs = steps[f"{method}/input"][0]
        expected = attribution.attribution_details(model, x, method, y)
        assert facts["class_index"] == y.tolist() and len(pngs) == 3
        assert facts["settings"] == expected.settings
        np.testing.assert_allclose(facts["scale"], np.abs(expected.maps).max(axis=(1, 2)),
                                   rtol=1e-5)  # fmt: skip
        stored = (_gray(pngs) - 128) / 127 * np.array(facts["scale"])[:, None, None]
        assert np.abs(stored - expected.maps).max() <= max(facts["scale"]) / 254 + 1e-6
        positive = np.maximum(expected.maps, 0)
        scores = faithfulness.faithfulness_scores(model, x, positive, y, insertion=False)
        np.testing.assert_allclose(facts["deletion_auc"], scores.deletion, atol=1e-5)
        hits = faithfulness.pointing_game(positive, masks, 15 / 224 * SIZE).hits
        assert facts["pointing_hits"] == hits.tolist()
        name = metadata.SCALAR_TAG_PREFIX + f"deletion_auc/{method}"
        assert scalars[name] == pytest.approx(np.mean(facts["deletion_auc"]))


def test_cam_classes_k_explains_the_k_most_probable_classes_of_each_probe(logdir):
    model = models.sequential()
    x, y = _probes()
    steps, _ = _log(logdir, model, x, y, views=["grad_cam", "eigencam", "occlusion"],
                    cam_classes=2)  # fmt: skip
    probabilities = model(x).numpy()
    top = np.argsort(-probabilities, axis=1)[:, :2]
    facts, pngs = steps["grad_cam/conv2"][0]
    assert len(pngs) == 6 and facts["labels"] == y.tolist()
    assert [(i["probe"], i["class_index"]) for i in facts["images"]] == [
        (p, int(top[p, r])) for p in range(3) for r in range(2)
    ]
    assert facts["class_index"] == top.reshape(-1).tolist()
    assert facts["predicted"] == np.repeat(probabilities.argmax(1), 2).tolist()
    np.testing.assert_allclose(facts["target_probability"], np.sort(probabilities, 1)[:, ::-1][
        :, :2].reshape(-1), rtol=1e-5)  # fmt: skip
    for i, (probe, c) in enumerate(zip(np.repeat(range(3), 2), top.reshape(-1))):
        expected = cv.grad_cam(model, x[probe], "conv2", class_index=int(c))[0]
        assert np.abs(_gray(pngs[i : i + 1])[0] / 255 - expected).max() <= 0.5 / 255 + 1e-6
    assert len(facts["deletion_auc"]) == len(facts["cam_max"]) == 6
    facts, pngs = steps["occlusion/input"][0]
    assert len(pngs) == 6 and facts["class_index"] == top.reshape(-1).tolist()
    facts, pngs = steps["eigencam/conv2"][0]  # class-agnostic: one map per probe
    assert len(pngs) == 3 and all("class_index" not in i for i in facts["images"])


def test_cam_classes_list_explains_those_classes_for_every_probe(logdir):
    x, y = _probes(2)
    steps, _ = _log(logdir, models.functional(), x, y, views=["layercam"], cam_classes=[2, 0])
    facts, pngs = steps["layercam/conv2"][0]
    assert facts["class_index"] == [2, 0, 2, 0] and len(pngs) == 4
    assert [i["probe"] for i in facts["images"]] == [0, 0, 1, 1]


def test_a_list_of_one_class_is_one_map_per_probe(logdir):
    x, y = _probes(2)
    steps, _ = _log(logdir, models.sequential(), x, y, views=["xgradcam"], cam_classes=[1])
    facts, pngs = steps["xgradcam/conv2"][0]
    assert facts["class_index"] == [1, 1] and len(pngs) == 2
    assert all("class_index" not in image for image in facts["images"])


def test_one_class_per_probe_keeps_the_format_of_one_map_per_probe(logdir):
    x, y = _probes()
    steps, _ = _log(logdir, models.sequential(), x, y, views=["grad_cam", "smoothgrad"])
    for tag in ("grad_cam/conv2", "smoothgrad/input"):
        facts, pngs = steps[tag][0]
        assert facts["class_index"] == y.tolist() and len(pngs) == 3
        assert facts["images"] == [
            {"probe": p, "grid": [1, 1], "tile": [SIZE, SIZE], "count": 1, "channels": 1}
            for p in range(3)
        ]
        assert set(facts) == {*views.get(tag.split("/")[0]).family.facts, "seconds", "images"}


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, r"cam_classes must be >= 1"), ([], r"non-empty list of distinct class indices"),
     ([1, 1], r"distinct"), ([0.5], r"got \[0.5\]"), ("top3", r"an int k >= 1"),
     (True, r"got True")],
)  # fmt: skip
def test_cam_classes_is_checked_at_init(value, message):
    x, y = _probes()
    with pytest.raises(ValueError, match=message):
        CnnVisCallback("logs", x, y, cam_classes=value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(4, r"cam_classes=4 asks for more classes per probe than the model has \(3\)"),
     ([0, 7], r"cam_classes \[7\] out of range: the model has 3 classes \(0 to 2\)")],
)  # fmt: skip
def test_cam_classes_is_checked_against_the_model_at_set_model(value, message):
    x, y = _probes()
    callback = CnnVisCallback("logs", x, y, views=["grad_cam"], cam_classes=value)
    with pytest.raises(ValueError, match=message):
        callback.set_model(models.sequential())


def test_attributions_take_no_layer():
    x, y = _probes()
    with pytest.raises(ValueError, match=r"\['occlusion'\], which explain the input and take no"):
        CnnVisCallback("logs", x, y, views=["occlusion"], layers={"occlusion": "conv1"})


class _Details:
    def __init__(self, maps, classes):
        self.maps, self.class_index = maps, np.asarray(classes)


def test_drift_of_a_map_whose_class_changed_is_null():
    rng = np.random.default_rng(1)
    maps = rng.random((4, 8, 8))
    probes = type("Probes", (), {"images": None, "masks": None})()
    plan = type("Plan", (), {"model": None, "probes": probes})()
    metrics, view = EpochMetrics(), views.get("grad_cam")
    for step, classes in ((0, [0, 1, 2, 0]), (1, [0, 2, 2, 0])):
        metrics.begin(step, {"grad_cam": "conv2"})
        explained = Explained(_Details(maps, classes), np.array([0, 0, 1, 1]))
        facts = metrics.class_maps(view, "other", plan, explained)
    assert facts["drift_from"] == 0
    assert [None if np.isnan(r) else round(r, 6) for r in facts["drift"]] == [1.0, None, 1.0, 1.0]

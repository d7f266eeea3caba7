"""``tb-cnnvis log``: saved checkpoints become steps, read back as TensorBoard reads them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import models
import numpy as np
import pytest
from PIL import Image

from tb_cnnvis import cli, metadata, testing
from tb_cnnvis.algorithms import feature_maps as fm
from tb_cnnvis.testing import data_provider, read_run

CHEAP = ["--filter-steps", "2", "--max-filters", "2", "--quiet"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Three checkpoints of a tiny model (epochs 1, 2, 10), a class folder and .npy files."""
    root = tmp_path_factory.mktemp("saved")
    keras.utils.set_random_seed(0)
    model = models.sequential()
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((16, 16, 16, 3), dtype=np.float32)
    y = np.arange(16) % 3
    (root / "ckpt").mkdir()
    for epoch in (1, 2, 10):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        model.save(root / "ckpt" / f"epoch_{epoch}.keras")
    pixels = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    for i, name in enumerate(["circle", "square", "triangle"] * 2):
        (root / "images" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[i]).save(root / "images" / name / f"{i}.png")
    np.save(root / "x.npy", x[:4])
    np.save(root / "y.npy", y[:4])
    return root, pixels


def _read(logdir):
    """``{tag: {step: facts/pngs}}`` and the plugin content of each tag, of the cnnvis run."""
    provider, ctx, eid = data_provider(str(logdir), {metadata.PLUGIN_NAME: 1000})
    listing = provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name="cnnvis")
    steps = read_run(logdir)
    contents = {
        tag: metadata.parse_content(m.plugin_content) for tag, m in listing["cnnvis"].items()
    }
    return steps, contents


def test_checkpoints_become_steps_in_natural_order_from_a_class_folder(saved, tmp_path, capsys):
    root, pixels = saved
    logdir = tmp_path / "logs"
    argv = ["log", "--model", str(root / "ckpt" / "epoch_*.keras"), "--images"]
    argv += [str(root / "images"), "--logdir", str(logdir), "--views", "feature_maps", "grad_cam"]
    assert cli.main(argv + CHEAP) == 0
    steps, contents = _read(logdir)
    assert sorted(steps) == ["feature_maps/conv1", "feature_maps/conv2", "grad_cam/conv2", "probes"]
    for tag in ("feature_maps/conv1", "grad_cam/conv2"):
        assert sorted(steps[tag]) == [1, 2, 10]
    # Classes are taken in turn from the subfolders, in name order.
    assert steps["probes"][1][0]["labels"] == [0, 1, 2, 0, 1, 2]
    assert contents["probes"]["class_names"] == ["circle", "square", "triangle"]
    # Step 10 holds the feature maps of checkpoint epoch_10 on the images (in [0, 1]).
    model = keras.saving.load_model(root / "ckpt" / "epoch_10.keras")
    images = pixels[[0, 1, 2, 3, 4, 5]].astype(np.float32) / 255
    truth = fm.feature_maps(model, images, "conv2")
    recovered = testing.recover_feature_maps(*steps["feature_maps/conv2"][10])
    span = np.ptp(truth, axis=(1, 2), keepdims=True)
    assert np.all(np.abs(recovered - truth) <= span / 255 + 1e-4)
    assert capsys.readouterr().err == ""


def test_npy_images_labels_layers_and_top_examples(saved, tmp_path):
    root, _ = saved
    logdir = tmp_path / "logs"
    argv = ["log", "--model", str(root / "ckpt" / "epoch_2.keras"), "--logdir", str(logdir)]
    argv += ["--images", str(root / "x.npy"), "--labels", str(root / "y.npy")]
    argv += ["--reference", str(root / "x.npy"), "--top-k", "3", "--layers", "conv1"]
    argv += ["--views", "feature_maps", "top_examples", *CHEAP]
    assert cli.main(argv) == 0
    steps, _ = _read(logdir)
    assert sorted(steps) == ["feature_maps/conv1", "probes", "top_examples/conv1"]
    assert list(steps["top_examples/conv1"]) == [2]  # the number in the file name
    facts, _ = steps["top_examples/conv1"][2]
    assert facts["reference_count"] == 4 and np.shape(facts["indices"]) == (2, 3)
    assert steps["probes"][2][0]["labels"] == np.load(root / "y.npy").tolist()


def test_cam_classes_and_attributions_from_the_command_line(saved, tmp_path):
    root, _ = saved
    logdir = tmp_path / "logs"
    argv = ["log", "--model", str(root / "ckpt" / "epoch_2.keras"), "--logdir", str(logdir)]
    argv += ["--images", str(root / "x.npy"), "--views", "grad_cam", "occlusion"]
    assert cli.main([*argv, "--cam-classes", "2,0", *CHEAP]) == 0
    steps, _ = _read(logdir)
    assert sorted(steps) == ["grad_cam/conv2", "occlusion/input", "probes"]
    facts, _ = steps["occlusion/input"][2]
    assert facts["class_index"][:2] == [2, 0] and facts["images"][1]["class_index"] == 0
    assert cli.main([*argv, "--cam-classes", "9", *CHEAP]) == 2


def test_step_and_filter_diversity_of_one_model_file(saved, tmp_path, capsys):
    root, _ = saved
    logdir = tmp_path / "logs"
    argv = ["log", "--model", str(root / "ckpt" / "epoch_2.keras"), "--logdir", str(logdir)]
    argv += ["--images", str(root / "x.npy"), "--views", "filter_patterns", "--layers", "conv1"]
    assert cli.main([*argv, "--step", "15", "--filter-diversity", "2", *CHEAP]) == 0
    steps, _ = _read(logdir)
    assert list(steps["filter_patterns/conv1"]) == [15]  # not the 2 in the file name
    facts, _ = steps["filter_patterns/conv1"][15]
    assert facts["diversity"] == 2 and np.shape(facts["diversity_activations"]) == (2, 2)
    series = ["log", "--model", str(root / "ckpt" / "epoch_*.keras"), "--step", "3"]
    series += ["--images", str(root / "x.npy"), "--logdir", str(tmp_path / "other")]
    assert cli.main([*series, *CHEAP]) == 2
    assert "--step is for one model file" in capsys.readouterr().err


def test_find_checkpoints_sorts_naturally_and_numbers_steps(tmp_path):
    for name in ("epoch_10.keras", "epoch_9.keras", "epoch_100.keras"):
        (tmp_path / name).touch()
    found = cli.find_checkpoints(str(tmp_path / "epoch_*.keras"))
    assert [(Path(p).name, s) for p, s in found] == [
        ("epoch_9.keras", 9),
        ("epoch_10.keras", 10),
        ("epoch_100.keras", 100),
    ]
    for name in ("best.keras", "last.keras", "v2_a.keras", "v2_b.keras"):
        (tmp_path / "other" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "other" / name).touch()
    found = cli.find_checkpoints(str(tmp_path / "other" / "*.keras"))
    assert [(Path(p).name, s) for p, s in found] == [
        ("best.keras", 0),
        ("last.keras", 1),
        ("v2_a.keras", 2),
        ("v2_b.keras", 3),
    ]


def test_folder_images_are_resized_to_the_models_input(tmp_path):
    from tb_cnnvis.input_range import InputRange

    (tmp_path / "flat").mkdir()
    Image.fromarray(np.full((30, 20, 3), (255, 0, 51), np.uint8)).save(tmp_path / "flat" / "a.png")
    images, labels, names = cli.read_images(
        str(tmp_path / "flat"), (16, 16, 3), InputRange(0, 255), 8
    )
    assert images.shape == (1, 16, 16, 3) and labels is None and names is None
    np.testing.assert_allclose(images[0], np.broadcast_to([255, 0, 51], (16, 16, 3)), atol=1e-3)


def _bad_inputs(root, tmp):
    """Argument lists that must fail, with the message expected."""
    (tmp / "bad").mkdir()
    (tmp / "bad" / "broken.png").write_bytes(b"not an image")
    (tmp / "empty").mkdir()
    (tmp / "corrupt.keras").write_bytes(b"not a model")
    dense = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    dense.save(tmp / "dense.keras")
    vectors = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    vectors.save(tmp / "vectors.keras")
    good_model, good_images = str(root / "ckpt" / "epoch_1.keras"), str(root / "x.npy")
    return {
        "no checkpoint": (str(tmp / "ckpt_*.keras"), good_images, "No model file matches"),
        "missing model": (str(tmp / "model.keras"), good_images, "does not exist"),
        "missing images": (good_model, str(tmp / "nowhere"), "--images .* does not exist"),
        "unreadable image": (good_model, str(tmp / "bad"), "Cannot read image .*broken.png"),
        "empty folder": (good_model, str(tmp / "empty"), "No images"),
        "corrupt model": (str(tmp / "corrupt.keras"), good_images, "Cannot load model"),
        "no conv layers": (str(tmp / "dense.keras"), good_images, "no layer with a \\(height"),
        "not images": (str(tmp / "vectors.keras"), good_images, "takes inputs of shape \\(8,\\)"),
    }


def test_mistakes_exit_2_with_one_line_and_no_traceback(saved, tmp_path, capsys):
    root, _ = saved
    for case, (model, images, message) in _bad_inputs(root, tmp_path).items():
        argv = ["log", "--model", model, "--images", images, "--logdir", str(tmp_path / "logs")]
        assert cli.main(argv + CHEAP) == 2, case
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tb-cnnvis: error: "), (case, err)
        assert re.search(message, err), (case, err)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["log", "--images", "x.npy"])
    assert exit_info.value.code == 2


def test_console_script_and_module_run_as_subprocesses(saved, tmp_path):
    root, _ = saved
    script = Path(sys.executable).with_name("tb-cnnvis")
    logdir = tmp_path / "logs"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = ["log", "--model", str(root / "ckpt" / "epoch_*.keras"), "--logdir", str(logdir)]
    argv += ["--images", str(root / "x.npy"), "--views", "grad_cam", "--max-probes", "2"]
    done = subprocess.run(
        [str(script), *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "logged steps [1, 2, 10]" in done.stdout
    steps, _ = _read(logdir)
    assert sorted(steps["grad_cam/conv2"]) == [1, 2, 10]
    missing = ["log", "--model", str(tmp_path / "none.keras"), "--images", "x", "--logdir", "l"]
    done = subprocess.run(
        [sys.executable, "-m", "tb_cnnvis.cli", *missing], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("tb-cnnvis: error: Model file")

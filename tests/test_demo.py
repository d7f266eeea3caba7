"""The demo: training logs every view at every epoch; user folders and models; the server."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from demo import run
from demo.model import build_model
from demo.shapes import CLASS_NAMES, make_shapes
from demo.train import load_image_folder, pick_probes, train
from tb_cnnvis import metadata, testing

REPO = Path(__file__).resolve().parents[1]
CONVS = ["conv1", "conv2", "conv3", "conv4"]
# Few, cheap filter patterns, logged every epoch, so that every view is due at every step.
CHEAP_EVERY_EPOCH = {
    "filters_every_n_epochs": 1,
    "top_examples_every_n_epochs": 1,
    "max_filters_per_layer": 4,
    "filter_steps": 4,
}


def _cnnvis_steps(logdir):
    """``{tag: [steps]}`` of the cnnvis run, read back from the event files."""
    events = EventAccumulator(
        os.path.join(logdir, metadata.RUN_SUBDIR), size_guidance={"tensors": 0}
    )
    events.Reload()
    return {tag: [e.step for e in events.Tensors(tag)] for tag in events.Tags()["tensors"]}, events


def _facts(events, tag, step):
    """The JSON facts (blob 0) of ``tag`` at ``step``."""
    (event,) = [e for e in events.Tensors(tag) if e.step == step]
    return testing.decode_step([event.tensor_proto.string_val[0]], events.path)[0]


def _write_folder(root, classes=3, per_class=10, size=40):
    """A folder of PNG shapes, one subfolder per class; returns its path."""
    images, labels, _ = make_shapes(classes * 4 * per_class, size=size, seed=5)
    for k in range(classes):
        (root / CLASS_NAMES[k]).mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(labels == k)[:per_class]):
            pixels = (images[index] * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(root / CLASS_NAMES[k] / f"{i}.png")
    return root


def test_demo_training_logs_every_view_for_every_epoch(logdir):
    result = train(
        logdir, epochs=2, n_train=256, n_val=64, cnnvis_options=CHEAP_EVERY_EPOCH, verbose=0
    )
    steps, events = _cnnvis_steps(logdir)
    layer_views = {
        "feature_maps": CONVS,
        "filter_patterns": CONVS,
        "grad_cam": ["pool4"],  # the callback's default: the last 4-D layer
        "deconvnet": CONVS,
        "top_examples": CONVS,  # from the held-out reference images
    }
    expected = {
        metadata.tag_name(kind, layer) for kind, layers in layer_views.items() for layer in layers
    }
    image_tags = {
        tag
        for tag in steps
        if not tag.startswith((metadata.TIMING_TAG_PREFIX, metadata.SCALAR_TAG_PREFIX))
    }
    assert image_tags == expected | {metadata.PROBES}
    for tag in expected:
        assert steps[tag] == [0, 1, 2], tag
    assert steps[metadata.PROBES] == [0]
    # Eight probes, drawn from every class in turn, with the class names stored.
    probe_facts = _facts(events, metadata.PROBES, 0)
    assert probe_facts["labels"] == [0, 1, 2, 3, 4, 5, 0, 1]
    content = metadata.parse_content(events.SummaryMetadata(metadata.PROBES).plugin_data.content)
    assert content["class_names"] == list(CLASS_NAMES)
    assert content["probe_count"] == 8
    # Keras's own runs and the saved model are there too.
    assert sorted(os.listdir(logdir)) == ["cnnvis", "model.keras", "train", "validation"]
    assert len(result.history["val_accuracy"]) == 2 == len(result.epoch_seconds)
    assert result.val_accuracy == result.history["val_accuracy"][-1]
    probes, _, _ = make_shapes(4, seed=9)
    saved = keras.saving.load_model(result.model_path)
    np.testing.assert_allclose(
        saved.predict(probes, verbose=0), result.model.predict(probes, verbose=0), atol=1e-6
    )


def test_pick_probes_takes_every_class_in_turn():
    labels = np.array([2, 0, 0, 1, 2, 0, 0, 2])
    picked = pick_probes(labels, count=5, seed=0)
    assert labels[picked].tolist() == [0, 1, 2, 0, 2]
    assert len(set(picked.tolist())) == 5
    assert len(pick_probes(labels, count=20)) == len(labels)


def test_load_image_folder_reads_classes_in_name_order_resized(tmp_path):
    root = _write_folder(tmp_path / "photos", classes=3, per_class=4, size=40)
    images, labels, names = load_image_folder(root, size=32)
    assert names == ("circle", "square", "triangle")
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5
    assert np.bincount(labels).tolist() == [4, 4, 4]


def test_load_image_folder_explains_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="one subfolder of images per class"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"holds no images.*found \['cats', 'notes.txt'\]"):
        load_image_folder(tmp_path / "empty")


def test_run_trains_the_demo_cnn_on_a_folder_of_images(tmp_path, logdir, capsys, monkeypatch):
    root = _write_folder(tmp_path / "photos", classes=3, per_class=10, size=40)
    # The demo's own options, with cheap filter patterns (the test above checks every view).
    cheap = {**run.DEMO_CNNVIS_OPTIONS, "max_filters_per_layer": 4, "filter_steps": 4}
    monkeypatch.setattr(run, "DEMO_CNNVIS_OPTIONS", cheap)
    code = run.main(
        ["--images", str(root), "--size", "32", "--epochs", "1", "--logdir", logdir, "--no-serve"]
    )
    assert code == 0
    assert "Read 30 images of 3 classes" in capsys.readouterr().out
    steps, events = _cnnvis_steps(logdir)
    assert steps["grad_cam/conv4"] == [0, 1]  # the demo explains the last convolution
    assert steps["feature_maps/conv1"] == [0, 1]
    content = metadata.parse_content(events.SummaryMetadata("grad_cam/conv4").plugin_data.content)
    assert content["class_names"] == ["circle", "square", "triangle"]
    assert content["input_shape"] == [32, 32, 3]
    model = keras.saving.load_model(os.path.join(logdir, "model.keras"))
    assert model.output_shape == (None, 3)


def test_run_logs_the_views_of_a_saved_model_without_training(tmp_path, logdir):
    root = _write_folder(tmp_path / "photos", classes=3, per_class=4, size=32)
    path = str(tmp_path / "mine.keras")
    build_model(size=32, classes=3, widths=(4, 8), dense_units=0).save(path)
    assert run.main(["--model", path, "--images", str(root), "--logdir", logdir, "--no-serve"]) == 0
    steps, _ = _cnnvis_steps(logdir)
    assert steps["feature_maps/conv2"] == [0]
    assert steps["grad_cam/pool2"] == [0]
    assert not os.path.exists(os.path.join(logdir, "train"))  # nothing was trained


def test_run_rejects_bad_paths_and_mismatched_models(tmp_path, logdir, capsys):
    with pytest.raises(SystemExit):
        run.main(["--images", str(tmp_path / "nowhere"), "--logdir", logdir, "--no-serve"])
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(SystemExit, match="holds no images"):
        run.main(["--images", str(tmp_path / "empty"), "--logdir", logdir, "--no-serve"])
    root = _write_folder(tmp_path / "photos", classes=2, per_class=2, size=32)
    path = str(tmp_path / "six.keras")
    build_model(size=32, classes=6, widths=(4, 8), dense_units=0).save(path)
    args = ["--model", path, "--images", str(root), "--logdir", logdir, "--no-serve"]
    with pytest.raises(SystemExit, match="6 outputs but the images have 2 classes"):
        run.main([*args, "--epochs", "1"])


def test_run_refuses_a_busy_port_before_training(logdir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit, match=f"cannot serve TensorBoard on 127.0.0.1:{port}"):
            run.main(["--logdir", logdir, "--port", str(port), "--n-train", "6"])
    assert os.listdir(logdir) == []  # it stopped before training


def test_clear_previous_runs_removes_only_the_demo_outputs(tmp_path):
    for name in ["train", "validation", "cnnvis", "mine"]:
        (tmp_path / name).mkdir()
    (tmp_path / "model.keras").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    removed = run.clear_previous_runs(str(tmp_path))
    assert removed == ["train", "validation", "cnnvis", "model.keras"]
    assert sorted(os.listdir(tmp_path)) == ["mine", "notes.txt"]


def _free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_run_serves_tensorboard_with_the_cnnvis_plugin_until_ctrl_c(tmp_path, logdir):
    path = str(tmp_path / "mine.keras")
    build_model(size=32, classes=6, widths=(4, 8), dense_units=0).save(path)
    port = _free_port()
    command = [sys.executable, "-m", "demo.run", "--model", path, "--logdir", logdir]
    command += ["--port", str(port), "--n-train", "16", "--n-val", "8"]
    # A suite started in the background (``make test &``) ignores SIGINT, and a child
    # inherits that: give the demo the terminal's default, as a user's Ctrl-C finds it.
    server = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline, listing = time.monotonic() + 120, None
        while listing is None and time.monotonic() < deadline and server.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/data/plugins_listing"
                with urllib.request.urlopen(url, timeout=5) as response:
                    listing = json.load(response)
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "TensorBoard did not answer"
        assert listing[metadata.PLUGIN_NAME]["enabled"] is True
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}/#cnnvis" in output
    assert "Stopped." in output

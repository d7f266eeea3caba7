"""blobstore: a logged step is written whole or not at all, and no write stops training.

A failing file layer (``tf.io.gfile`` or the event writer raising as a full disk does) and a
real 4 MiB filesystem: ``model.fit`` returns, one warning names the path and the error, the
failed step is dropped whole, and later steps are written again.
"""

import json
import os
import subprocess
import warnings

import keras
import models
import numpy as np
import pytest
import tensorflow as tf

from tb_cnnvis import blobstore, metadata, summary
from tb_cnnvis.callback import CnnVisCallback
from tb_cnnvis.testing import data_provider, read_run, write_synthetic_run

FAST = {"filter_steps": 2, "max_filters_per_layer": 2}
VIEWS = ["feature_maps", "grad_cam"]


def _fit(logdir, epochs, extra_callbacks=()):
    """Fit the tiny sequential model with the cnnvis callback; return the cnnvis warnings."""
    rng = np.random.default_rng(0)
    x = rng.random((8, models.SIZE, models.SIZE, 3), dtype=np.float32)
    y = rng.integers(0, models.CLASSES, 8)
    model = models.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = CnnVisCallback(logdir, x[:2], y[:2], views=VIEWS, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[*extra_callbacks, cb]
        )
    assert len(history.history["loss"]) == epochs  # fit ran to its end
    return [str(w.message) for w in caught if "cnnvis" in str(w.message)]


def _visible_steps(logdir):
    """``{tag: [steps]}`` a reader serves: steps whose pixels can all be read."""
    return {tag: sorted(steps) for tag, steps in read_run(logdir, skip_damaged=True).items()}


class FailingGFile:
    """``tf.io.gfile.GFile`` that fails like a full disk while ``failing`` is true."""

    failing = False
    real = tf.io.gfile.GFile

    def __new__(cls, path, mode="r"):
        if cls.failing and "w" in mode:
            raise tf.errors.ResourceExhaustedError(None, None, f"{path}; No space left on device")
        return cls.real(path, mode)


def test_a_failing_file_layer_drops_only_its_steps_with_one_warning(logdir, monkeypatch):
    monkeypatch.setattr(tf.io.gfile, "GFile", FailingGFile)

    def fail_steps_1_and_2(epoch, logs):
        FailingGFile.failing = epoch in (0, 1)  # the steps logged after epochs 0 and 1

    try:
        said = _fit(logdir, 3, [keras.callbacks.LambdaCallback(on_epoch_end=fail_steps_1_and_2)])
    finally:
        FailingGFile.failing = False
    assert len(said) == 1, said  # once per kind of failure, though two steps failed
    assert "ResourceExhaustedError" in said[0] and "No space left on device" in said[0]
    assert os.path.join(logdir, "cnnvis", "plugins", "cnnvis", "pixels") in said[0]
    assert "step 1 was dropped whole; training goes on" in said[0]
    visible = _visible_steps(logdir)
    assert visible == {
        "probes": [0],
        "feature_maps/conv1": [0, 3],
        "feature_maps/conv2": [0, 3],
        "grad_cam/conv2": [0, 3],
    }
    pixels = os.listdir(os.path.join(logdir, "cnnvis", "plugins", "cnnvis", "pixels"))
    assert sorted(name.split("-")[0] for name in pixels) == ["0", "3"]  # nothing left over
    provider, ctx, eid = data_provider(logdir, {"scalars": 1000})
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=99)
    timing = scalars["cnnvis"]["cnnvis_seconds/feature_maps"]
    assert [datum.step for datum in timing] == [0, 3]  # a dropped step's scalars go too


class FlushFailsAfterWriting:
    """A summary writer whose ``flush`` writes, then reports a failure (a step half written)."""

    fail = False

    def __init__(self, logdir):
        self._inner = REAL_WRITER(logdir)

    def as_default(self, *args, **kwargs):
        return self._inner.as_default(*args, **kwargs)

    def flush(self):
        self._inner.flush()
        if FlushFailsAfterWriting.fail:
            FlushFailsAfterWriting.fail = False
            raise tf.errors.UnavailableError(None, None, "the remote store went away")

    def close(self):
        self._inner.close()


REAL_WRITER = tf.summary.create_file_writer


def test_events_written_for_a_step_whose_commit_failed_are_never_served(logdir, monkeypatch):
    monkeypatch.setattr(tf.summary, "create_file_writer", FlushFailsAfterWriting)
    run_dir = os.path.join(logdir, metadata.RUN_SUBDIR)
    writer = summary.RunWriter(run_dir)
    content = summary.content("feature_maps", "conv1", input_shape=(4, 4, 3), probe_count=1)
    maps = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4)
    from tb_cnnvis.views.feature_maps import write_feature_maps

    with pytest.warns(RuntimeWarning, match="UnavailableError: the remote store went away"):
        for step in range(3):
            FlushFailsAfterWriting.fail = step == 1
            with writer.step(step):
                write_feature_maps(content, maps * (step + 1), step)
            assert writer.committed == (step != 1)
    writer.close()
    provider, ctx, eid = data_provider(logdir, {"cnnvis": 100})
    data = provider.read_blob_sequences(ctx, experiment_id=eid, plugin_name="cnnvis", downsample=9)
    assert [d.step for d in data["cnnvis"]["feature_maps/conv1"]] == [0, 1, 2]  # in the events
    assert _visible_steps(logdir) == {"feature_maps/conv1": [0, 2]}  # but step 1 is not whole
    with pytest.raises(
        blobstore.DamagedPixels, match=r"pixel file pixels/1-[0-9a-f]+\.bin is missing"
    ):
        read_run(logdir)


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 4 MiB tmpfs (needs root; mounted and unmounted here)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); the failing "
                    "file layer tests above cover the same path")  # fmt: skip
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_on_a_full_filesystem_fit_returns_and_later_steps_are_written_again(tiny_filesystem):
    filler = tiny_filesystem / "filler"
    with open(filler, "wb") as out:  # leave about 20 KB: less than one logged step
        out.write(b"\0" * (4 * 1024 * 1024 - 20 * 1024))
    logdir = str(tiny_filesystem / "logs")

    def free_space(epoch, logs):
        if epoch == 1 and filler.exists():
            filler.unlink()

    said = _fit(logdir, 3, [keras.callbacks.LambdaCallback(on_epoch_end=free_space)])
    assert said and any("No space left on device" in message for message in said), said
    visible = _visible_steps(logdir)
    layer_tags = {"feature_maps/conv1", "feature_maps/conv2", "grad_cam/conv2"}
    assert layer_tags <= set(visible)
    steps = set(visible["feature_maps/conv1"])
    assert {2, 3} <= steps and 1 not in steps  # dropped while full, written once freed
    for tag in layer_tags:  # never half a step: every tag has the same steps
        assert set(visible[tag]) == steps, tag


def test_the_synthetic_writer_writes_steps_visible_only_whole(tmp_path):
    info = write_synthetic_run(str(tmp_path), epochs=1, layers=1, probes=1, size=8)
    folder = blobstore.plugin_dir(info["run_dir"])
    names = sorted(os.listdir(os.path.join(folder, "pixels")))
    assert [name.split("-")[0] for name in names] == ["0", "1"]
    assert all(blobstore.PIXEL_FILE.fullmatch(f"pixels/{name}") for name in names)


def test_a_tag_step_without_images_keeps_its_facts_in_the_pixel_file_and_is_served(logdir):
    run_dir = os.path.join(logdir, metadata.RUN_SUBDIR)
    writer = summary.RunWriter(run_dir)
    content = summary.content("feature_maps", "conv1", input_shape=(4, 4, 3), probe_count=1)
    with writer.step(0):
        summary.write_step(content, 0, {"channels": []}, [], [], seconds=0.0)
    writer.close()
    folder = os.path.join(run_dir, "plugins", "cnnvis", "pixels")
    [name] = os.listdir(folder)
    with open(os.path.join(folder, name), "rb") as pixel_file:
        stored = json.loads(pixel_file.read())
    assert stored == {"channels": [], "images": [], "seconds": 0.0}  # the facts alone
    [(facts, pngs)] = read_run(logdir)["feature_maps/conv1"].values()
    assert facts == {"channels": [], "images": [], "seconds": 0.0} and pngs == []

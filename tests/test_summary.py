"""summary: every writer round-trips through TensorBoard's own data provider."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tb_cnnvis import imaging, metadata, summary, testing, views
from tb_cnnvis.testing import data_provider, write_synthetic_run

COMMON = {"input_shape": (8, 8, 3), "probe_count": 2, "class_names": ["a", "b", "c"]}


def _layer_content(kind, layer="block/conv1", shape=(4, 4, 5)):
    return summary.content(
        kind, layer, layer_index=2, layer_class="Conv2D", output_shape=shape, **COMMON
    )


def _read_all(logdir):
    """{(run, tag): [(step, facts, pngs, content)]} read as TensorBoard reads it."""
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000})
    listing = provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME)
    data = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )
    result = {}
    for run, tags in data.items():
        for tag, sequence in tags.items():
            content = metadata.parse_content(listing[run][tag].plugin_content)
            steps = []
            for datum in sequence:
                blobs = [provider.read_blob(ctx, blob_key=ref.blob_key) for ref in datum.values]
                facts, pngs = testing.decode_step(blobs, f"{logdir}/{run}")
                steps.append((datum.step, facts, pngs, content))
            result[(run, tag)] = steps
    return result


def _write(logdir, fn):
    writer = tf.summary.create_file_writer(f"{logdir}/cnnvis")
    with writer.as_default():
        fn()
    writer.close()
    return _read_all(logdir)


def test_feature_maps_round_trip_within_one_grey_level(logdir):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 4, 4, 5)) * np.array([1, 10, 100, 0.01, 0])
    maps[1, :, :, 2] = np.nan  # an all-NaN channel is stored as a flat zero
    tc = _layer_content("feature_maps")
    data = _write(
        logdir, lambda: views.feature_maps.write_feature_maps(tc, maps, step=3, seconds=0.5)
    )
    [(step, facts, pngs, content)] = data[("cnnvis", "feature_maps/block/conv1")]
    assert step == 3
    assert content == json.loads(json.dumps(tc))
    assert content["output_shape"] == [4, 4, 5] and content["layer_index"] == 2
    assert facts["seconds"] == 0.5
    assert facts["images"] == [
        {"probe": p, "grid": [2, 3], "tile": [4, 4], "count": 5, "channels": 1} for p in (0, 1)
    ]
    recovered = testing.recover_feature_maps(facts, pngs)
    truth = np.where(np.isfinite(maps), maps, 0.0)
    span = np.ptp(truth, axis=(1, 2), keepdims=True)
    assert recovered.shape == maps.shape
    assert np.all(np.abs(recovered - truth) <= span / 255 + 1e-6)
    np.testing.assert_allclose(facts["min"], truth.min(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(facts["max"], truth.max(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(facts["mean"][0], maps[0].mean(axis=(0, 1)), rtol=1e-6)


def test_probes_and_filter_patterns_store_display_rgb(logdir):
    probes = np.random.default_rng(1).random((2, 8, 8, 3))
    patterns = np.random.default_rng(2).random((3, 8, 8, 1))  # grey patterns become RGB

    def write():
        summary.write_probes(
            summary.content("probes", **COMMON), probes, step=0, labels=np.array([2, 0])
        )
        views.filter_patterns.write_filter_patterns(
            _layer_content("filter_patterns"),
            patterns,
            step=1,
            filters=[0, 3, 4],
            activations=[1.5, 0.0, np.nan],
            start_activations=[0.1, 0.0, 0.2],
            dead=[3],
        )

    data = _write(logdir, write)
    [(_, facts, pngs, content)] = data[("cnnvis", "probes")]
    assert content["layer"] is None and content["probe_count"] == 2
    assert facts["labels"] == [2, 0]
    assert [image["probe"] for image in facts["images"]] == [0, 1]
    pixels = np.stack([imaging.decode_png(png) for png in pngs])
    assert np.abs(pixels / 255.0 - probes).max() <= 0.5 / 255 + 1e-9

    [(step, facts, pngs, _)] = data[("cnnvis", "filter_patterns/block/conv1")]
    assert step == 1
    assert facts["filters"] == [0, 3, 4] and facts["dead"] == [3]
    assert facts["activations"] == [1.5, 0.0, None]  # NaN is stored as null (valid JSON)
    [tiles] = testing.decode_tiles(facts, pngs)
    assert facts["images"] == [
        {"probe": None, "grid": [2, 2], "tile": [8, 8], "count": 3, "channels": 3}
    ]
    np.testing.assert_array_equal(tiles[..., 0], tiles[..., 2])
    assert np.abs(tiles[..., 1] / 255.0 - patterns[..., 0]).max() <= 0.5 / 255 + 1e-9


def test_cam_and_projection_facts_and_pixels(logdir):
    maps = np.linspace(0, 1, 2 * 8 * 8).reshape(2, 8, 8)
    projections = np.zeros((2, 8, 8, 3))
    projections[0, 1, 2] = [-4.0, 2.0, 0.0]
    projections[1, 3, 3] = [0.0, 0.0, 0.5]

    def write():
        views.cams.write_cam(
            _layer_content("gradcam_plus_plus"),
            maps,
            step=2,
            class_index=[1, 2],
            predicted=[1, 0],
            probability=[0.9, 0.6],
            target_probability=[0.9, 0.1],
            cam_max=[3.5, 0.25],
        )
        views.projections.write_projection(
            _layer_content("guided_backprop"),
            projections,
            step=2,
            channel=[4, 1],
            activation=[2.5, 0.5],
            position=[(1, 2), (0, 3)],
        )

    data = _write(logdir, write)
    [(_, facts, pngs, _)] = data[("cnnvis", "gradcam_plus_plus/block/conv1")]
    assert facts["class_index"] == [1, 2] and facts["predicted"] == [1, 0]
    assert facts["cam_max"] == [3.5, 0.25] and facts["labels"] is None
    assert facts["target_probability"] == pytest.approx([0.9, 0.1])
    decoded = np.stack([imaging.decode_png(png)[..., 0] for png in pngs]) / 255.0
    assert np.abs(decoded - maps).max() <= 0.5 / 255 + 1e-9

    [(_, facts, pngs, _)] = data[("cnnvis", "guided_backprop/block/conv1")]
    assert facts["scale"] == [4.0, 0.5]
    assert facts["position"] == [[1, 2], [0, 3]] and facts["channel"] == [4, 1]
    first = imaging.decode_png(pngs[0]).astype(float)
    recovered = (first / 255.0 - 0.5) * 2 * facts["scale"][0]
    assert np.abs(recovered - projections[0]).max() <= 4.0 / 255 + 1e-9
    assert (imaging.decode_png(pngs[1])[0, 0] == 128).all()  # zero is grey


def test_attributions_are_grey_around_128_with_their_scale(logdir):
    maps = np.zeros((2, 8, 8))
    maps[0, 1, 2], maps[0, 5, 5], maps[0, 7, 0] = -3.0, 1.5, 0.75
    content = summary.content(
        "integrated_gradients", "input", layer_index=-1, layer_class="InputLayer",
        output_shape=(8, 8, 3), **COMMON,
    )  # fmt: skip

    def write():
        views.attributions.write_attribution(
            content, maps, step=4, class_index=[1, 2], predicted=[1, 0],
            probability=[0.9, 0.6], target_probability=[0.9, 0.1], labels=[1, 2],
            settings={"steps": 64, "baseline": "low"},
        )  # fmt: skip

    [(step, facts, pngs, stored)] = _write(logdir, write)[("cnnvis", "integrated_gradients/input")]
    assert step == 4 and stored["layer"] == "input" and stored["layer_index"] == -1
    assert facts["scale"] == [3.0, 0.0] and facts["settings"] == {"steps": 64, "baseline": "low"}
    assert facts["class_index"] == [1, 2] and facts["labels"] == [1, 2]
    assert [image["channels"] for image in facts["images"]] == [1, 1]
    assert all("class_index" not in image for image in facts["images"])  # one class per probe
    first, second = (imaging.decode_png(png)[..., 0].astype(int) for png in pngs)
    assert first[1, 2] == 1 and first[0, 0] == 128 and first[5, 5] == round(128 + 127 / 2)
    recovered = (first - 128) / 127 * facts["scale"][0]
    assert np.abs(recovered - maps[0]).max() <= 3.0 / 254 + 1e-9
    assert (second == 128).all()  # an all-zero map is flat zero


def test_several_classes_per_probe_say_probe_and_class_per_image(logdir):
    maps = np.random.default_rng(3).random((6, 8, 8))
    probe, classes = np.repeat([0, 1], 3), [2, 0, 1, 1, 2, 0]

    def write():
        views.cams.write_cam(
            _layer_content("grad_cam"), maps, step=1, class_index=classes,
            predicted=[2, 2, 2, 1, 1, 1], probability=[0.7] * 3 + [0.5] * 3,
            target_probability=[0.7, 0.2, 0.1, 0.5, 0.3, 0.2], cam_max=np.ones(6),
            labels=[2, 0], probe=probe, metrics={"deletion_auc": [0.1] * 6},
        )  # fmt: skip

    [(_, facts, pngs, content)] = _write(logdir, write)[("cnnvis", "grad_cam/block/conv1")]
    assert content["version"] == metadata.FORMAT_VERSION == 3 and len(pngs) == 6
    assert [(image["probe"], image["class_index"]) for image in facts["images"]] == list(
        zip(probe.tolist(), classes)
    )
    assert facts["class_index"] == classes and facts["labels"] == [2, 0]
    assert len(facts["target_probability"]) == len(facts["deletion_auc"]) == 6
    decoded = np.stack([imaging.decode_png(png)[..., 0] for png in pngs]) / 255.0
    assert np.abs(decoded - maps).max() <= 0.5 / 255 + 1e-9


def test_synthetic_run_with_several_classes_per_probe(logdir):
    write_synthetic_run(logdir, epochs=1, layers=1, probes=2, size=8, classes_per_probe=3)
    data = _read_all(logdir)
    for tag in ("grad_cam/base/conv1", "occlusion/input"):
        _, facts, pngs, _ = data[("cnnvis", tag)][1]
        assert [(i["probe"], i["class_index"]) for i in facts["images"]] == [
            (p, c) for p, c in zip([0, 0, 0, 1, 1, 1], facts["class_index"])
        ]
        assert sorted(facts["class_index"][:3]) == [0, 1, 2] and len(pngs) == 6
    _, facts, pngs, _ = data[("cnnvis", "eigencam/base/conv1")][1]  # class-agnostic
    assert len(pngs) == 2 and "class_index" not in facts["images"][0]


def test_writers_refuse_content_of_another_kind():
    with pytest.raises(ValueError, match="kind"):
        views.feature_maps.write_feature_maps(_layer_content("grad_cam"), np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="Unknown kind"):
        summary.content("heatmap", "conv1", **COMMON)


def test_decode_step_rejects_blobs_that_do_not_match_the_facts():
    facts = json.dumps({"images": [{}], "seconds": 0}).encode()
    with pytest.raises(ValueError, match="1 images but 0"):
        testing.decode_step([facts])
    with pytest.raises(ValueError, match="not JSON"):
        testing.decode_step([b"\x89PNG"])


def test_synthetic_run_has_every_tag_and_step_through_tensorboard_sampling(logdir):
    info = write_synthetic_run(logdir, epochs=3, layers=2, probes=2, size=16)
    data = _read_all(logdir)
    layers = ["conv1", "base/conv2"]
    expected = {"probes"}
    kinds = ("feature_maps", "filter_patterns", "deepdream")
    expected |= {f"{k}/{layer}" for k in kinds for layer in layers}
    expected |= {f"{k}/{layer}" for k in views.kinds("projection") for layer in layers}
    expected |= {f"{k}/base/conv2" for k in views.kinds("cam")}
    expected |= {f"{k}/input" for k in views.kinds("attribution")}
    expected |= {f"top_examples/{layer}" for layer in layers}
    assert {tag for run, tag in data} == expected == set(info["tags"])
    assert {run for run, tag in data} == {"cnnvis"}
    for (_, tag), steps in data.items():
        assert [s[0] for s in steps] == ([0] if tag == "probes" else [0, 1, 2, 3]), tag
        for _, facts, pngs, content in steps:
            assert content["kind"] == tag.split("/")[0]
            for image, tiles in zip(facts["images"], testing.decode_tiles(facts, pngs)):
                assert tiles.shape[1:] == (*image["tile"], image["channels"])
    fm = data[("cnnvis", "feature_maps/base/conv2")][0]
    assert testing.recover_feature_maps(fm[1], fm[2]).shape == (2, 8, 8, 8)


def test_tensorboard_default_sampling_keeps_only_ten_steps(logdir):
    write_synthetic_run(logdir, epochs=14, layers=1, probes=1, size=8, kinds=["feature_maps"])
    provider, ctx, eid = data_provider(logdir)
    data = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )
    assert len(data["cnnvis"]["feature_maps/base/conv1"]) == 10


def test_top_examples_store_filter_rows_of_patches_and_signed_projections(logdir):
    rng = np.random.default_rng(5)
    patches = rng.random((2, 3, 5, 4, 3))  # 2 filters x 3 examples of 5x4 patches
    projections = rng.normal(size=(2, 3, 5, 4, 3))
    field = type("Field", (), {"size": (5, 4), "stride": (2, 2), "start": (-1, -1)})()
    tc = _layer_content("top_examples")

    def write():
        views.top_examples.write_top_examples(
            tc,
            patches,
            step=2,
            projections=projections,
            filters=[4, 1],
            indices=[[7, 0, 3], [2, 9, 8]],
            activations=[[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]],
            positions=np.arange(12).reshape(2, 3, 2),
            boxes=np.arange(24).reshape(2, 3, 4),
            receptive_field=field,
            reference_count=10,
            seconds=0.25,
        )

    [(step, facts, pngs, _)] = _write(logdir, write)[("cnnvis", "top_examples/block/conv1")]
    assert step == 2 and facts["atlases"] == ["patches", "projections"]
    atlas = {"probe": None, "grid": [2, 3], "tile": [5, 4], "count": 6, "channels": 3}
    assert facts["images"] == [atlas, atlas]
    assert facts["filters"] == [4, 1] and facts["indices"] == [[7, 0, 3], [2, 9, 8]]
    assert facts["activations"] == [[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]
    assert facts["positions"][1][2] == [10, 11] and facts["boxes"][0][1] == [4, 5, 6, 7]
    assert facts["receptive_field"] == {"size": [5, 4], "stride": [2, 2], "start": [-1, -1]}
    assert facts["reference_count"] == 10
    patch_tiles, projection_tiles = testing.decode_tiles(facts, pngs)
    # Tile k is filter row k // 3, example k % 3.
    np.testing.assert_array_equal(patch_tiles[4], imaging.to_uint8(patches[1, 1]))
    scale = np.abs(projections[1, 2]).max()
    assert facts["projection_scale"][1][2] == pytest.approx(scale)
    expected = imaging.to_uint8(projections[1, 2] / (2 * scale) + 0.5)
    np.testing.assert_array_equal(projection_tiles[5], expected)


def test_metric_facts_are_added_but_never_replace_a_fact(logdir):
    tc = _layer_content("feature_maps")
    maps = np.ones((2, 4, 4, 5))
    with pytest.raises(ValueError, match=r"must not replace the facts \['min'\]"):
        views.feature_maps.write_feature_maps(tc, maps, 0, metrics={"min": 1})

    def write():
        views.feature_maps.write_feature_maps(
            tc, maps, 0, metrics={"dead_filters": [], "sparsity": 0.0}
        )
        summary.write_metrics({"sparsity/conv1": 0.25, "broken": float("nan")}, step=0)

    [(_, facts, _, _)] = _write(logdir, write)[("cnnvis", "feature_maps/block/conv1")]
    assert facts["dead_filters"] == [] and facts["sparsity"] == 0.0
    provider, ctx, eid = data_provider(logdir, {"scalars": 1000})
    scalars = provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=10)
    assert {tag: [d.value for d in s] for tag, s in scalars["cnnvis"].items()} == {
        "cnnvis_metrics/sparsity/conv1": [0.25]
    }


def test_inside_a_logged_step_pngs_and_facts_go_to_one_pixel_file_the_events_a_reference(logdir):
    import os
    import zlib

    from tensorboard.backend.event_processing import event_file_loader

    from tb_cnnvis import blobstore

    run_dir = f"{logdir}/cnnvis"
    writer = summary.RunWriter(run_dir)
    maps = np.arange(2 * 4 * 4 * 5, dtype=np.float32).reshape(2, 4, 4, 5)
    for step in (4, 5):
        with writer.step(step):
            views.feature_maps.write_feature_maps(_layer_content("feature_maps"), maps, step)
            summary.write_probes(summary.content("probes", **COMMON), np.zeros((2, 8, 8, 3)), step)
            summary.write_timings({"feature_maps": 0.5}, step)
    writer.close()
    assert writer.committed is True
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000})
    data = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )["cnnvis"]
    files = sorted(os.listdir(f"{run_dir}/plugins/cnnvis/pixels"))  # one per step, no ".part"
    assert [name.split("-")[0] for name in files] == ["4", "5"]
    with open(f"{run_dir}/plugins/cnnvis/pixels/{files[0]}", "rb") as pixel_file:
        stored = pixel_file.read()
    end, facts_end = 0, None
    for tag, count in (("feature_maps/block/conv1", 2), ("probes", 2)):
        [datum, _] = data[tag]
        [event_blob] = [provider.read_blob(ctx, blob_key=v.blob_key) for v in datum.values]
        reference = json.loads(event_blob)  # the event holds only where the facts are
        assert list(reference) == ["facts"] and reference["facts"]["file"] == f"pixels/{files[0]}"
        offset, length, crc = reference["facts"]["span"]
        facts = json.loads(stored[offset : offset + length])
        assert zlib.crc32(stored[offset : offset + length]) == crc and len(event_blob) < 120
        facts_end = max(facts_end or 0, offset + length)
        assert facts["pixels"]["file"] == f"pixels/{files[0]}"
        spans = facts["pixels"]["spans"]
        assert len(spans) == len(facts["images"]) == count
        for offset, length, crc in spans:
            assert offset == end and zlib.crc32(stored[offset : offset + length]) == crc
            assert stored[offset : offset + 8] == b"\x89PNG\r\n\x1a\n"
            end = offset + length
    assert facts_end == len(stored) > end  # every tag's PNGs in a row, then their facts
    facts, pngs = testing.decode_step([event_blob], run_dir)
    assert "pixels" not in facts and [len(p) for p in pngs] == [s[1] for s in spans]
    assert facts["images"][0]["grid"] and blobstore.PIXEL_FILE.fullmatch(f"pixels/{files[1]}")
    # A tag's metadata (its content) is written with its first value in the event file only.
    [events_file] = [name for name in os.listdir(run_dir) if "tfevents" in name]
    described = [
        (value.tag, event.step, value.HasField("metadata") and bool(value.metadata.plugin_data.plugin_name))
        for event in event_file_loader.LegacyEventFileLoader(f"{run_dir}/{events_file}").Load()
        for value in event.summary.value
    ]  # fmt: skip
    assert sorted(described) == [
        ("cnnvis_seconds/feature_maps", 4, True), ("cnnvis_seconds/feature_maps", 5, False),
        ("feature_maps/block/conv1", 4, True), ("feature_maps/block/conv1", 5, False),
        ("probes", 4, True), ("probes", 5, False),
    ]  # fmt: skip
    assert (
        provider.read_scalars(ctx, experiment_id=eid, plugin_name="scalars", downsample=10)[
            "cnnvis"
        ]["cnnvis_seconds/feature_maps"][1].value
        == 0.5
    )

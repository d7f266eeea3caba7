"""A realistic cnnvis log directory written from procedural arrays, without any training.

The plugin and frontend tests (and anyone designing a view) need data in the stored format
of ``tb_cnnvis.summary``; training a network for it is slow. ``write_synthetic_run`` writes
every kind for every layer and epoch through the real writers, from arrays that change
smoothly with the epoch, so the result looks like a (very tidy) training run.

Example:
    >>> from tb_cnnvis.testing import write_synthetic_run
    >>> info = write_synthetic_run("/tmp/logs", epochs=3, layers=2, probes=4)
    >>> sorted(info["tags"])[:2]
    ['deconvnet/base/conv2', 'deconvnet/conv1']
"""

import os

import numpy as np
import tensorflow as tf

from tb_cnnvis import metadata, summary

CLASS_NAMES = ("circle", "square", "triangle")


def write_synthetic_run(
    logdir,
    epochs=3,
    layers=2,
    probes=4,
    *,
    size=32,
    kinds=None,
    nested=True,
    timings=True,
    seed=0,
):
    """Write steps 0..epochs of every kind to ``<logdir>/cnnvis`` from procedural arrays.

    Layers are ``conv1``, ``conv2``, ...; with ``nested`` the last one is ``base/conv<n>``
    (a layer inside a nested model), to exercise paths with slashes. Layer ``i`` has
    ``size / 2**i`` pixels and ``4 * 2**i`` channels. Feature maps, filter patterns and
    projections are written for every layer, class activation maps for the last one.

    Args:
        logdir: the log directory (any ``tf.io.gfile`` path); the run is ``<logdir>/cnnvis``.
        epochs: the last step; steps 0..epochs are written.
        layers: number of conv layers, >= 1.
        probes: number of probe images, >= 1.
        size: input height and width in pixels (a multiple of ``2**(layers - 1)``).
        kinds: the kinds to write (default: every kind of ``summary``'s docstring).
        nested: name the last layer ``base/conv<n>``.
        timings: also write ``cnnvis_seconds/<view>`` scalars.
        seed: random seed.

    Returns:
        A dict ``{"run_dir", "tags": {tag: content}, "steps": [0..epochs], "labels"}``.

    Raises:
        ValueError: for an unknown kind or non-positive sizes.
    """
    all_kinds = (metadata.PROBES, metadata.FEATURE_MAPS, metadata.FILTER_PATTERNS)
    all_kinds += metadata.CAM_KINDS + metadata.PROJECTION_KINDS
    kinds = tuple(all_kinds if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(all_kinds))
    if unknown or layers < 1 or probes < 1 or epochs < 0:
        raise ValueError(
            f"Need kinds from {list(all_kinds)} (unknown: {unknown}), layers >= 1, probes >= 1 "
            f"and epochs >= 0; got layers={layers}, probes={probes}, epochs={epochs}."
        )
    rng = np.random.default_rng(seed)
    images, labels, centers = _probe_images(rng, probes, size)
    common = {
        "input_shape": (size, size, 3),
        "probe_count": probes,
        "class_names": CLASS_NAMES,
    }
    refs = []
    for i in range(layers):
        name = f"conv{i + 1}"
        path = f"base/{name}" if nested and i == layers - 1 else name
        side = max(1, size // 2**i)
        refs.append((path, i, (side, side, 4 * 2**i)))

    def tag_content(kind, ref=None):
        if ref is None:
            return summary.content(kind, **common)
        path, index, shape = ref
        return summary.content(
            kind, path, layer_index=index, layer_class="Conv2D", output_shape=shape, **common
        )

    run_dir = os.path.join(logdir, metadata.RUN_SUBDIR)
    writer = tf.summary.create_file_writer(run_dir)
    tags = {}
    with writer.as_default():
        for step in range(epochs + 1):
            progress = step / max(epochs, 1)
            seconds = {}
            if metadata.PROBES in kinds and step == 0:
                tags["probes"] = tag_content(metadata.PROBES)
                summary.write_probes(tags["probes"], images, step, labels=labels, seconds=0.01)
            for ref in refs:
                for kind in kinds:
                    if kind == metadata.PROBES or (kind in metadata.CAM_KINDS and ref != refs[-1]):
                        continue
                    tc = tag_content(kind, ref)
                    tags[metadata.tag_name(kind, ref[0])] = tc
                    spent = 0.01 + 0.001 * ref[1]
                    _write_kind(kind, tc, ref, step, progress, images, labels, centers, rng, spent)
                    seconds[kind] = seconds.get(kind, 0.0) + spent
            if timings:
                summary.write_timings(seconds, step)
        writer.flush()
    writer.close()
    return {"run_dir": run_dir, "tags": tags, "steps": list(range(epochs + 1)), "labels": labels}


def _write_kind(kind, tag_content, ref, step, progress, images, labels, centers, rng, seconds):
    """Write one tag's step with arrays that sharpen as ``progress`` goes from 0 to 1."""
    _, index, (side, _, channels) = ref
    n, size = len(images), images.shape[1]
    if kind == metadata.FEATURE_MAPS:
        small = images[:, :: size // side, :: size // side, :]
        weights = np.cos(np.arange(3)[:, None] + np.arange(channels)[None, :] * (1 + progress))
        maps = np.maximum(small @ weights + 0.1 * rng.standard_normal((n, side, side, channels)), 0)
        summary.write_feature_maps(tag_content, maps, step, seconds=seconds)
    elif kind == metadata.FILTER_PATTERNS:
        count = min(channels, 16)
        patterns = np.stack([_grating(size, f, progress) for f in range(count)])
        activations = (1 + np.arange(count)) * (0.2 + progress)
        activations[-1] = 0.0 if count > 1 else activations[-1]
        summary.write_filter_patterns(
            tag_content,
            patterns,
            step,
            filters=range(count),
            activations=activations,
            start_activations=activations * 0.1,
            dead=[count - 1] if count > 1 else [],
            seconds=seconds,
        )
    elif kind in metadata.CAM_KINDS:
        yy, xx = np.mgrid[0:size, 0:size]
        width = size * (0.5 - 0.3 * progress)
        maps = np.stack(
            [np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2)) for cy, cx in centers]
        )
        probability = np.clip(1 / 3 + progress * 0.6 + 0.01 * np.arange(n), 0, 1)
        predicted = labels if progress >= 0.5 else np.zeros_like(labels)
        summary.write_cam(
            tag_content,
            maps,
            step,
            class_index=predicted,
            predicted=predicted,
            probability=probability,
            target_probability=probability,
            cam_max=maps.max(axis=(1, 2)) * (1 + 5 * progress),
            labels=labels,
            seconds=seconds,
        )
    else:
        gradient = np.gradient(images.mean(axis=-1), axis=(1, 2))
        edges = np.stack([gradient[0], gradient[1], gradient[0] - gradient[1]], axis=-1)
        noise = (1 - progress) * 0.5 * rng.standard_normal(edges.shape) * np.abs(edges).max()
        summary.write_projection(
            tag_content,
            edges + noise,
            step,
            channel=[index % channels] * n,
            activation=np.full(n, 1.0 + progress),
            position=[(side // 2, side // 2)] * n,
            seconds=seconds,
        )


def _probe_images(rng, count, size):
    """Coloured circles, squares and triangles on noise: images in [0, 1], labels, centres."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = 0.1 * rng.random((count, size, size, 3))
    labels = np.arange(count) % len(CLASS_NAMES)
    centers = []
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        radius = size * 0.2
        if label == 0:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        elif label == 1:
            mask = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
        else:
            mask = (yy - cy + radius >= 0) & (np.abs(xx - cx) <= (yy - cy + radius) / 2)
            mask &= yy <= cy + radius
        images[i][mask] = rng.uniform(0.5, 1.0, 3)
        centers.append((cy, cx))
    return images.astype(np.float32), labels, centers


def _grating(size, index, progress):
    """An RGB sinusoidal grating for filter ``index`` whose contrast grows with progress."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = index * 0.7
    wave = np.sin(2 * np.pi * (2 + index % 4) * (np.cos(angle) * xx + np.sin(angle) * yy))
    colour = 0.5 + 0.5 * np.cos(index + np.arange(3) * 2.1)
    return np.clip(0.5 + (0.1 + 0.4 * progress) * wave[..., None] * colour, 0, 1)


def data_provider(logdir, samples_per_plugin=None):
    """A TensorBoard data provider over ``logdir``, built (and sampling) as TensorBoard does.

    Uses ``LocalDataIngester`` with TensorBoard's flag defaults, loads once, and returns
    ``(provider, ctx, experiment_id)``: the request context and experiment id that every
    ``list_*``/``read_*`` call needs.

    Args:
        logdir: the log directory.
        samples_per_plugin: e.g. ``{"cnnvis": 1000}``; default keeps TensorBoard's own
            (10 blob-sequence samples per tag in the Python loader).

    Example:
        >>> provider, ctx, eid = data_provider(logdir, {"cnnvis": 1000})
        >>> provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name="cnnvis")
    """
    import argparse

    from tensorboard import context
    from tensorboard.backend.event_processing import data_ingester

    flags = argparse.Namespace(
        logdir=logdir,
        logdir_spec="",
        samples_per_plugin=dict(samples_per_plugin or {}),
        purge_orphaned_data=True,
        max_reload_threads=1,
        reload_multifile=None,
        reload_multifile_inactive_secs=86400,
        detect_file_replacement=None,
        reload_interval=0,
        reload_task="blocking",
    )
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    return ingester.data_provider, context.RequestContext(), ""


def read_run(logdir, run=metadata.RUN_SUBDIR):
    """Every cnnvis step of ``run``, decoded: ``{tag: {step: (facts, [png bytes])}}``.

    Reads through ``data_provider`` with every step kept.

    Example:
        >>> steps = read_run(logdir)
        >>> facts, pngs = steps["grad_cam/conv2"][3]
    """
    provider, ctx, eid = data_provider(str(logdir), {metadata.PLUGIN_NAME: 0})
    blobs = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1_000_000
    ).get(run, {})
    return {
        tag: {
            datum.step: summary.decode_step(
                [provider.read_blob(ctx, blob_key=value.blob_key) for value in datum.values]
            )
            for datum in series
        }
        for tag, series in blobs.items()
    }

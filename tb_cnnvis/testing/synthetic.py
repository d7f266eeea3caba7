"""A realistic cnnvis log directory written from procedural arrays, without any training.

The plugin and frontend tests (and anyone designing a view) need data in the stored format
of ``tb_cnnvis.summary``; training a network for it is slow. ``write_synthetic_run`` writes
every registered kind for every layer and epoch through the real writers, from arrays that
change smoothly with the epoch, so the result looks like a (very tidy) training run. Each
view family has one synthesizer here (``_SYNTHESIZERS``); a new method of an existing
family needs none.

Example:
    >>> from tb_cnnvis.testing import write_synthetic_run
    >>> info = write_synthetic_run("/tmp/logs", epochs=3, layers=2, probes=4)
    >>> sorted(info["tags"])[:2]
    ['deconvnet/base/conv2', 'deconvnet/conv1']
"""

import os
from typing import NamedTuple

import numpy as np

from tb_cnnvis import metadata, summary, views

CLASS_NAMES = ("circle", "square", "triangle")


class _Layer(NamedTuple):
    """A synthetic layer: its path, index and output shape (h, w, c)."""

    path: str
    index: int
    shape: tuple


class _Step(NamedTuple):
    """What every synthesizer gets: the step, training progress 0..1, the probes."""

    step: int
    progress: float
    images: np.ndarray
    labels: np.ndarray
    centers: list
    rng: object
    seconds: float
    classes: int = 1


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
    classes_per_probe=1,
    in_events=False,
    layer_names=None,
):
    """Write steps 0..epochs of every kind to ``<logdir>/cnnvis`` from procedural arrays.

    Layers are ``conv1``, ``conv2``, ...; with ``nested`` the last one is ``base/conv<n>``
    (a layer inside a nested model), to exercise paths with slashes. Layer ``i`` has
    ``size / 2**i`` pixels and ``4 * 2**i`` channels. Every layer kind is written for every
    layer, except the class-explaining families: CAMs for the last one, attributions (at
    the input) for the pseudo-layer ``input``.

    Args:
        logdir: the log directory (any ``tf.io.gfile`` path); the run is ``<logdir>/cnnvis``.
        epochs: the last step; steps 0..epochs are written.
        layers: number of conv layers, >= 1.
        probes: number of probe images, >= 1.
        size: input height and width in pixels (a multiple of ``2**(layers - 1)``).
        kinds: the kinds to write (default: ``probes`` and every kind ``views`` registers).
        nested: name the last layer ``base/conv<n>``.
        timings: also write ``cnnvis_seconds/<view>`` scalars.
        seed: random seed.
        classes_per_probe: maps per probe of the class-explaining kinds (CAMs and
            attributions; ``cam_classes`` of the callback): 1 stores one map per probe; more
            store each probe's most probable classes, in the layout of several classes per
            probe (``tb_cnnvis.summary``). At most 3 (the synthetic classes).
        layer_names: the layers' paths, one per layer, instead of ``conv1``, ... (``nested``
            is then ignored): names with slashes, quotes or thousands of characters.

    Returns:
        A dict ``{"run_dir", "tags": {tag: content}, "steps": [0..epochs], "labels"}``.

    Raises:
        ValueError: for an unknown kind or non-positive sizes.
    """
    import tensorflow as tf

    all_kinds = (metadata.PROBES, *views.ALL_VIEWS)
    kinds = tuple(all_kinds if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(all_kinds))
    if unknown or layers < 1 or probes < 1 or epochs < 0:
        raise ValueError(
            f"Need kinds from {list(all_kinds)} (unknown: {unknown}), layers >= 1, probes >= 1 "
            f"and epochs >= 0; got layers={layers}, probes={probes}, epochs={epochs}."
        )
    if layer_names is not None and len(layer_names) != layers:
        raise ValueError(f"layer_names must name {layers} layers; got {len(layer_names)}.")
    if not 1 <= classes_per_probe <= len(CLASS_NAMES):
        raise ValueError(
            f"classes_per_probe must be 1 to {len(CLASS_NAMES)}; got {classes_per_probe}."
        )
    rng = np.random.default_rng(seed)
    images, labels, centers = _probe_images(rng, probes, size)
    common = {"input_shape": (size, size, 3), "probe_count": probes, "class_names": CLASS_NAMES}
    refs = []
    for i in range(layers):
        name = f"conv{i + 1}"
        path = f"base/{name}" if nested and i == layers - 1 else name
        path = path if layer_names is None else str(layer_names[i])
        side = max(1, size // 2**i)
        refs.append(_Layer(path, i, (side, side, 4 * 2**i)))
    at_input = _Layer("input", -1, (size, size, 3))

    def layers_of(family):
        if family.at_input:
            return [at_input]
        return refs[-1:] if family.needs_classifier else refs

    def tag_content(kind, ref=None):
        if ref is None:
            return {**summary.content(kind, **common), **version}
        return as_written({**summary.content(
            kind, ref.path, layer_index=ref.index, output_shape=ref.shape, **common,
            layer_class="InputLayer" if ref.index < 0 else "Conv2D",
        ), **version})  # fmt: skip

    def as_written(content):  # version 1 tags did not describe their view
        old = ("family", "label", "blurb", "view_order")
        return {k: v for k, v in content.items() if not (in_events and k in old)}

    run_dir = os.path.join(logdir, metadata.RUN_SUBDIR)
    version = {"version": 1} if in_events else {}
    writer = tf.summary.create_file_writer(run_dir) if in_events else summary.RunWriter(run_dir)
    tags = {}
    for step in range(epochs + 1):
        with writer.as_default(step=step) if in_events else writer.step(step):
            seconds = {}
            if metadata.PROBES in kinds and step == 0:
                tags["probes"] = tag_content(metadata.PROBES)
                summary.write_probes(tags["probes"], images, step, labels=labels, seconds=0.01)
            for ref in [at_input, *refs]:
                for kind in kinds:
                    if kind == metadata.PROBES:
                        continue
                    family = views.get(kind).family
                    if ref not in layers_of(family):
                        continue
                    content = tag_content(kind, ref)
                    tags[metadata.tag_name(kind, ref.path)] = content
                    spent = 0.01 + 0.001 * ref.index
                    now = _Step(step, step / max(epochs, 1), images, labels, centers, rng, spent,
                                classes_per_probe)  # fmt: skip
                    _SYNTHESIZERS[family.name](content, ref, now)
                    seconds[kind] = seconds.get(kind, 0.0) + spent
            if timings:
                summary.write_timings(seconds, step)
    writer.close()
    return {"run_dir": run_dir, "tags": tags, "steps": list(range(epochs + 1)), "labels": labels}


def _feature_maps(content, ref, now):
    """Channels mixing the probe's colours, sharper with progress."""
    side, _, channels = ref.shape
    n, size = len(now.images), now.images.shape[1]
    small = now.images[:, :: size // side, :: size // side, :]
    weights = np.cos(np.arange(3)[:, None] + np.arange(channels)[None, :] * (1 + now.progress))
    noise = 0.1 * now.rng.standard_normal((n, side, side, channels))
    maps = np.maximum(small @ weights + noise, 0)
    views.feature_maps.write_feature_maps(content, maps, now.step, seconds=now.seconds)


def _filter_patterns(content, ref, now):
    """Gratings whose contrast grows, cropped to a receptive field that grows with depth;
    the last filter is dead, filter 1 data-seeded; a MaCo-style transparency (a centred
    blob) and two diversity members (the grating turned) on every other layer."""
    count = min(ref.shape[2], 16)
    size = now.images.shape[1]
    field = min(size, 3 * 2 ** (ref.index + 1) - 2)
    canvas = min(size, 2 * field)
    top = (canvas - field) // 2
    full = np.stack([_grating(canvas, f, now.progress) for f in range(count)])
    patterns = full[:, top : top + field, top : top + field]
    activations = (1 + np.arange(count)) * (0.2 + now.progress)
    activations[-1] = 0.0 if count > 1 else activations[-1]
    yy, xx = np.mgrid[0:field, 0:field] / max(field - 1, 1) - 0.5
    blob = np.exp(-(yy**2 + xx**2) / (0.05 + 0.1 * now.progress))
    maco = ref.index % 2 == 0
    variants = np.stack([patterns, np.swapaxes(patterns, 1, 2)], axis=1)
    views.filter_patterns.write_filter_patterns(
        content,
        patterns,
        now.step,
        filters=range(count),
        activations=activations,
        start_activations=activations * 0.1,
        dead=[count - 1] if count > 1 else [],
        preset="maco" if maco else "fast",
        canvas=(canvas, canvas),
        crop=(top, top, top + field, top + field),
        receptive_field=_FieldFacts((field, field), (2**ref.index,) * 2, (-top, -top)),
        seeded=[1] if count > 2 else [],
        spectrum="probe_images" if maco else None,
        transparency=np.broadcast_to(blob, (count, field, field)) if maco else None,
        variants=None if maco else variants,
        variant_activations=None if maco else np.stack([activations, 0.9 * activations], 1),
        seconds=now.seconds,
    )


def _deepdream(content, ref, now):
    """The probes with a swirl of the layer's colour that grows with progress."""
    size = now.images.shape[1]
    yy, xx = np.mgrid[0:size, 0:size] / size
    swirl = np.sin(2 * np.pi * (3 + ref.index) * (xx + yy * xx)) * 0.4 * now.progress
    colour = 0.5 + 0.5 * np.cos(ref.index + np.arange(3) * 2.1)
    dreams = np.clip(now.images + swirl[None, ..., None] * colour, 0, 1)
    start = np.full(len(now.images), 1.0 + ref.index)
    gain = 1 + 0.5 * np.arange(len(now.images)) ** 2 + 4 * now.progress  # differs per probe
    views.deepdream.write_deepdream(
        content,
        dreams,
        now.step,
        objective=start * gain,
        start_objective=start,
        octaves=[(size // 2, size // 2), (size, size)],
        steps=10,
        seconds=now.seconds,
    )


def _explained(now):
    """Per map of a class-explaining kind: its probe, class, prediction and probabilities.

    Early on every probe predicts class 0; from half-way, its label. With several classes
    per probe, probe ``p``'s classes are its prediction, then the next ones in turn.
    """
    n, k = len(now.images), now.classes
    predicted = now.labels if now.progress >= 0.5 else np.zeros_like(now.labels)
    probability = np.clip(1 / 3 + now.progress * 0.6 + 0.01 * np.arange(n), 0, 1)
    probe = np.repeat(np.arange(n), k)
    rank = np.tile(np.arange(k), n)
    classes = (predicted[probe] + rank) % len(CLASS_NAMES)
    target = np.where(rank == 0, probability[probe], (1 - probability[probe]) / (rank + 1))
    layout = {"probe": probe} if k > 1 else {}
    return (
        probe,
        rank,
        {
            "class_index": classes,
            "predicted": predicted[probe],
            "probability": probability[probe],
            "target_probability": target,
            "labels": now.labels,
            "seconds": now.seconds,
            **layout,
        },
    )


def _blobs(now, probe, rank, width):
    """A Gaussian on each map's probe shape (moved off it for other classes), ``width`` wide."""
    size = now.images.shape[1]
    yy, xx = np.mgrid[0:size, 0:size]
    centers = [now.centers[p] for p in probe]
    shift = size / 4 * rank
    return np.stack(
        [np.exp(-((yy - cy) ** 2 + (xx - cx - s) ** 2) / (2 * width**2))
         for (cy, cx), s in zip(centers, shift)]
    )  # fmt: skip


def _cam(content, ref, now):
    """A Gaussian on each probe's shape that narrows as training goes on."""
    size = now.images.shape[1]
    if views.get(content["kind"]).params.get("class_agnostic"):
        now = now._replace(classes=1)
    probe, rank, facts = _explained(now)
    maps = _blobs(now, probe, rank, size * (0.5 - 0.3 * now.progress))
    views.cams.write_cam(
        content, maps, now.step, cam_max=maps.max(axis=(1, 2)) * (1 + 5 * now.progress), **facts
    )


def _attribution(content, ref, now):
    """Positive on each probe's shape, negative around it, noisy early on."""
    size = now.images.shape[1]
    probe, rank, facts = _explained(now)
    width = size * (0.3 - 0.15 * now.progress)
    maps = _blobs(now, probe, rank, width) - 0.5 * _blobs(now, probe, rank, 2 * width)
    maps = maps + (1 - now.progress) * 0.2 * now.rng.standard_normal(maps.shape)
    views.attributions.write_attribution(
        content, maps * (0.1 + now.progress), now.step, settings={"synthetic": True}, **facts
    )


def _edges(now):
    """Signed edge maps of the probes with noise that fades (N, H, W, 3)."""
    gradient = np.gradient(now.images.mean(axis=-1), axis=(1, 2))
    edges = np.stack([gradient[0], gradient[1], gradient[0] - gradient[1]], axis=-1)
    scale = np.abs(edges).max()
    return edges + (1 - now.progress) * 0.5 * now.rng.standard_normal(edges.shape) * scale


def _projection(content, ref, now):
    """Edges of the probes, noisy early on."""
    side, _, channels = ref.shape
    n = len(now.images)
    views.projections.write_projection(
        content,
        _edges(now),
        now.step,
        channel=[ref.index % channels] * n,
        activation=np.full(n, 1.0 + now.progress),
        position=[(side // 2, side // 2)] * n,
        seconds=now.seconds,
    )


def _top_examples(content, ref, now):
    """Per filter, the probes' central patches ranked by a filter-specific score."""
    count, n, size = min(ref.shape[2], 4), len(now.images), now.images.shape[1]
    patch = max(2, size // 2 ** (ref.index + 1))
    top = (size - patch) // 2
    k = min(n, 4)
    order = np.array([np.roll(np.arange(n), -f)[:k] for f in range(count)])
    crops = now.images[:, top : top + patch, top : top + patch]
    edges = _edges(now)[:, top : top + patch, top : top + patch]
    field = {"size": (patch, patch), "stride": (2**ref.index,) * 2, "start": (top, top)}
    views.top_examples.write_top_examples(
        content,
        crops[order],
        now.step,
        projections=edges[order],
        filters=range(count),
        indices=order,
        activations=(1.0 + now.progress) * (k - np.arange(k))[None, :] * np.ones((count, 1)),
        positions=np.full((count, k, 2), ref.shape[0] // 2),
        boxes=np.broadcast_to([top, top, top + patch, top + patch], (count, k, 4)),
        receptive_field=_FieldFacts(**field),
        reference_count=n,
        seconds=now.seconds,
    )


class _FieldFacts(NamedTuple):
    size: tuple
    stride: tuple
    start: tuple


_SYNTHESIZERS = {
    "feature_maps": _feature_maps,
    "filter_patterns": _filter_patterns,
    "deepdream": _deepdream,
    "cam": _cam,
    "attribution": _attribution,
    "projection": _projection,
    "top_examples": _top_examples,
}
"""One synthesizer per view family: ``(tag content, layer, step) -> writes the step``."""


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

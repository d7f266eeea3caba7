"""Synthetic runs of class-explaining views for the heads users train: binary, regression,
segmentation, in the stored format with explicit targets (``tb_cnnvis.summary``).

Each step of ``grad_cam/conv2`` carries what the callback's writers store for that head (the
contract shared with the dashboard): ``head``, one ``targets`` caption per map, for
regression the model's ``values`` and float ``labels``, for segmentation a grey mask PNG
right after each map (its ``images`` entry has ``"role": "mask"`` and the map's probe and
class). Every step has ``notes`` (sentences the dashboard shows above the cards), and the
binary run's last step has a map with no positive evidence (``cam_max`` 0, all zeros).

Example:
    >>> from tb_cnnvis.testing import write_head_run
    >>> info = write_head_run("/tmp/logs/binary", "binary")
    >>> info["class_names"]
    ('cat', 'dog')
"""

import os

import numpy as np

from tb_cnnvis import imaging, metadata, summary
from tb_cnnvis.testing.synthetic import _probe_images

HEADS = {
    "binary": ("cat", "dog"),
    "regression": None,
    "segmentation": ("background", "road", "car"),
}
"""The heads written, with their class names (None: a regression has none)."""

LAYER = "conv2"


def write_head_run(logdir, head, *, epochs=2, probes=4, size=32, seed=0):
    """Write probes and ``grad_cam/conv2`` steps 0..epochs of a model with this head.

    Args:
        logdir: the log directory; the run is ``<logdir>/cnnvis``.
        head: ``"binary"`` (two maps per probe, the predicted class's first: class 0 the
            negated logit, class 1 the logit), ``"regression"`` (one map per probe explaining "raise") or
            ``"segmentation"`` (one map per probe for the class present, with its mask).
        epochs: the last step.
        probes: number of probe images.
        size: their height and width.
        seed: random seed.

    Returns:
        A dict ``{"run_dir", "tag", "class_names", "steps": [facts of each step]}``.

    Raises:
        ValueError: for another head.
    """

    if head not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}; got {head!r}.")
    names = HEADS[head]
    rng = np.random.default_rng(seed)
    images, shapes, centers = _probe_images(rng, probes, size)
    common = {"input_shape": (size, size, 3), "probe_count": probes, "class_names": names}
    layer = {"layer_index": 1, "layer_class": "Conv2D", "output_shape": (size // 2, size // 2, 8)}
    cam = summary.content("grad_cam", LAYER, **layer, **common)
    run_dir = os.path.join(logdir, metadata.RUN_SUBDIR)
    writer = summary.RunWriter(run_dir)
    written = []
    labels = (np.arange(probes) % 2) if head == "binary" else None
    for step in range(epochs + 1):
        with writer.step(step):
            if step == 0:
                summary.write_probes(summary.content("probes", **common), images, 0, labels=labels)
            progress = step / max(epochs, 1)
            facts, maps, masks = _STEPS[head](probes, size, centers, shapes, progress)
            facts["notes"] = [f"Synthetic step {step}: {probes} probes, {len(maps)} maps."]
            if head == "binary" and step == epochs:
                maps[0] = 0.0
                facts["cam_max"][0] = 0.0
            _write(cam, step, facts, maps, masks)
            written.append(facts)
    writer.close()
    return {"run_dir": run_dir, "tag": f"grad_cam/{LAYER}", "class_names": names, "steps": written}


def _blob(size, center, width):
    """A Gaussian at ``center`` (y, x), ``width`` pixels wide, peak 1."""
    yy, xx = np.mgrid[0:size, 0:size]
    return np.exp(-((yy - center[0]) ** 2 + (xx - center[1]) ** 2) / (2 * width**2))


def _binary(probes, size, centers, shapes, progress):
    """Two maps per probe, the predicted class's first, each with its own deletion AUC."""
    labels = np.arange(probes) % 2
    p_dog = np.clip(0.5 + (labels - 0.5) * progress * 0.9, 0.01, 0.99)
    predicted = (p_dog >= 0.5).astype(int)
    keys = ("class_index", "predicted", "probability", "target_probability", "cam_max",
            "targets", "deletion_auc", "deletion_auc_random")  # fmt: skip
    maps, facts = [], {key: [] for key in keys}
    for p in range(probes):
        for c in (predicted[p], 1 - predicted[p]):  # most probable first, as cam_classes=2
            name = HEADS["binary"][c]
            maps.append(_blob(size, centers[p], size * (0.15 + 0.2 * c)))
            chosen = p_dog[p] if predicted[p] else 1 - p_dog[p]
            facts["class_index"].append(int(c))
            facts["predicted"].append(int(predicted[p]))
            facts["probability"].append(float(chosen))
            facts["target_probability"].append(float(p_dog[p] if c else 1 - p_dog[p]))
            facts["cam_max"].append(1.0 + c + progress)
            facts["deletion_auc"].append(0.2 + 0.4 * c + 0.01 * p)  # differs by class
            facts["deletion_auc_random"].append(0.5)
            rule = "logit" if c else "negated logit"
            facts["targets"].append(f"class {c} ({name}): {rule}")
    probe = np.repeat(np.arange(probes), 2)
    facts.update(head="binary", labels=labels.tolist(), probe=probe.tolist())
    return facts, np.stack(maps), None


def _regression(probes, size, centers, shapes, progress):
    """One map per probe explaining "raise"; values approach the float labels."""
    labels = 1.5 + np.arange(probes) * 0.75
    values = labels * (0.4 + 0.6 * progress)
    maps = np.stack([_blob(size, centers[p], size * 0.2) for p in range(probes)])
    facts = {
        "head": "regression",
        "class_index": [0] * probes,
        "labels": labels.tolist(),
        "values": values.tolist(),
        "cam_max": [1.0 + progress] * probes,
        "targets": ["regression: raise"] * probes,
    }
    return facts, maps, None


def _segmentation(probes, size, centers, shapes, progress):
    """One map per probe for class 1 or 2, with the mask predicted for that class."""
    classes = 1 + np.arange(probes) % 2
    names = HEADS["segmentation"]
    maps, masks = [], []
    for p in range(probes):
        maps.append(_blob(size, centers[p], size * (0.3 - 0.1 * progress)))
        masks.append(_blob(size, centers[p], size * 0.15) > 0.5)
    facts = {
        "head": "segmentation",
        "class_index": classes.tolist(),
        "cam_max": [1.0 + progress] * probes,
        "targets": [f"segmentation: class '{names[c]}' over its predicted mask" for c in classes],
    }
    return facts, np.stack(maps), np.stack(masks)


_STEPS = {"binary": _binary, "regression": _regression, "segmentation": _segmentation}


def _write(cam, step, facts, maps, masks):
    """One step: each map's PNG, then its mask's (``role: "mask"``) when there are masks."""
    probes = facts.pop("probe", None)
    pixels = imaging.to_uint8(maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12))
    entries, pngs = [], []
    for i, image in enumerate(pixels):
        probe = i if probes is None else probes[i]
        several = {} if probes is None else {"class_index": facts["class_index"][i]}
        entries.append(imaging.image_facts((1, 1), image.shape, 1, 1, probe, **several))
        pngs.append(imaging.encode_png(image[..., None]))
        if masks is not None:
            mask = {**entries[-1], "role": "mask", "class_index": facts["class_index"][i]}
            entries.append(mask)
            pngs.append(imaging.encode_png((masks[i] * 255).astype(np.uint8)[..., None]))
    summary.write_step(cam, step, facts, entries, pngs, seconds=0.01)

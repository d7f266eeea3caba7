"""Feature maps: what each channel of a layer outputs for the probe images.

All layers of the view come from one forward pass (``algorithms.feature_maps.layer_outputs``);
each is stored as one grayscale atlas per probe, one tile per channel, every tile scaled
from its own (probe, channel) range, which the facts keep (see ``tb_cnnvis.summary``).

Example:
    >>> write_feature_maps(tag_content, cv.feature_maps(model, probes, "conv1"), step=3)
"""

import time

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class FeatureMaps(Family):
    """Every channel of a layer's output per probe image (one forward pass for all layers)."""

    name = "feature_maps"
    order = 10
    facts = ("min", "max", "mean", "dead_filters", "sparsity")

    def compute(self, plan, view, refs):
        """All layers' outputs from one forward pass, the pass's time shared among them."""
        from tb_cnnvis.algorithms import feature_maps

        began = time.perf_counter()
        try:
            maps = feature_maps.layer_outputs(
                plan.model,
                plan.probes.inputs,
                [ref.path for ref in refs],
                image_input=plan.options.image_input,
            )
        except Exception as error:  # the shared pass failed: every layer failed
            for ref in refs:
                yield ref, error, 0.0
            return
        shared = (time.perf_counter() - began) / max(len(refs), 1)
        for ref in refs:
            yield ref, maps[ref.path], shared

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write one layer's maps (N, h, w, C)."""
        write_feature_maps(tag_content, result, step, seconds=seconds, metrics=facts)


FAMILY = FeatureMaps()

register(
    View(
        "feature_maps",
        FAMILY,
        "Feature maps",
        "what each channel of the layer responds to in a probe image.",
        default=True,
    )
)


def write_feature_maps(tag_content, maps, step=None, *, seconds=0.0, metrics=None):
    """Write one layer's feature maps: one atlas per probe, one tile per channel.

    Args:
        tag_content: ``summary.content("feature_maps", layer, ...)``.
        maps: float array (N, h, w, C) of layer outputs.
        step: the step.
        seconds: time spent computing them.
        metrics: more facts (``dead_filters``, ``sparsity``; see ``tb_cnnvis.summary``).

    Returns:
        True if written.

    Example:
        >>> write_feature_maps(tag_content, cv.feature_maps(model, probes, "conv1"), step=3)
    """
    summary.check_kind(tag_content, FAMILY.name)
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"feature maps must have shape (N, h, w, C); got {maps.shape}.")
    pixels, low, high, mean = imaging.normalize_channels(maps)
    pngs, images = [], []
    for probe, probe_pixels in enumerate(pixels):
        atlas, grid = imaging.tile_atlas(np.moveaxis(probe_pixels, -1, 0))
        pngs.append(imaging.encode_png(atlas))
        images.append(imaging.image_facts(grid, maps.shape[1:3], maps.shape[3], 1, probe))
    facts = summary.with_metrics({"min": low, "max": high, "mean": mean}, metrics)
    return summary.write_step(tag_content, step, facts, images, pngs, seconds)

"""Feature maps: what each channel of a layer outputs for the probe images.

All layers of the view come from one forward pass (``algorithms.feature_maps.layer_outputs``);
each is stored as one grayscale atlas per probe, one tile per channel, every tile scaled
from its own (probe, channel) range, which the facts keep (see ``tb_cnnvis.summary``).

A real-size network's layers hold hundreds of channels of large maps: a logged step stays
within the callback's byte budget (``max_bytes_per_epoch``), which is shared out among the
layers (a layer that needs less leaves the rest to the others). Within its share a layer
keeps its most active channels (largest mean activation over the probes) first; maps
larger than ``MAX_TILE`` pixels are stored downsampled (area mean) with the true size in
the facts. What is left out is named in the facts, never dropped silently.

Example:
    >>> write_feature_maps(tag_content, cv.feature_maps(model, probes, "conv1"), step=3)
"""

import math
import time
from typing import NamedTuple

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register

MAX_TILE = 64
"""Stored feature-map tiles are at most this many pixels a side (larger maps: downsampled)."""


class StoredMaps(NamedTuple):
    """One layer's feature maps and what of them is stored.

    Attributes:
        maps: float32 (N, h, w, C), the layer's whole output (the metrics read it).
        channels: the channels stored, in tile order, or None for all of them in order.
        factor: the downsampling factor of the stored tiles (1: full size).
        probes: the first probes stored (the cost budget's), or None for all of them.
    """

    maps: np.ndarray
    channels: np.ndarray | None = None
    factor: int = 1
    probes: int | None = None


class FeatureMaps(Family):
    """Every channel of a layer's output per probe image (one forward pass for all layers)."""

    name = "feature_maps"
    order = 10
    facts = (
        "min",
        "max",
        "mean",
        "channels",
        "channel_count",
        "map_size",
        "dead_filters",
        "sparsity",
    )

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
        stored = plan.options.stored_probes  # the probes written (all are computed)
        written = [maps[ref.path][:stored] for ref in refs]
        shares = share_budget(written, plan.options.byte_budget)
        shared = (time.perf_counter() - began) / max(len(refs), 1)
        for ref, part, share in zip(refs, written, shares):
            chosen = stored_maps(part, share)
            yield ref, chosen._replace(maps=maps[ref.path], probes=stored), shared

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write one layer's ``StoredMaps`` (its first ``probes``: the metrics saw them all)."""
        write_feature_maps(
            tag_content,
            result.maps[: result.probes],
            step,
            seconds=seconds,
            metrics=facts,
            channels=result.channels,
            factor=result.factor,
        )


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


def tile_factor(size, max_tile=MAX_TILE):
    """The downsampling factor that brings ``size`` (h, w) to at most ``max_tile`` a side."""
    return max(1, math.ceil(max(size) / max_tile))


def _tile_bytes(maps):
    """Raw stored bytes of one channel of ``maps`` (N, h, w, C) for every probe."""
    factor = tile_factor(maps.shape[1:3])
    return len(maps) * math.ceil(maps.shape[1] / factor) * math.ceil(maps.shape[2] / factor)


def share_budget(layers, budget):
    """Bytes each layer may store: ``budget`` shared out, a layer's unused share passed on.

    Args:
        layers: each layer's maps (N, h, w, C).
        budget: raw bytes (8-bit pixels) for all of them, or None for no bound.

    Returns:
        A list of byte counts (None for no bound), one per layer.
    """
    if budget is None:
        return [None] * len(layers)
    needs = [_tile_bytes(maps) * maps.shape[-1] for maps in layers]
    shares = [0] * len(layers)
    left, pending = int(budget), sorted(range(len(layers)), key=lambda i: needs[i])
    while pending:
        i = pending.pop(0)
        shares[i] = min(needs[i], left // (len(pending) + 1))
        left -= shares[i]
    return shares


def stored_maps(maps, share):
    """What to store of one layer's maps within ``share`` bytes (None: everything).

    Every channel is kept, in order, when it fits; otherwise the most active ones (largest
    mean activation over probes and positions; ties to the lower index), at least one.
    """
    factor = tile_factor(maps.shape[1:3])
    channels = maps.shape[-1]
    fits = share is None or _tile_bytes(maps) * channels <= share
    if fits:
        return StoredMaps(maps, None, factor)
    keep = max(1, share // _tile_bytes(maps))
    activity = np.nan_to_num(maps.mean(axis=(0, 1, 2)), nan=-np.inf)
    order = np.lexsort((np.arange(channels), -activity))[:keep]
    return StoredMaps(maps, order.astype(np.int64), factor)


def _downsample(values, factor):
    """Area mean over ``factor`` x ``factor`` blocks of (N, h, w, C) (edges repeated)."""
    if factor == 1:
        return values
    n, h, w, c = values.shape
    rows, cols = math.ceil(h / factor), math.ceil(w / factor)
    padded = np.pad(
        values, [(0, 0), (0, rows * factor - h), (0, cols * factor - w), (0, 0)], "edge"
    )
    return padded.reshape(n, rows, factor, cols, factor, c).mean(axis=(2, 4))


def write_feature_maps(
    tag_content, maps, step=None, *, seconds=0.0, metrics=None, channels=None, factor=1
):
    """Write one layer's feature maps: one atlas per probe, one tile per stored channel.

    Args:
        tag_content: ``summary.content("feature_maps", layer, ...)``.
        maps: float array (N, h, w, C) of layer outputs.
        step: the step.
        seconds: time spent computing them.
        metrics: more facts (``dead_filters``, ``sparsity``; see ``tb_cnnvis.summary``).
        channels: the channels to store, in tile order (None: all, in order).
        factor: store tiles downsampled by this factor (area mean).

    Returns:
        True if written.

    Example:
        >>> write_feature_maps(tag_content, cv.feature_maps(model, probes, "conv1"), step=3)
    """
    summary.check_kind(tag_content, FAMILY.name)
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"feature maps must have shape (N, h, w, C); got {maps.shape}.")
    kept = np.arange(maps.shape[-1]) if channels is None else np.asarray(channels, np.int64)
    chosen = maps[..., kept]
    _, low, high, mean = imaging.normalize_channels(chosen)
    pixels = _scaled(_downsample(np.asarray(chosen, np.float64), int(factor)), low, high)
    tile = pixels.shape[1:3]
    pngs, images = [], []
    for probe, probe_pixels in enumerate(pixels):
        atlas, grid = imaging.tile_atlas(np.moveaxis(probe_pixels, -1, 0))
        pngs.append(imaging.encode_png(atlas))
        images.append(imaging.image_facts(grid, tile, len(kept), 1, probe))
    facts = {
        "min": low,
        "max": high,
        "mean": mean,
        "channels": summary.int_list(kept),
        "channel_count": int(maps.shape[-1]),
        "map_size": summary.int_list(maps.shape[1:3]),
    }
    facts = summary.with_metrics(facts, metrics)
    return summary.write_step(tag_content, step, facts, images, pngs, seconds)


def _scaled(values, low, high):
    """uint8 pixels of (N, h, w, C) values, each (probe, channel) scaled from low..high."""
    finite = np.isfinite(values)
    lows, span = low[:, None, None, :], (high - low)[:, None, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(span > 0, (np.where(finite, values, 0.0) - lows) / span, 0.0)
    return imaging.to_uint8(np.where(finite, scaled, 0.0))

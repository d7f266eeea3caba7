"""Start images for filter patterns: seeded draws, and crops of data for filters left dead.

Start images depend only on (seed, filter index, diversity member), drawn by the
parametrization, so that a pattern changes across epochs only because the model did.

A filter that fires on real images can still end its optimization dead: its ReLUs are off
for the start image and the redirected gradients of the rescue phase
(``fv_objectives.redirected_relu``) found no way in (a saturated nonlinearity on the way,
a conjunction the gradient cannot reach from grey). Such a filter starts again from
data: the canvas-sized crop of the reference (or probe) image that excites it most,
centred on its strongest unit's receptive field (Zeiler & Fergus 2014 find the same unit
for their top examples), and is optimized from there (``seed_crops``). Under MaCo the
restart keeps the crop's own magnitude spectrum (a natural image's, as the method asks),
so that it starts from the crop itself rather than from its phase alone. Which filters
were seeded is recorded with the patterns.

Example:
    >>> crops, fires = seed_crops(model, "conv3", images, [4, 9], canvas, input_range)
    >>> crops.shape, fires
    ((2, 36, 36, 3), array([ True, False]))
"""

import numpy as np

from tb_cnnvis.algorithms.fv_canvas import centred_corners
from tb_cnnvis.algorithms.fv_maco import magnitude_spectrum
from tb_cnnvis.algorithms.fv_params import _rng

MEMBER_NOISE = 0.03
"""Noise (unit scale) added to the data-seeded start of diversity members after the first,
so that the diversity penalty can tell them apart."""


def start_params(parametrization, filters, members, shape, seed):
    """The start parameters of slots (filter, member), stacked in slot order.

    Args:
        parametrization: the preset's parametrization.
        filters: (S,) the filter of each slot.
        members: (S,) the diversity member of each slot.
        shape: (h, w, C) of the canvas.
        seed: the user's seed.

    Returns:
        float32 (S, ...) parameters.

    Example:
        >>> start_params(PixelImage(), [0, 0, 1], [0, 1, 0], (16, 16, 3), seed=0).shape
        (3, 16, 16, 3)
    """
    return np.stack(
        [parametrization.init([f], shape, seed, int(m))[0] for f, m in zip(filters, members)]
    )


def seeded_params(parametrization, crops, filters, members, shape, seed):
    """Parameters whose images are the unit-scale ``crops`` of each slot's filter.

    Members after the first get a little seeded noise on top (``MEMBER_NOISE``).
    """
    units = []
    for crop, f, m in zip(crops, filters, members):
        if m:
            crop = crop + _rng(seed, f, int(m)).normal(0.0, MEMBER_NOISE, crop.shape)
        units.append(np.clip(crop, 0.0, 1.0))
    return parametrization.from_unit(np.stack(units).astype(np.float32), shape)


def seed_crops(model, path, images, filters, canvas, input_range):
    """For each filter, the canvas-sized crop of ``images`` that excites it most.

    Args:
        model: the model.
        path: the layer's path.
        images: (N, H, W, C) float32 images in the model's scale, at least the canvas size.
        filters: the filter indices.
        canvas: the layer's ``fv_canvas.Canvas``.
        input_range: the model's ``InputRange``.

    Returns:
        ``(crops, fires)``: unit-scale (display RGB) crops (F, h, w, C) and, per filter,
        whether its strongest unit in any image is above 0.
    """
    from tb_cnnvis.algorithms.top_examples import top_examples

    best = top_examples(model, images, path, k=1, filters=filters, with_projections=False)
    fires = best.activations[:, 0] > 0
    size = np.asarray(images).shape[1:3]
    corners = centred_corners(best.receptive_field, best.positions[:, 0], canvas.size, size)
    height, width = canvas.size
    crops = np.stack(
        [
            images[index, top : top + height, left : left + width]
            for index, (top, left) in zip(best.indices[:, 0], corners)
        ]
    )
    return np.asarray(input_range.to_unit(crops), np.float32), fires


def unmoved(out):
    """Per slot, True when the optimization did not move the activation (``out``: the
    loop's outputs): the filter does not respond to its input (a ReLU off everywhere, a
    constant). Relative to the activation's own size, so tiny deep-layer values still move.

    Example:
        >>> unmoved({"start": np.array([0.0, -0.3, 0.2]), "final": np.array([0.0, -0.1, 0.9])})
        array([ True, False, False])
    """
    start, final = np.asarray(out["start"], np.float64), np.asarray(out["final"], np.float64)
    return np.abs(final - start) <= 1e-6 * np.maximum(np.abs(start), np.abs(final))


def reseed_dead(model, path, images, canvas, rng, out, optimize, slots):
    """Optimize the filters left dead again, from their best data crops.

    Args:
        model: the model.
        path: the layer's path.
        images: the reference images (model scale).
        canvas: the layer's ``Canvas``.
        rng: the model's ``InputRange``.
        out: the first optimization's outputs per slot (``fv_loop`` names).
        optimize: ``optimize(params, slot_filters, spectra)`` runs the compiled loop on
            slots (``spectra``: per-slot magnitudes for MaCo, or None).
        slots: ``(parametrization, slot_filters, slot_members, shape, seed)``.

    Returns:
        ``(outputs, seeded)``: the outputs with the re-optimized slots replaced (an image
        still dead after optimization gives way to its live start), and the filters
        whose pattern now comes from data.

    Example:
        >>> out, seeded = reseed_dead(model, "conv3", images, canvas, rng, out, optimize, slots)
        >>> seeded
        array([4])
    """
    param, slot_filters, slot_members, shape, seed = slots
    candidates = np.unique(slot_filters[unmoved(out)])
    crops, fires = seed_crops(model, path, images, candidates, canvas, rng)
    crop_of = {int(f): crop for f, crop, fire in zip(candidates, crops, fires) if fire}
    # Every member of a seeded filter starts again (diversity groups stay whole).
    again = np.flatnonzero([int(f) in crop_of for f in slot_filters])
    if again.size == 0:
        return out, np.zeros(0, np.int64)
    params = seeded_params(
        param,
        [crop_of[int(slot_filters[i])] for i in again],
        slot_filters[again],
        slot_members[again],
        shape,
        seed,
    )
    spectra = None
    if getattr(param, "uses_spectrum", False):  # MaCo: the crop's own (natural) magnitude
        size = shape[:2]
        spectra = np.stack(
            [magnitude_spectrum(crop_of[int(slot_filters[i])][None], size, crops=1) for i in again]
        )
    redo = optimize(params, slot_filters[again], spectra)
    # Keep the optimized image when it is live, else its (live) data-seeded start.
    keep_start = (redo["final"] <= 0) & (redo["start"] > 0)
    redo["images"][keep_start] = redo["start_images"][keep_start]
    redo["final"][keep_start] = redo["start"][keep_start]
    merged = {name: value.copy() for name, value in out.items()}
    for name, value in redo.items():
        merged[name][again] = value
    live = again[merged["final"][again] > 0]
    return merged, np.unique(slot_filters[live]).astype(np.int64)

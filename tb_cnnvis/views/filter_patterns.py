"""Filter patterns: an input synthesized for each filter by activation maximization.

The first ``max_filters_per_layer`` filters of each layer get a pattern, with a fixed seed
so that two epochs differ only because the model did (``algorithms.filters``). The
callback's reference images (else its probe images) give MaCo its magnitude spectrum and
the data-seeded restarts of filters left dead. What is stored is the display crop of
each canvas (the central unit's receptive field), MaCo's transparency and the diversity
members as extra atlases (see ``tb_cnnvis.summary``).

Example:
    >>> write_filter_patterns(tag_content, rgb, 3, filters=[0, 1], activations=[1.2, 0.4])
"""

import dataclasses

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class FilterPatterns(Family):
    """One synthesized image per filter of a layer (and per diversity member)."""

    name = "filter_patterns"
    order = 20
    frequency = "filters_every_n_epochs"
    facts = (
        "atlases",
        "filters",
        "activations",
        "start_activations",
        "dead",
        "preset",
        "canvas",
        "crop",
        "receptive_field",
        "seeded",
        "spectrum",
        "diversity",
        "diversity_activations",
        "drift",
        "drift_from",
    )

    def estimated_bytes(self, plan, view, ref):
        """One RGB pattern per filter shown, at most at input size."""
        count = min(int(ref.output_shape[-1]), plan.options.max_filters_per_layer)
        return 3 * count * int(np.prod(plan.probes.images.shape[1:3]))

    def check(self, plan, view, ref):
        """Raise if no canvas size can be found for ``ref`` (a model that takes any size
        gets the reference or probe images' size: see ``fv_canvas.working_size``)."""
        from tb_cnnvis.algorithms import fv_canvas

        natural, _ = _natural(plan)
        pixels = natural[plan.probes.image_name] if isinstance(natural, dict) else natural
        fv_canvas.check_size(plan.model, ref, None, pixels.shape[1:3])

    def compute_layer(self, plan, view, ref):
        """A ``FilterPatterns`` for the layer's first ``max_filters_per_layer`` filters,
        its ``spectrum`` naming the images it came from (``"reference_images"``,
        ``"probe_images"``) or ``"power_law"``."""
        from tb_cnnvis.algorithms import filters

        count = min(int(ref.output_shape[-1]), plan.options.max_filters_per_layer)
        natural, source = _natural(plan)
        side = plan.probes.side  # held at the probes' mean while the image is optimized
        result = filters.filter_patterns(
            plan.model,
            ref.path,
            filters=list(range(count)),
            input_range=plan.options.input_range,
            reference_images=natural,
            side_inputs=None if side is None else {k: v.mean(axis=0) for k, v in side.items()},
            image_input=plan.options.image_input,
            **plan.options.filter_options,
        )
        if result.spectrum == "images":
            result = dataclasses.replace(result, spectrum=source)
        return result

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write a ``FilterPatterns``: display crops as display RGB, extra atlases."""
        canvas = result.canvas
        write_filter_patterns(
            tag_content,
            result.display(),
            step,
            filters=result.filters,
            activations=np.asarray(result.activations, dtype=np.float64),
            start_activations=result.start_activations,
            dead=np.asarray(result.dead).reshape(-1),
            preset=result.preset,
            canvas=canvas.size,
            crop=canvas.crop,
            receptive_field=canvas.field,
            seeded=result.seeded,
            spectrum=result.spectrum,
            transparency=result.transparency(),
            variants=result.display_variants(),
            variant_activations=result.variant_activations,
            seconds=seconds,
            metrics=facts,
        )


def _natural(plan):
    """The natural images of the patterns (reference images, else the probes) and their
    name: ``(images, "reference_images" or "probe_images")``."""
    if plan.options.reference_images is not None:
        return plan.options.reference_images, "reference_images"
    return plan.probes.inputs, "probe_images"


FAMILY = FilterPatterns()

register(
    View(
        "filter_patterns",
        FAMILY,
        "Filter patterns",
        "inputs synthesized to excite each filter most (activation maximization).",
        default=True,
    )
)


def write_filter_patterns(
    tag_content,
    images,
    step=None,
    *,
    filters,
    activations,
    start_activations=None,
    dead=(),
    preset=None,
    canvas=None,
    crop=None,
    receptive_field=None,
    seeded=(),
    spectrum=None,
    transparency=None,
    variants=None,
    variant_activations=None,
    seconds=0.0,
    metrics=None,
):
    """Write one layer's filter patterns: an RGB atlas (one tile per filter) and extras.

    Args:
        tag_content: ``summary.content("filter_patterns", layer, ...)``.
        images: (F, h, w, 3 or 1) display images (the display crops), floats in [0, 1] or
            uint8.
        step: the step.
        filters: the F filter (channel) indices, in tile order.
        activations: the F final mean activations.
        start_activations: the F activations of the starting images (or None).
        dead: indices of filters that never responded (no input moved their activation).
        preset: the preset's name.
        canvas: (H, W) of the canvas the patterns were optimized on (default: the tiles').
        crop: (top, left, bottom, right) of the tiles in the canvas (default: all of it).
        receptive_field: a ``ReceptiveField`` (``size``, ``stride``, ``start``) or None.
        seeded: filter indices whose pattern started from a data crop.
        spectrum: MaCo's magnitude source (``"reference_images"``, ``"probe_images"`` or
            ``"power_law"``), None for other presets.
        transparency: (F, h, w) opacity in [0, 1] (MaCo's attribution), or None.
        variants: (F, n, h, w, 3 or 1) display images of the diversity members, or None.
        variant_activations: (F, n) their activations, or None.
        seconds: time spent synthesizing them.
        metrics: more facts (``drift``, ``drift_from``; see ``tb_cnnvis.summary``).

    Returns:
        True if written.

    Example:
        >>> result = cv.filter_patterns(model, "conv2", range(8), preset="maco")
        >>> write_filter_patterns(tag_content, result.display(), 3, filters=result.filters,
        ...     activations=result.activations, transparency=result.transparency())
    """
    summary.check_kind(tag_content, FAMILY.name)
    pixels = imaging.as_rgb(summary.pixels_of(images, "images", ndim=4))
    tile = pixels.shape[1:3]
    atlas, grid = imaging.tile_atlas(pixels)
    names, pngs = ["patterns"], [imaging.encode_png(atlas)]
    descriptions = [imaging.image_facts(grid, tile, len(pixels), 3)]
    if transparency is not None:
        alpha = summary.pixels_of(np.asarray(transparency)[..., None], "transparency", ndim=4)
        if alpha.shape[:3] != pixels.shape[:3]:
            raise ValueError(f"transparency {alpha.shape[:3]} does not match {pixels.shape}.")
        atlas, _ = imaging.tile_atlas(alpha[..., 0], grid)
        names.append("transparency")
        pngs.append(imaging.encode_png(atlas))
        descriptions.append(imaging.image_facts(grid, tile, len(pixels), 1))
    members = 1
    if variants is not None:
        rows = imaging.as_rgb(summary.pixels_of(variants, "variants", ndim=5))
        if rows.shape[0] != len(pixels) or rows.shape[2:4] != tile:
            raise ValueError(f"variants {rows.shape} do not match patterns {pixels.shape}.")
        members = rows.shape[1]
        atlas, shape = imaging.tile_atlas(rows.reshape(-1, *rows.shape[2:]), rows.shape[:2])
        names.append("diversity")
        pngs.append(imaging.encode_png(atlas))
        descriptions.append(imaging.image_facts(shape, tile, rows.shape[0] * members, 3))
    field = None
    if receptive_field is not None:
        field = {
            k: summary.int_list(getattr(receptive_field, k)) for k in ("size", "stride", "start")
        }
    facts = {
        "atlases": names,
        "filters": summary.int_list(filters),
        "activations": summary.float_list(activations),
        "start_activations": summary.float_list(start_activations),
        "dead": summary.int_list(dead),
        "preset": None if preset is None else str(preset),
        "canvas": summary.int_list(tile if canvas is None else canvas),
        "crop": summary.int_list((0, 0, *tile) if crop is None else crop),
        "receptive_field": field,
        "seeded": summary.int_list(seeded),
        "spectrum": spectrum,
        "diversity": int(members),
        "diversity_activations": None
        if variant_activations is None
        else np.asarray(variant_activations, dtype=np.float64).reshape(len(pixels), members),
    }
    facts = summary.with_metrics(facts, metrics)
    return summary.write_step(tag_content, step, facts, descriptions, pngs, seconds)

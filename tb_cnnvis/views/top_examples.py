"""Top-activating examples: the reference images that excite each filter most.

Computed on the callback's ``reference_images`` (Zeiler & Fergus 2014, Fig. 2): per filter,
the patches under the strongest unit's receptive field beside the deconvnet projection of
that activation. A layer whose receptive field cannot be computed (after an upsampling
layer, say) is refused at ``set_model``.

Example:
    >>> write_top_examples(tag_content, patches, 3, projections=proj, filters=[0, 1], ...)
"""

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class TopExamples(Family):
    """Per filter, the top reference patches beside their deconvnet projections."""

    name = "top_examples"
    order = 60
    source = "reference"
    frequency = "top_examples_every_n_epochs"
    facts = (
        "atlases",
        "filters",
        "indices",
        "activations",
        "positions",
        "boxes",
        "projection_scale",
        "receptive_field",
        "reference_count",
    )

    def check(self, plan, view, ref):
        """The layer needs a receptive field (to cut the patches)."""
        from tb_cnnvis.algorithms.receptive_field import receptive_field

        receptive_field(plan.model, ref.path, input_size=plan.probes.images.shape[1:3])

    def estimated_bytes(self, plan, view, ref):
        """Two RGB mosaics (patches, projections) of ``top_k`` patches per filter shown."""
        from tb_cnnvis.algorithms.receptive_field import receptive_field

        count = min(int(ref.output_shape[-1]), plan.options.max_filters_per_layer)
        size = plan.probes.images.shape[1:3]
        patch = receptive_field(plan.model, ref.path, input_size=size).patch_size
        return 2 * 3 * count * plan.options.top_k * patch[0] * patch[1]

    def compute_layer(self, plan, view, ref):
        """A ``TopExamples`` for the layer's first ``max_filters_per_layer`` filters."""
        from tb_cnnvis.algorithms import top_examples

        count = min(int(ref.output_shape[-1]), plan.options.max_filters_per_layer)
        return top_examples.top_examples(
            plan.model,
            plan.options.reference_images,
            ref.path,
            k=plan.options.top_k,
            filters=list(range(count)),
            image_input=plan.options.image_input,
        )

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write a ``TopExamples``: patches as display RGB, projections in RGB order."""
        from tb_cnnvis.input_range import to_display_rgb

        grid = result.patches.shape[:2]
        flat = result.patches.reshape(-1, *result.patches.shape[2:])
        patches = to_display_rgb(flat, context.input_range).reshape(*grid, *flat.shape[1:3], -1)
        projections = result.projections
        if projections is not None and getattr(context.input_range, "bgr", False):
            projections = projections[..., ::-1]  # show colour channels in RGB order
        write_top_examples(
            tag_content,
            patches,
            step,
            projections=projections,
            filters=result.filters,
            indices=result.indices,
            activations=result.activations,
            positions=result.positions,
            boxes=result.boxes,
            receptive_field=result.receptive_field,
            reference_count=result.count,
            seconds=seconds,
        )


FAMILY = TopExamples()

register(
    View(
        "top_examples",
        FAMILY,
        "Top examples",
        "the reference images that excite each filter most, each patch beside its deconvnet "
        "projection (Zeiler & Fergus, 2014).",
    )
)


def write_top_examples(
    tag_content,
    patches,
    step=None,
    *,
    projections=None,
    filters,
    indices,
    activations,
    positions,
    boxes,
    receptive_field,
    reference_count,
    seconds=0.0,
):
    """Write one layer's top-activating reference examples: a patch atlas and a projection atlas.

    Zeiler & Fergus 2014, Fig. 2: row ``f`` of each atlas shows filter ``filters[f]``'s
    ``k`` strongest reference images, best first; see ``tb_cnnvis.summary``.

    Args:
        tag_content: ``summary.content("top_examples", layer, ...)``.
        patches: (F, k, ph, pw, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step.
        projections: (F, k, ph, pw, C) signed deconvnet projections (C in (1, 3)), or None.
        filters: the F channel indices.
        indices: (F, k) positions of the images in the reference set.
        activations: (F, k) the channel's maximum in each image.
        positions: (F, k, 2) the (y, x) of that maximum in layer coordinates.
        boxes: (F, k, 4) the patch's (top, left, bottom, right) in the image.
        receptive_field: a ``ReceptiveField`` (or anything with ``size``, ``stride``,
            ``start``).
        reference_count: how many reference images were searched.
        seconds: time spent.

    Returns:
        True if written.

    Example:
        >>> top = cv.top_examples(model, reference, "conv2", k=9, filters=range(8))
        >>> write_top_examples(tag_content, to_display_rgb(top.patches), 3,
        ...     projections=top.projections, filters=top.filters, indices=top.indices,
        ...     activations=top.activations, positions=top.positions, boxes=top.boxes,
        ...     receptive_field=top.receptive_field, reference_count=top.count)
    """
    summary.check_kind(tag_content, FAMILY.name)
    pixels = imaging.as_rgb(summary.pixels_of(patches, "patches", ndim=5))
    rows, cols = pixels.shape[:2]
    tiles = pixels.reshape(rows * cols, *pixels.shape[2:])
    atlas, grid = imaging.tile_atlas(tiles, (rows, cols))
    pngs = [imaging.encode_png(atlas)]
    images = [imaging.image_facts(grid, pixels.shape[2:4], len(tiles), 3)]
    scales = None
    if projections is not None:
        projections = np.asarray(projections)
        if projections.shape[:4] != pixels.shape[:4]:
            raise ValueError(
                f"projections of shape {projections.shape} do not match patches {pixels.shape}."
            )
        flat = projections.reshape(rows * cols, *projections.shape[2:])
        converted = [imaging.signed_to_rgb(p) for p in flat]
        atlas, grid = imaging.tile_atlas(np.stack([rgb for rgb, _ in converted]), (rows, cols))
        pngs.append(imaging.encode_png(atlas))
        images.append(imaging.image_facts(grid, pixels.shape[2:4], len(tiles), 3))
        scales = np.reshape([scale for _, scale in converted], (rows, cols))
    shape = (rows, cols)
    facts = {
        "atlases": ["patches", "projections"][: len(pngs)],
        "filters": summary.int_list(filters),
        "indices": np.asarray(indices, dtype=np.int64).reshape(shape),
        "activations": np.asarray(activations, dtype=np.float64).reshape(shape),
        "positions": np.asarray(positions, dtype=np.int64).reshape(*shape, 2),
        "boxes": np.asarray(boxes, dtype=np.int64).reshape(*shape, 4),
        "projection_scale": scales,
        "receptive_field": {
            key: summary.int_list(getattr(receptive_field, key))
            for key in ("size", "stride", "start")
        },
        "reference_count": int(reference_count),
    }
    if len(facts["filters"]) != rows:
        raise ValueError(f"{len(facts['filters'])} filters for {rows} rows of patches.")
    return summary.write_step(tag_content, step, facts, images, pngs, seconds)

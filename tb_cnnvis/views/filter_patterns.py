"""Filter patterns: an input synthesized for each filter by activation maximization.

The first ``max_filters_per_layer`` filters of each layer get a pattern, with a fixed seed
so that two epochs differ only because the model did (``algorithms.filters``).

Example:
    >>> write_filter_patterns(tag_content, rgb, 3, filters=[0, 1], activations=[1.2, 0.4])
"""

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class FilterPatterns(Family):
    """One synthesized image per filter of a layer."""

    name = "filter_patterns"
    order = 20
    frequency = "filters_every_n_epochs"
    facts = ("filters", "activations", "start_activations", "dead", "drift", "drift_from")

    def estimated_bytes(self, plan, view, ref):
        """One RGB pattern per filter shown, at most at input size."""
        count = min(int(ref.output_shape[-1]), plan.options.max_filters_per_layer)
        return 3 * count * int(np.prod(plan.probes.images.shape[1:3]))

    def compute_layer(self, plan, view, ref):
        """A ``FilterPatterns`` for the layer's first ``max_filters_per_layer`` filters."""
        from tb_cnnvis.algorithms import filters

        count = min(int(ref.output_shape[-1]), plan.options.max_filters_per_layer)
        return filters.filter_patterns(
            plan.model,
            ref.path,
            filters=list(range(count)),
            input_range=plan.options.input_range,
            **plan.options.filter_options,
        )

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write a ``FilterPatterns`` as display RGB."""
        write_filter_patterns(
            tag_content,
            result.display(),
            step,
            filters=result.filters,
            activations=np.asarray(result.activations, dtype=np.float64),
            start_activations=result.start_activations,
            dead=np.asarray(result.dead).reshape(-1),
            seconds=seconds,
            metrics=facts,
        )


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
    seconds=0.0,
    metrics=None,
):
    """Write one layer's filter patterns as one RGB atlas (one tile per filter).

    Args:
        tag_content: ``summary.content("filter_patterns", layer, ...)``.
        images: (F, H, W, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step.
        filters: the F filter (channel) indices, in tile order.
        activations: the F final mean activations.
        start_activations: the F activations of the starting images (or None).
        dead: indices of filters whose activation stayed <= 0.
        seconds: time spent synthesizing them.
        metrics: more facts (``drift``, ``drift_from``; see ``tb_cnnvis.summary``).

    Returns:
        True if written.
    """
    summary.check_kind(tag_content, FAMILY.name)
    pixels = imaging.as_rgb(summary.pixels_of(images, "images", ndim=4))
    atlas, grid = imaging.tile_atlas(pixels)
    image = imaging.image_facts(grid, pixels.shape[1:3], len(pixels), 3)
    facts = {
        "filters": summary.int_list(filters),
        "activations": summary.float_list(activations),
        "start_activations": summary.float_list(start_activations),
        "dead": summary.int_list(dead),
    }
    facts = summary.with_metrics(facts, metrics)
    return summary.write_step(
        tag_content, step, facts, [image], [imaging.encode_png(atlas)], seconds
    )

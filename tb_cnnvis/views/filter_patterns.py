"""Filter patterns: an input synthesized for each filter by activation maximization."""

from tb_cnnvis.views.registry import Family, View, register


class FilterPatterns(Family):
    """One synthesized image per filter of a layer."""

    name = "filter_patterns"
    order = 20
    frequency = "filters_every_n_epochs"
    facts = ("filters", "activations", "start_activations", "dead", "drift", "drift_from")


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

"""Top-activating examples: the reference images that excite each filter most."""

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

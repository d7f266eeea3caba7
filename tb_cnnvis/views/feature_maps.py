"""Feature maps: what each channel of a layer outputs for the probe images."""

from tb_cnnvis.views.registry import Family, View, register


class FeatureMaps(Family):
    """Every channel of a layer's output per probe image (one forward pass for all layers)."""

    name = "feature_maps"
    order = 10
    facts = ("min", "max", "mean", "dead_filters", "sparsity")


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

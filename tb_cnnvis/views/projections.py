"""Projections: the strongest unit of a layer projected back to pixels, per backprop rule."""

from tb_cnnvis.views.registry import Family, View, register


class Projections(Family):
    """Each probe's strongest unit of a layer, projected to the input."""

    name = "projection"
    order = 40
    facts = ("channel", "activation", "position", "scale")


FAMILY = Projections()

register(
    View(
        "deconvnet",
        FAMILY,
        "Deconvnet",
        "the input pattern behind the layer's strongest unit (Zeiler & Fergus, 2014).",
        params={"rule": "deconvnet"},
        default=True,
    ),
    View(
        "guided_backprop",
        FAMILY,
        "Guided backprop",
        "the strongest unit projected back with guided backpropagation "
        "(Springenberg et al., 2015).",
        params={"rule": "guided"},
    ),
    View(
        "saliency",
        FAMILY,
        "Saliency",
        "the gradient of the strongest unit with respect to the pixels (Simonyan et al., 2013).",
        params={"rule": "gradient"},
    ),
)

"""Projections: the strongest unit of a layer projected back to pixels, per backprop rule.

One view per ReLU rule of ``algorithms.backprop``: deconvnet, guided backpropagation and
the plain gradient (saliency).

Example:
    >>> write_projection(tag_content, projections, 3, channel=c, activation=a, position=p)
"""

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class Projections(Family):
    """Each probe's strongest unit of a layer, projected to the input."""

    name = "projection"
    order = 40
    facts = ("channel", "activation", "position", "scale", "rule")

    def advice(self, plan, view, refs):
        """For deconvnet and guided backprop: the layers with no ReLU before them, where
        the rule is the plain gradient (the saliency view's result)."""
        from tb_cnnvis.algorithms import backprop

        if view.params["rule"] == "gradient" or not refs:
            return []
        plain = backprop.layers_without_relu(plan.model, refs)
        if not plain:
            return []
        return [
            f"the {view.kind} view has no ReLU on the path to layer(s) {plain}: its rule "
            "changes only how ReLUs pass gradients, so there it will show the plain gradient "
            "(the saliency view's result), and its steps will say so."
        ]

    def repeats(self, plan, view, refs):
        """For deconvnet and guided backprop: the layers with no ReLU before them (there the
        rule is the plain gradient, the saliency view's result)."""
        from tb_cnnvis.algorithms import backprop

        if view.params["rule"] == "gradient" or not refs:
            return [], ""
        plain = backprop.layers_without_relu(plan.model, refs)
        return plain, (
            "no ReLU on the path, so its rule would give the plain gradient (the saliency "
            "view's result); add 'saliency' to views to see gradients there"
        )

    def estimated_bytes(self, plan, view, ref):
        """One RGB image per probe at input size."""
        return 3 * int(np.prod(plan.probes.images.shape[:3]))

    def compute_layer(self, plan, view, ref):
        """A ``backprop.Projection`` with the view's ReLU rule."""
        from tb_cnnvis.algorithms import backprop

        return backprop.projection_details(
            plan.model,
            plan.probes.inputs,
            ref.path,
            rule=view.params["rule"],
            image_input=plan.options.image_input,
        )

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write a ``Projection``, colour channels in RGB order."""
        projections = result.projections
        if getattr(context.input_range, "bgr", False):
            projections = projections[..., ::-1]  # show colour channels in RGB order
        write_projection(
            tag_content,
            projections,
            step,
            channel=result.channel,
            activation=result.activation,
            position=result.position,
            rule=result.applied or result.rule,
            seconds=seconds,
            metrics=facts,
        )


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


def write_projection(
    tag_content,
    projections,
    step=None,
    *,
    channel,
    activation,
    position,
    rule=None,
    seconds=0.0,
    metrics=None,
):
    """Write input-space projections (any view of the ``projection`` family), one per probe.

    Each projection is stored as ``x / (2 * scale) + 0.5`` with ``scale`` its largest
    absolute value (kept in the facts), so grey means zero.

    Args:
        tag_content: content of a ``projection`` kind (``deconvnet``, ...).
        projections: (N, H, W, C) signed float maps, C in (1, 3).
        step: the step.
        channel: the N projected channels.
        activation: the N activation values projected.
        position: the N ``(y, x)`` positions of those activations.
        rule: the backprop rule that really ran ("deconvnet", "guided", "gradient"); None:
            the view's own (its ``params["rule"]``).
        seconds: time spent.
        metrics: more facts (``notes``: sentences the dashboard shows above the step).

    Returns:
        True if written.
    """
    summary.check_kind(tag_content, FAMILY.name)
    projections = np.asarray(projections)
    if projections.ndim != 4:
        raise ValueError(f"projections must have shape (N, H, W, C); got {projections.shape}.")
    converted = [imaging.signed_to_rgb(p) for p in projections]
    pixels = np.stack([rgb for rgb, _ in converted])
    facts = {
        "channel": summary.int_list(channel),
        "activation": summary.float_list(activation),
        "position": [summary.int_list(p) for p in np.asarray(position).reshape(len(pixels), 2)],
        "scale": [scale for _, scale in converted],
        "rule": _view_rule(tag_content) if rule is None else str(rule),
    }
    facts = summary.with_metrics(facts, metrics)
    return summary.write_single_tiles(tag_content, step, pixels, facts, seconds)


def _view_rule(tag_content):
    """The backprop rule of the view ``tag_content`` is of."""
    from tb_cnnvis.views.registry import get

    return get(tag_content["kind"]).params["rule"]

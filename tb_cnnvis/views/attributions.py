"""Class attributions: one signed map per probe image (and class), at the model's input.

Every method of ``algorithms.attribution`` is one view here: SmoothGrad, integrated
gradients and occlusion. They explain the same class as the CAMs (``cam_target``,
``cam_classes``: ``views.explained``) but in input space, so they take no layer: their tags
are ``"<kind>/input"``. Each map is stored as one grey PNG centred on 128 with its scale
in the facts (``imaging.signed_to_gray``), for a diverging colormap around zero.

Example:
    >>> write_attribution(tag_content, details.maps, 3, class_index=details.class_index, ...)
"""

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views import explained
from tb_cnnvis.views.registry import View, register

INPUT = "input"
"""The "layer" path of the views at the input: their tags are ``"<kind>/input"``."""


class ClassAttributions(explained.ClassMaps):
    """Which pixels raise or lower the explained class's score, per probe image."""

    name = "attribution"
    order = 35
    at_input = True
    own_facts = ("scale", "settings")

    def default_layers(self, model, four_d):
        """The model's input, as a ``LayerRef`` without a layer (index -1: before all layers)."""
        from tb_cnnvis import capture

        return [capture.LayerRef(INPUT, None, -1, tuple(capture.input_shape(model)))]

    def run(self, plan, view, ref, inputs, class_index, target):
        """An ``attribution.AttributionResult`` for these classes."""
        from tb_cnnvis.algorithms import attribution

        return attribution.attribution_details(
            plan.model,
            inputs,
            view.params["method"],
            class_index,
            input_range=plan.options.input_range,
            target=target,
            output=plan.options.output,
            image_input=plan.options.image_input,
            class_names=plan.probe_content.get("class_names"),
        )

    def own_values(self, details):
        """The method's settings."""
        return {"settings": details.settings}

    def writer(self):
        """``write_attribution``."""
        return write_attribution


FAMILY = ClassAttributions()

register(
    View(
        "smoothgrad",
        FAMILY,
        "SmoothGrad",
        "the class score's gradient averaged over noisy copies of the image (Smilkov et al., "
        "2017).",
        params={"method": "smoothgrad"},
        metric_name="smoothgrad",
    ),
    View(
        "integrated_gradients",
        FAMILY,
        "Integrated gradients",
        "each pixel's share of the class score's change from a black baseline to the image "
        "(Sundararajan et al., 2017).",
        params={"method": "integrated_gradients"},
        metric_name="integrated_gradients",
    ),
    View(
        "occlusion",
        FAMILY,
        "Occlusion",
        "how much the class score drops when a grey patch hides each place (Zeiler & Fergus, "
        "2014).",
        params={"method": "occlusion"},
        metric_name="occlusion",
    ),
)


def write_attribution(
    tag_content,
    maps,
    step=None,
    *,
    class_index,
    predicted,
    probability,
    target_probability,
    settings=None,
    labels=None,
    probe=None,
    seconds=0.0,
    metrics=None,
    captions=(),
    head=None,
    values=None,
    masks=None,
):
    """Write signed class attributions (any view of the ``attribution`` family).

    Each map is stored as a grey PNG, ``round(128 + 127 * x / scale)`` with ``scale`` its
    largest absolute value (kept in the facts), so 128 is zero.

    Args:
        tag_content: content of an ``attribution`` kind (``smoothgrad``, ...).
        maps: (M, H, W) signed maps at input resolution: one per probe (M = N), or with
            ``probe``, one per (probe, class).
        step: the step.
        class_index: the M classes explained.
        predicted: the M predicted classes (of each map's probe).
        probability: the M probabilities of the predicted classes.
        target_probability: the M probabilities of the explained classes.
        settings: the method's settings (``AttributionResult.settings``), or None.
        labels: N true labels (one per probe), or None.
        probe: None (map i is of probe i), or the M probes the maps are of: then each
            ``images`` entry also names its class (``"class_index"``).
        seconds: time spent.
        metrics: more facts (``drift``, ``pointing_hits``, ``deletion_auc``, ...; see
            ``tb_cnnvis.summary``).
        captions, head, values, masks: what the target was (``explained.write_class_maps``).

    Returns:
        True if written.
    """
    summary.check_kind(tag_content, FAMILY.name)
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"Attribution maps must have shape (M, H, W); got {maps.shape}.")
    converted = [imaging.signed_to_gray(one) for one in maps]
    return explained.write_class_maps(
        tag_content,
        step,
        np.stack([gray for gray, _ in converted]),
        {"scale": [scale for _, scale in converted], "settings": dict(settings or {})},
        class_index=class_index,
        predicted=predicted,
        probability=probability,
        target_probability=target_probability,
        labels=labels,
        probe=probe,
        seconds=seconds,
        metrics=metrics,
        captions=captions,
        head=head,
        values=values,
        masks=masks,
    )

"""Class activation maps: Grad-CAM and its family, one map per probe image.

Every method of ``algorithms.cam`` is one view here: adding a CAM method is its weighting
function there plus one ``View`` below (the dashboard draws every view of the ``cam``
family alike).

Example:
    >>> write_cam(tag_content, details.maps, 3, class_index=details.class_index, ...)
"""

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class ClassActivationMaps(Family):
    """Where a layer sees evidence for the explained class, per probe image."""

    name = "cam"
    order = 30
    needs_classifier = True
    facts = (
        "class_index",
        "predicted",
        "probability",
        "target_probability",
        "labels",
        "cam_max",
        "drift",
        "drift_from",
        "pointing_hits",
        "deletion_auc",
        "deletion_auc_random",
    )

    def default_layers(self, model, four_d):
        """The last layer with a 4-D output (the usual Grad-CAM choice)."""
        return list(four_d[-1:])

    def default_reason(self, four_d):
        """The usual Grad-CAM choice."""
        return "the last layer with a (h, w, c) output"

    def estimated_bytes(self, plan, view, ref):
        """One grayscale map per probe at input size."""
        return int(np.prod(plan.probes.images.shape[:3]))

    def compute_layer(self, plan, view, ref):
        """A ``cam.CamResult`` of the explained class (the label, or the prediction)."""
        from tb_cnnvis.algorithms import cam

        probes = plan.probes
        use_labels = plan.options.cam_target == "label" and probes.labels is not None
        return cam.cam_details(
            plan.model,
            probes.images,
            ref.path,
            class_index=probes.labels if use_labels else None,
            method=view.params["method"],
        )

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write a ``CamResult``."""
        write_cam(
            tag_content,
            result.maps,
            step,
            class_index=result.class_index,
            predicted=result.predicted,
            probability=result.probability,
            target_probability=result.target_probability,
            cam_max=result.cam_max,
            labels=context.labels,
            seconds=seconds,
            metrics=facts,
        )


FAMILY = ClassActivationMaps()

register(
    View(
        "grad_cam",
        FAMILY,
        "Grad-CAM",
        "where the layer sees evidence for the explained class (Selvaraju et al., 2017).",
        params={"method": "gradcam"},
        metric_name="gradcam",
        default=True,
    ),
    View(
        "gradcam_plus_plus",
        FAMILY,
        "Grad-CAM++",
        "Grad-CAM with pixel-wise gradient weights (Chattopadhay et al., 2018).",
        params={"method": "gradcam++"},
        metric_name="gradcampp",
    ),
    View(
        "score_cam",
        FAMILY,
        "Score-CAM",
        "channels weighted by the class score of the masked input (Wang et al., 2020).",
        params={"method": "scorecam"},
        metric_name="scorecam",
    ),
)


def write_cam(
    tag_content,
    maps,
    step=None,
    *,
    class_index,
    predicted,
    probability,
    target_probability,
    cam_max,
    labels=None,
    seconds=0.0,
    metrics=None,
):
    """Write class activation maps (any view of the ``cam`` family) for every probe.

    Args:
        tag_content: content of a ``cam`` kind (``grad_cam``, ``gradcam_plus_plus``, ...).
        maps: (N, H, W) or (N, H, W, 1) maps in [0, 1] at input resolution.
        step: the step.
        class_index: the N classes explained.
        predicted: the N predicted classes.
        probability: the N probabilities of the predicted classes.
        target_probability: the N probabilities of the explained classes.
        cam_max: the N raw map maxima before normalization.
        labels: N true labels, or None.
        seconds: time spent.
        metrics: more facts (``drift``, ``pointing_hits``, ``deletion_auc``, ...; see
            ``tb_cnnvis.summary``).

    Returns:
        True if written.
    """
    summary.check_kind(tag_content, FAMILY.name)
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3:
        raise ValueError(f"CAM maps must have shape (N, H, W); got {maps.shape}.")
    facts = {
        "class_index": summary.int_list(class_index),
        "predicted": summary.int_list(predicted),
        "probability": summary.float_list(probability),
        "target_probability": summary.float_list(target_probability),
        "labels": summary.int_list(labels),
        "cam_max": summary.float_list(cam_max),
    }
    facts = summary.with_metrics(facts, metrics)
    pixels = imaging.to_uint8(maps)[..., None]
    return summary.write_single_tiles(tag_content, step, pixels, facts, seconds)

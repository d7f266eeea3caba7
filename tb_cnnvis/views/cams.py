"""Class activation maps: Grad-CAM and its family, one map per probe image and class.

Every method of ``algorithms.cam`` is one view here: adding a CAM method is its map
function in ``algorithms.cam_methods`` plus one ``View`` below (the dashboard draws every
view of the ``cam`` family alike). Which classes are explained is ``views.explained``'s
choice (``cam_classes``).

Example:
    >>> write_cam(tag_content, details.maps, 3, class_index=details.class_index, ...)
"""

import numpy as np

from tb_cnnvis import imaging, summary
from tb_cnnvis.views import explained
from tb_cnnvis.views.registry import View, register


class ClassActivationMaps(explained.ClassMaps):
    """Where a layer sees evidence for the explained class, per probe image."""

    name = "cam"
    order = 30
    own_facts = ("cam_max",)

    def default_layers(self, model, four_d):
        """The last layer with a 4-D output (the usual Grad-CAM choice); when that layer
        is the model's output (a segmentation head), the one before it (Seg-Grad-CAM)."""
        from tb_cnnvis import capture

        outputs = {id(layer) for layer in capture.output_layers(model) if layer is not None}
        if len(four_d) > 1 and id(four_d[-1].layer) in outputs:
            return list(four_d[-2:-1])
        return list(four_d[-1:])

    def default_reason(self, four_d):
        """The usual Grad-CAM choice."""
        return "the last layer with a (h, w, c) output before the model's output"

    def estimated_bytes(self, plan, view, ref):
        """One grayscale map per probe at input size."""
        return int(np.prod(plan.probes.images.shape[:3]))

    def run(self, plan, view, ref, inputs, class_index, target):
        """A ``cam.CamResult`` of the layer for these classes."""
        from tb_cnnvis.algorithms import cam

        return cam.cam_details(
            plan.model,
            inputs,
            ref.path,
            class_index,
            method=view.params["method"],
            target=target,
            max_channels=plan.options.score_cam_channels,
            output=plan.options.output,
            image_input=plan.options.image_input,
            class_names=plan.probe_content.get("class_names"),
        )

    def own_values(self, details):
        """The raw map maxima."""
        return {"cam_max": details.cam_max}

    def writer(self):
        """``write_cam``."""
        return write_cam


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
    View(
        "layercam",
        FAMILY,
        "LayerCAM",
        "positive gradients times activations, pixel by pixel, which keeps the detail of "
        "shallow layers (Jiang et al., 2021).",
        params={"method": "layercam"},
        metric_name="layercam",
    ),
    View(
        "hirescam",
        FAMILY,
        "HiResCAM",
        "gradients times activations pixel by pixel, where Grad-CAM averages the gradients "
        "(Draelos & Carin, 2020).",
        params={"method": "hirescam"},
        metric_name="hirescam",
    ),
    View(
        "xgradcam",
        FAMILY,
        "XGrad-CAM",
        "channels weighted by their gradients averaged with the activations as weights "
        "(Fu et al., 2020).",
        params={"method": "xgradcam"},
        metric_name="xgradcam",
    ),
    View(
        "eigencam",
        FAMILY,
        "Eigen-CAM",
        "the layer's activations projected on their first principal component: what the "
        "layer finds salient, class-agnostic, the same map whatever the class "
        "(Muhammad & Yeasin, 2020).",
        params={"method": "eigencam", "class_agnostic": True},
        metric_name="eigencam",
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
    probe=None,
    seconds=0.0,
    metrics=None,
    captions=(),
    head=None,
    values=None,
    masks=None,
):
    """Write class activation maps (any view of the ``cam`` family) for every probe.

    Args:
        tag_content: content of a ``cam`` kind (``grad_cam``, ``gradcam_plus_plus``, ...).
        maps: (M, H, W) or (M, H, W, 1) maps in [0, 1] at input resolution: one per probe
            (M = N), or with ``probe``, one per (probe, class).
        step: the step.
        class_index: the M classes explained.
        predicted: the M predicted classes (of each map's probe).
        probability: the M probabilities of the predicted classes.
        target_probability: the M probabilities of the explained classes.
        cam_max: the M raw map maxima before normalization.
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
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3:
        raise ValueError(f"CAM maps must have shape (M, H, W); got {maps.shape}.")
    return explained.write_class_maps(
        tag_content,
        step,
        imaging.to_uint8(maps)[..., None],
        {"cam_max": summary.float_list(cam_max)},
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

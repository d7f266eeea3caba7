"""Class activation maps: Grad-CAM and its family, one map per probe image."""

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

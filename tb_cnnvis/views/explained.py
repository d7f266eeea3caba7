"""The class-explaining families (CAMs, attributions): which classes, and the shared parts.

``ClassMaps`` is their common base: a family says how its method runs and which facts it
adds; choosing the classes and writing the shared facts (``write_class_maps``) happen here.

The callback's ``cam_classes`` chooses: ``1`` (the default) explains one class per probe,
``cam_target``'s choice (the true label, or the prediction); an int ``k > 1`` explains the
``k`` most probable classes of each probe, most probable first; a list of class indices
explains those classes for every probe, in that order. With one class per probe a step
holds one map per probe, as it always did; with ``K > 1`` it holds ``N * K`` maps, those
of one probe consecutive (see the format in ``tb_cnnvis.summary``). A class-agnostic view
(Eigen-CAM: ``View.params["class_agnostic"]``) always stores one map per probe.

Example:
    >>> explained = explain(plan, view, lambda images, classes: cam_details(model, images,
    ...                                                                     "conv2", classes))
    >>> explained.probe          # None, or the probe of each of the N * K maps
"""

from typing import NamedTuple

import numpy as np

from tb_cnnvis import summary
from tb_cnnvis.views.registry import Family

CLASS_FACTS = ("class_index", "predicted", "probability", "target_probability", "labels")
"""The facts every class-explaining view stores first (one entry per map)."""

TARGET_FACTS = ("targets", "head", "values")
"""What the target was: a caption per map, the head's kind, a regression's output values."""

METRIC_FACTS = ("drift", "drift_from", "pointing_hits", "deletion_auc", "deletion_auc_random")
"""The per-epoch metrics the callback adds to a class-explaining view's facts."""


class Explained(NamedTuple):
    """One layer's maps for the classes explained, and the probe each map is of.

    Attributes:
        details: the method's result (``cam.CamResult``, ``attribution.AttributionResult``)
            with ``M`` rows: ``N`` (one map per probe) or ``N * K``.
        probe: int (M,), the probe of each row; None when the rows are the probes in order
            (one class per probe).
    """

    details: object
    probe: np.ndarray | None = None

    @property
    def probe_index(self):
        """The probe of each row, ``arange(M)`` when there is one class per probe."""
        if self.probe is not None:
            return self.probe
        return np.arange(len(self.details.class_index))


class ClassMaps(Family):
    """A family whose items are maps that explain a class of each probe (CAMs, attributions).

    A subclass says how one method runs (``run``), which facts its maps add to the shared
    ones (``own_facts``, ``own_values``) and which writer stores them (``writer``); choosing
    the classes (``explain``) and writing the shared facts are done here once.
    """

    needs_classifier = True
    own_facts = ()

    @property
    def facts(self):
        """The shared class facts, the family's own, then the metrics'."""
        return CLASS_FACTS + TARGET_FACTS + tuple(self.own_facts) + METRIC_FACTS

    def run(self, plan, view, ref, inputs, class_index, target):
        """The method's result with one row per input row (``class_index`` None or (M,);
        ``target`` the user's target template for those rows, or None)."""
        raise NotImplementedError

    def own_values(self, details):
        """The writer's keyword arguments for ``own_facts`` from a result."""
        return {}

    def writer(self):
        """The module's ``write_*`` function (keyword arguments as ``write_class_maps``)."""
        raise NotImplementedError

    def compute_layer(self, plan, view, ref):
        """An ``Explained`` holding the method's result for the classes chosen."""
        return explain(
            plan,
            view,
            lambda inputs, classes, target: self.run(plan, view, ref, inputs, classes, target),
        )

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write an ``Explained`` result with the writer."""
        details = result.details
        self.writer()(
            tag_content,
            details.maps,
            step,
            class_index=details.class_index,
            predicted=details.predicted,
            probability=details.probability,
            target_probability=details.target_probability,
            labels=context.labels,
            probe=result.probe,
            seconds=seconds,
            metrics=facts,
            captions=details.captions,
            head=details.head,
            values=details.value if details.head == "regression" else None,
            masks=details.masks,
            **self.own_values(details),
        )


def write_class_maps(
    tag_content,
    step,
    pixels,
    own,
    *,
    class_index,
    predicted,
    probability,
    target_probability,
    labels,
    probe,
    seconds,
    metrics,
    captions=(),
    head=None,
    values=None,
    masks=None,
):
    """Write M class-explaining maps as single tiles with the shared facts, then ``own``.

    Args:
        tag_content: the content of the view's kind.
        step: the step.
        pixels: (M, H, W, 1) uint8 maps.
        own: the family's own facts (dict).
        class_index, predicted, probability, target_probability: (M,) per map.
        labels: N true labels (one per probe; a regression's floats), or None.
        probe: None (map i is of probe i), or the M probes the maps are of.
        seconds: time spent.
        metrics: more facts (the callback's metrics), or None.
        captions: the M targets in words (``"class 0 (cat): negated logit"``), or empty.
        head: the explained output's kind (``heads.HEAD_KINDS``), or None.
        values: a regression head's M output values, or None.
        masks: a segmentation target's M masks (M, h, w) bool, or None: each is stored as
            a grayscale PNG at the maps' size right after its map (``"role": "mask"``).

    Returns:
        True if written.
    """
    facts = {
        "class_index": summary.int_list(class_index),
        "predicted": summary.int_list(predicted),
        "probability": summary.float_list(probability),
        "target_probability": summary.float_list(target_probability),
        "labels": _label_list(labels),
        "targets": [str(caption) for caption in captions] or None,
        "head": head,
        "values": summary.float_list(values),
        **own,
    }
    facts = summary.with_metrics(facts, metrics)
    layout = summary.class_layout(probe, class_index)
    if masks is None:
        return summary.write_single_tiles(tag_content, step, pixels, facts, seconds, **layout)
    return _write_with_masks(tag_content, step, pixels, masks, facts, seconds, layout)


def _write_with_masks(tag_content, step, pixels, masks, facts, seconds, layout):
    """Each map followed by its mask (nearest-upsampled to the map's size, 0 or 255)."""
    from tb_cnnvis import imaging

    size = pixels.shape[1:3]
    masks = np.asarray(masks, bool)
    rows = (np.arange(size[0]) * masks.shape[1]) // size[0]
    cols = (np.arange(size[1]) * masks.shape[2]) // size[1]
    mask_pixels = (masks[:, rows][:, :, cols] * 255).astype(np.uint8)[..., None]
    probes = layout.get("probes", np.arange(len(pixels)))
    classes = layout.get("classes")
    images, pngs = [], []
    for i, (map_pixels, mask) in enumerate(zip(pixels, mask_pixels)):
        class_index = None if classes is None else int(classes[i])
        entry = imaging.image_facts((1, 1), size, 1, map_pixels.shape[-1], probes[i], class_index)
        images += [entry, {**entry, "channels": 1, "role": "mask"}]
        pngs += [imaging.encode_png(map_pixels), imaging.encode_png(mask)]
    return summary.write_step(tag_content, step, facts, images, pngs, seconds)


def _label_list(labels):
    """Class labels as ints, a regression's values as floats, or None."""
    if labels is None:
        return None
    values = np.asarray(labels)
    if np.issubdtype(values.dtype, np.floating):
        return summary.float_list(values)
    return summary.int_list(values)


def check_cam_classes(cam_classes):
    """``cam_classes`` as an int >= 1 or a tuple of distinct ints >= 0 (model not yet known).

    Raises:
        ValueError: for anything else, in the callback's terms.
    """
    if _is_int(cam_classes):
        if cam_classes < 1:
            raise ValueError(f"cam_classes must be >= 1 (classes per probe); got {cam_classes}.")
        return int(cam_classes)
    if isinstance(cam_classes, (list, tuple, np.ndarray)):
        classes = list(np.asarray(cam_classes, dtype=object).reshape(-1))
        bad = [c for c in classes if not _is_int(c) or c < 0]
        if classes and not bad and len(set(classes)) == len(classes):
            return tuple(int(c) for c in classes)
    raise ValueError(
        "cam_classes must be an int k >= 1 (explain the k most probable classes of each probe) "
        f"or a non-empty list of distinct class indices; got {cam_classes!r}."
    )


def check_against_classes(cam_classes, classes):
    """Raise ``ValueError`` (at ``set_model``) if ``cam_classes`` asks for classes the model
    does not have."""
    if isinstance(cam_classes, int):
        if cam_classes > classes:
            raise ValueError(
                f"cam_classes={cam_classes} asks for more classes per probe than the model "
                f"has ({classes})."
            )
        return
    bad = [c for c in cam_classes if c >= classes]
    if bad:
        raise ValueError(
            f"cam_classes {bad} out of range: the model has {classes} classes (0 to {classes - 1})."
        )


def explain(plan, view, run):
    """Run ``run(inputs, class_index, target)`` for the classes ``plan.options.cam_classes``
    asks.

    Args:
        plan: the ``plan.Plan`` (model, probes, options, subject).
        view: the ``View`` (a class-agnostic one explains one class per probe).
        run: ``(inputs with M rows, class_index None | int (M,), target template for those
            rows or None) -> result with M rows``; ``inputs`` are the probe images (with a
            model's other inputs, the input dict).

    Returns:
        An ``Explained``.
    """
    probes, subject = plan.probes, plan.subject
    count = len(probes.images)
    chosen = plan.options.cam_classes if subject.has_classes else 1
    single = chosen == 1 or view.params.get("class_agnostic")
    everyone = np.arange(count)
    if single or (isinstance(chosen, tuple) and len(chosen) == 1):
        if single:
            labels = subject.class_labels
            use_labels = plan.options.cam_target == "label" and labels is not None
            classes = labels if use_labels else None
        else:
            classes = np.full(count, chosen[0])
        return Explained(run(probes.inputs, classes, subject.target_at(everyone)))
    if isinstance(chosen, int):
        from tb_cnnvis.algorithms import faithfulness

        probabilities = faithfulness.class_probabilities(
            plan.model, probes.images, side=probes.side, output=subject.output
        )
        classes = np.argsort(-probabilities, axis=1, kind="stable")[:, :chosen]
    else:
        classes = np.tile(np.asarray(chosen), (count, 1))
    probe = np.repeat(everyone, classes.shape[1])
    return Explained(
        run(probes.inputs_at(probe), classes.reshape(-1), subject.target_at(probe)), probe
    )


def _is_int(value):
    """True for an int (numpy ints too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

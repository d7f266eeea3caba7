"""What the callback's class views explain, bound once at ``set_model``: the subject.

``bind_subject`` reads the explained output's head (``heads.head_of``: softmax,
multi-label, binary, regression, segmentation or none), checks the labels, class names,
``cam_classes`` and the user's ``target`` against it, and says which class views cannot
mean anything for it. The class views then take the subject's target (a template whose
class each probe fills in, ``targets.with_classes``) instead of threading the output and
the class choice through every call.

What each head accepts:

- softmax, multi-label: integer labels in ``[0, classes)``, one name per class;
- binary (one unit): labels 0 and 1, two names (class 0 is the negated logit);
- regression: float labels (the true values, shown beside the prediction), no names;
  one map per probe (``cam_classes=1``);
- segmentation: no labels (the truth is a mask per pixel), one name per class; the class
  views explain the classes with the most predicted pixels (``cam_classes``);
- none (any other output): only the views that need no class, and Eigen-CAM.

Example:
    >>> subject, kept = bind_subject(model, views, options, labels, names, count=8)
    >>> subject.head.kind, kept
    ('binary', ('feature_maps', 'grad_cam'))
"""

import warnings
from typing import NamedTuple

import numpy as np

from tb_cnnvis import targets, views
from tb_cnnvis.heads import Head


class Subject(NamedTuple):
    """The explained output of the model and what explains it.

    Attributes:
        head: the output's ``heads.Head`` (None when the model has several outputs and no
            class view asked which one).
        output: the output's index (``capture.output_index``), or None.
        target: the user's target template (``targets.Target``), or None: the head's class
            target (``targets.from_class_index``).
        labels: the probe labels as given, checked: int64 class indices, float values for
            a regression head, or None.
    """

    head: Head | None
    output: int | None
    target: object = None
    labels: np.ndarray | None = None

    def first(self, count):
        """The subject of the first ``count`` probes (labels and per-probe targets cut)."""
        rows = np.arange(count)
        labels = None if self.labels is None else self.labels[:count]
        return self._replace(labels=labels, target=self.target_at(rows))

    def target_at(self, rows):
        """The user's target template for the probes ``rows`` (M,), or None."""
        return None if self.target is None else targets.take(self.target, rows)

    @property
    def has_classes(self):
        """True when the class views choose a class per probe (not a regression or a
        custom score, nor a head without classes)."""
        if self.head is None or self.head.classes is None:
            return False
        return not isinstance(self.target, (targets.Regression, targets.Score))

    @property
    def class_labels(self):
        """The labels when they are classes (None for a regression's values)."""
        return self.labels if self.has_classes else None


def class_views(chosen):
    """The chosen views that explain a score (their family needs a class target)."""
    return [kind for kind in chosen if views.get(kind).family.needs_classifier]


def _class_agnostic(kind):
    """True for a class view that needs no class (Eigen-CAM)."""
    return bool(views.get(kind).params.get("class_agnostic"))


def bind_subject(model, chosen, options, labels, class_names, count, explicit=True):
    """The ``Subject`` of ``model`` and the views that can run on it.

    Args:
        model: the built model.
        chosen: the views asked for.
        options: ``plan.Options`` (``output``, ``target``, ``cam_classes``).
        labels: the probe labels as read (``probes.read_probes``), or None.
        class_names: the names given, or None.
        count: the number of probes.
        explicit: True when the user named the views: a class view that cannot apply is
            then an error; otherwise (the defaults) it is left out with a warning.

    Returns:
        ``(Subject, kept views)``.

    Raises:
        ValueError: labels, names, ``cam_classes`` or ``target`` that do not fit the head,
            or an explicitly asked class view that cannot apply; each message says what
            fits.
    """
    from tb_cnnvis import capture

    wanted = class_views(chosen)
    try:
        index = capture.output_index(model, options.output)
    except ValueError:
        if wanted:
            raise
        return Subject(None, None, None, _plain_labels(labels)), tuple(chosen)
    head = targets.head_of(model, index)
    template = options.target
    if template is not None:
        template = targets.resolve(head, template)
        template.check(head, count)
    kept = tuple(chosen)
    if head.kind == "none" and template is None:
        blocked = [kind for kind in wanted if not _class_agnostic(kind)]
        if blocked:
            kept = _leave_out(chosen, blocked, head, explicit)
    labels = _check_labels(labels, head, class_names)
    _check_names(class_names, head)
    _check_cam_classes(options.cam_classes, head, template, kept)
    return Subject(head, index, template, labels), kept


def _leave_out(chosen, blocked, head, explicit):
    """``chosen`` without ``blocked``: an error when the user named them, else a warning."""
    applying = [kind for kind in chosen if kind not in blocked]
    sentence = (
        f"The class views {blocked} cannot explain {head.describe()}: they need a class or "
        f"a score to explain. {targets.suggest(head)[0].upper()}{targets.suggest(head)[1:]}"
    )
    if explicit:
        raise ValueError(f"{sentence} Views that apply: {applying}.")
    warnings.warn(f"cnnvis: {sentence} They are left out.", RuntimeWarning, stacklevel=4)
    return tuple(applying)


def _plain_labels(labels):
    """Labels without a head to check them against: as read."""
    return None if labels is None else np.asarray(labels)


def _check_labels(labels, head, class_names):
    """The labels checked against ``head`` (see the module docstring)."""
    if labels is None:
        return None
    values = np.asarray(labels)
    if head.kind == "regression":
        return values.astype(np.float64)
    if head.kind in ("segmentation", "none"):
        raise ValueError(
            f"probe_labels cannot apply: {head.describe()}. Leave probe_labels out (the class "
            "views explain what the model predicts on each probe)."
        )
    integral = np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0)
    if not integral:
        raise ValueError(
            f"probe_labels must be class indices 0 to {head.classes - 1} ({head.describe()}); "
            f"got {values.tolist()}. Float labels are for regression heads."
        )
    values = values.astype(np.int64)
    if not np.all((values >= 0) & (values < head.classes)):
        raise ValueError(
            f"probe_labels {values.tolist()} must lie in [0, {head.classes}): {head.describe()}."
        )
    return values


def _check_names(class_names, head):
    """One name per class of ``head``."""
    if class_names is None:
        return
    if head.classes is None:
        raise ValueError(
            f"class_names cannot apply: {head.describe()}, which has no classes. Leave "
            "class_names out."
        )
    if len(class_names) != head.classes:
        hint = " (class 0 first: the negated logit)" if head.kind == "binary" else ""
        raise ValueError(
            f"class_names has {len(class_names)} names but the model has {head.classes} "
            f"classes{hint}: {head.describe()}."
        )


def _check_cam_classes(cam_classes, head, template, kept):
    """``cam_classes`` fits the head (and the target: a custom score has no classes)."""
    from tb_cnnvis.views import explained

    if not class_views(kept) or cam_classes == 1:
        return
    without = head.classes is None or isinstance(template, (targets.Regression, targets.Score))
    if without:
        raise ValueError(
            f"cam_classes={cam_classes!r} asks for several classes per probe, but the class "
            f"views explain one score per probe here ({head.describe()}); use cam_classes=1."
        )
    explained.check_against_classes(cam_classes, head.classes)

"""Binding a target to an output: the short forms, per-image values, and what a view reports.

``bind`` checks a target (or ``class_index``'s short form) against the explained output's
head; ``outcome`` gives the facts a class view stores besides its map; ``fix`` holds the
class (and a segmentation's pixels) chosen on the images for altered copies of them.
"""

from typing import NamedTuple

import numpy as np

from tb_cnnvis.heads import Head, head_of
from tb_cnnvis.targets.kinds import Binary, Class, Regression, Target, suggest
from tb_cnnvis.targets.segmentation import Score, Segmentation


def from_class_index(head, class_index=None):
    """The target ``class_index`` stands for on ``head`` (None: each image's prediction)."""
    if head.kind == "binary":
        return Binary(class_index)
    if head.kind == "segmentation":
        return Segmentation(class_index)
    if head.kind == "regression":
        if class_index is not None:
            raise ValueError(
                f"class_index={class_index!r} cannot apply: {head.describe()}; {suggest(head)}"
            )
        return Regression(1, None if head.units == 1 else 0)
    if head.kind == "none":
        raise ValueError(f"Nothing to explain by class: {head.describe()}; {suggest(head)}")
    return Class(class_index)


def with_classes(target, class_index):
    """``target`` with its class set per image (the callback's per-probe classes)."""
    if isinstance(target, (Class, Binary)):
        return type(target)(class_index)
    if isinstance(target, Segmentation):
        return Segmentation(class_index, target.mask)
    return target


def take(target, rows):
    """``target`` for the images ``rows`` (per-image values taken; shared ones kept)."""
    rows = np.asarray(rows)
    if isinstance(target, Segmentation):
        index, mask = _per_image(target.class_index, rows, 1), _per_image(target.mask, rows, 3)
        return Segmentation(index, mask)
    if isinstance(target, (Class, Binary)):
        return type(target)(_per_image(target.index, rows, 1))
    return target


def _per_image(value, rows, ndim):
    """``value[rows]`` when ``value`` holds one entry per image (a rank-``ndim`` array of
    several rows), else ``value`` (None, one value for all, or a single row)."""
    if value is None or np.ndim(value) < ndim or len(value) == 1:
        return value
    return np.asarray(value)[rows]


class Bound(NamedTuple):
    """A target checked against an output: what the compiled functions take.

    Attributes:
        target: the ``Target``.
        head: the output's ``Head``.
        values: the target's per-image values (numpy, one row per image).
    """

    target: Target
    head: Head
    values: dict

    def key(self):
        """The cache key of code traced with this target."""
        return (*self.target.key(), self.head.kind, self.head.activation)

    def tensors(self, rows=None):
        """The values as tensors (the images ``rows`` of them, repeats allowed)."""
        import tensorflow as tf

        picked = self.values if rows is None else {k: v[rows] for k, v in self.values.items()}
        return {name: tf.constant(value) for name, value in picked.items()}

    def score(self, logits, tensors):
        """Traced: one score per image."""
        return self.target.score(logits, tensors, self.head)

    def chosen(self, logits, tensors):
        """Traced: the class explained per image, or -1."""
        return self.target.chosen(logits, tensors, self.head)


def check_target(target):
    """``target`` as a ``Target`` (a callable wrapped in ``Score``), or None; the model is
    not known yet (it is checked against the output by ``bind``).

    Raises:
        ValueError: for anything that is neither a target nor callable.
    """
    if target is None or isinstance(target, Target):
        return target
    if callable(target):
        return Score(target)
    raise ValueError(
        f"target must be a tb_cnnvis.targets.Target (Class, Binary, Regression, "
        f"Segmentation) or a callable logits -> (N,); got {target!r}."
    )


def bind(model, output_index, count, target=None, class_index=None):
    """Check ``target`` (or ``class_index``'s short form) against the output; a ``Bound``.

    Args:
        model: the model.
        output_index: the explained output (``capture.output_index``).
        count: the number of images.
        target: a ``Target``, a callable ``logits -> (N,)``, or None.
        class_index: None, an int or one per image (with ``target`` None or a class target).

    Raises:
        ValueError: a target that cannot explain the output, a class out of range, a mask
            of the wrong size, a callable giving the wrong shape; the message says what fits.
    """
    head = head_of(model, output_index)
    target = resolve(head, target, class_index)
    target.check(head, count)
    return Bound(target, head, target.values(count))


def resolve(head, target=None, class_index=None):
    """The ``Target`` for ``target`` and ``class_index`` on ``head`` (not yet checked)."""
    if target is None:
        return from_class_index(head, class_index)
    if not isinstance(target, Target):
        target = Score(target)
    if isinstance(target, Class) and head.kind == "binary":
        target = Binary(target.index)  # a two-class model to the user
    if class_index is not None:
        if not isinstance(target, (Class, Binary, Segmentation)):
            raise ValueError(
                f"class_index={class_index!r} cannot apply to the target {target!r}: give "
                "one of them (a class target takes the class itself)."
            )
        target = with_classes(target, class_index)
    return target


class Outcome(NamedTuple):
    """What a class view reports per image besides its map (arrays with N rows).

    Attributes:
        class_index: int32, the class explained (-1 where the target has no class).
        predicted: int32, the class with the largest probability (-1 without classes).
        probability: float32, the predicted class's probability (NaN without classes).
        target_probability: float32, the explained class's probability (NaN without one).
        score: float32, the target's score (for a regression, the signed value).
        captions: the target in words, per image.
        value: float32, the output value a regression target explains (NaN otherwise).
        masks: bool (N, h, w), the pixels a segmentation target summed over (its mask, or
            the pixels predicted as its class); None for other targets.
    """

    class_index: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    target_probability: np.ndarray
    score: np.ndarray
    captions: tuple
    value: np.ndarray
    masks: np.ndarray | None = None


def outcome(bound, logits, class_names=None):
    """The ``Outcome`` of ``bound`` on the explained output's logits (numpy, N rows)."""
    import tensorflow as tf

    from tb_cnnvis.heads import class_probabilities

    tensors = bound.tensors()
    logits_t = tf.constant(np.asarray(logits, np.float32))
    chosen = bound.chosen(logits_t, tensors).numpy().astype(np.int32)
    score = bound.score(logits_t, tensors).numpy().astype(np.float32)
    count = len(chosen)
    nan = np.full(count, np.nan, np.float32)
    probabilities = class_probabilities(bound.head, logits)
    if probabilities is None:
        predicted, probability = np.full(count, -1, np.int32), nan
    else:
        predicted = probabilities.argmax(axis=1).astype(np.int32)
        probability = probabilities[np.arange(count), predicted].astype(np.float32)
    target_probability = nan
    if bound.target.has_probability(bound.head):
        found = bound.target.probability(logits_t, tensors, bound.head)
        target_probability = found.numpy().astype(np.float32)
    captions = tuple(bound.target.caption(c, class_names) for c in chosen)
    value = nan
    if isinstance(bound.target, Regression):
        value = np.asarray(logits, np.float32)[:, int(bound.target.unit or 0)]
    masks = None
    if isinstance(bound.target, Segmentation):
        masks = bound.target.pixels(logits_t, tensors, bound.head).numpy() > 0
    return Outcome(
        chosen, predicted, probability, target_probability, score, captions, value, masks
    )


def fix(bound, logits):
    """``bound`` with what it chose on these logits held fixed: the class per image, and a
    segmentation's predicted mask. Altered copies of the images (masked, occluded, on a
    path) are then scored for the same class over the same pixels.
    """
    import tensorflow as tf

    tensors = bound.tensors()
    logits_t = tf.constant(np.asarray(logits, np.float32))
    target = bound.target
    if isinstance(target, (Class, Binary, Segmentation)):
        chosen = bound.chosen(logits_t, tensors).numpy().astype(np.int32)
        if isinstance(target, Segmentation):
            mask = target.pixels(logits_t, tensors, bound.head).numpy()
            target = Segmentation(chosen, mask)
        else:
            target = with_classes(target, chosen)
        return Bound(target, bound.head, target.values(len(chosen)))
    return bound

"""Targets: what a class view explains, as a score of the model's output per image.

Every class view (the CAMs, the attributions, guided Grad-CAM, the faithfulness metrics,
the randomization check, and the callback's class views) explains one number per image: a
*score* computed from the explained output *before its final activation* (the logits: a
final softmax or sigmoid is skipped, because a saturated squashing flattens gradients).
A target says which score. The common ones:

- ``Class(i)``: the logit of class ``i`` of a softmax head, or of label ``i`` of a
  multi-label (sigmoid) head (Selvaraju et al. 2017, eq. 1, use the score before the
  softmax; pytorch-grad-cam's ``ClassifierOutputTarget`` does the same).
- ``Binary(i)``: a head with one unit (a sigmoid, or a logit trained with
  ``BinaryCrossentropy(from_logits=True)``) is a two-class model: class 1 is the logit
  ``z``, class 0 the negated logit ``-z`` (``log p1/p0 = z``: raising ``-z`` raises the
  probability of class 0; pytorch-grad-cam's ``BinaryClassifierOutputTarget``).
- ``Regression(sign=+1)``: the output value, to raise (``+1``) or lower (``-1``).
- ``Segmentation(class_index, mask=None)``: Seg-Grad-CAM (Vinogradova et al., "Towards
  Interpretable Semantic Segmentation via Gradient-weighted Class Activation Mapping",
  AAAI 2020): the class's logits summed over a set of pixels, by default the pixels the
  model predicts as that class.
- any callable ``f(logits) -> (N,)``, taking the explained output's logits ``(N, ...)``
  (a TensorFlow tensor) and giving one score per image (Captum's ``target``,
  pytorch-grad-cam's targets).

``class_index=`` stays the short form: on a softmax or multi-label head it is ``Class``,
on a one-unit head ``Binary``, on a segmentation head ``Segmentation``. A target is checked
against the output (``bind``) at the first call, with a message that says what fits.

Example:
    >>> from tb_cnnvis import targets
    >>> cv.grad_cam(model, images, target=targets.Binary(0))       # the "cat" side
    >>> cv.grad_cam(seg_model, images, target=targets.Segmentation(2))
    >>> cv.grad_cam(model, images, target=lambda logits: logits[:, 3] - logits[:, 5])
"""

from tb_cnnvis.heads import HEAD_KINDS, Head, head_of
from tb_cnnvis.targets.binding import (
    Bound,
    Outcome,
    bind,
    check_target,
    fix,
    from_class_index,
    outcome,
    resolve,
    take,
    with_classes,
)
from tb_cnnvis.targets.kinds import Binary, Class, Regression, Target, suggest
from tb_cnnvis.targets.segmentation import Score, Segmentation

__all__ = [
    "HEAD_KINDS",
    "Binary",
    "Bound",
    "Class",
    "Head",
    "Outcome",
    "Regression",
    "Score",
    "Segmentation",
    "Target",
    "bind",
    "check_target",
    "fix",
    "from_class_index",
    "head_of",
    "outcome",
    "resolve",
    "suggest",
    "take",
    "with_classes",
]

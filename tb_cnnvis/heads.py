"""Heads: what an explained output is (a softmax, multi-label, binary, regression or
segmentation head), read from its shape, its final activation and the loss it was compiled
with; and the per-class probabilities each kind of head gives.

Example:
    >>> head_of(model)
    Head(kind='binary', classes=2, shape=(1,), activation='sigmoid', name='dense')
    >>> class_probabilities(head, logits)     # (N, 2): 1 - p and p
"""

from typing import NamedTuple

import numpy as np

HEAD_KINDS = ("softmax", "multilabel", "binary", "regression", "segmentation", "none")
"""What an output can be, by its shape, final activation and loss (``head_of``)."""

_BINARY_LOSSES = ("binary_crossentropy", "binary_focal_crossentropy", "hinge", "squared_hinge")
_CLASS_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence")
_REGRESSION_LOSSES = (
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "mse",
    "mae",
    "mape",
    "msle",
    "logcosh",
)


class Head(NamedTuple):
    """What an explained output is.

    Attributes:
        kind: one of ``HEAD_KINDS``.
        classes: the classes a class target chooses among (2 for a binary head, one per
            label for a multi-label head); None for regression and other heads.
        shape: the output's shape without the batch axis.
        activation: the final activation skipped to read logits: "softmax", "sigmoid" or
            "linear".
        name: the output's name (for messages).
    """

    kind: str
    classes: int | None
    shape: tuple
    activation: str
    name: str = "output"

    @property
    def units(self):
        """The size of the output's last axis."""
        return int(self.shape[-1]) if self.shape else 1

    def describe(self):
        """The head in words, for messages."""
        what = {
            "softmax": f"a softmax classifier with {self.classes} classes",
            "multilabel": f"a multi-label classifier with {self.classes} sigmoid labels",
            "binary": "a binary classifier with one unit (class 1: the logit, class 0: "
            "its negation)",
            "regression": f"a regression head with {self.units} value(s)",
            "segmentation": f"a segmentation head with {self.classes} classes per pixel",
            "none": "an output that is not a classifier, a regression or a segmentation head",
        }[self.kind]
        return f"output {self.name!r} of shape {(None, *self.shape)} is {what}"


def head_of(model, index=0):
    """The ``Head`` of output ``index`` of ``model``, from its shape, activation and loss.

    A one-unit output is binary when it ends in a sigmoid or is trained with a binary loss,
    otherwise a regression; a wider vector is multi-label with a sigmoid or a binary loss,
    a regression with a regression loss, else a softmax classifier (logits); an
    ``(h, w, classes)`` output is a segmentation head.

    Example:
        >>> head_of(model).kind
        'binary'
    """
    from tb_cnnvis import capture

    shape = tuple(capture.output_shapes(model)[index])
    name = str(capture.output_keys(model)[index])
    activation = capture.final_activation(model, index)
    loss = _loss_kind(model, index)
    if len(shape) == 1 and shape[0] is not None:
        units = int(shape[0])
        if activation == "softmax" and units > 1:
            return Head("softmax", units, shape, activation, name)
        binary = activation == "sigmoid" or loss == "binary"
        if units == 1:
            return Head(
                "binary" if binary else "regression", 2 if binary else None, shape, activation, name
            )
        if binary:
            return Head("multilabel", units, shape, activation, name)
        if loss == "regression":
            return Head("regression", None, shape, activation, name)
        return Head("softmax", units, shape, activation, name)
    if len(shape) == 3 and shape[-1] is not None:
        classes = max(2, int(shape[-1]))
        return Head("segmentation", classes, shape, activation, name)
    return Head("none", None, shape, activation, name)


def _loss_kind(model, index):
    """ "binary", "class", "regression" or None, from the loss ``model`` was compiled with."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, dict):
        from tb_cnnvis import capture

        loss = loss.get(str(capture.output_keys(model)[index]))
    elif isinstance(loss, (list, tuple)):
        loss = loss[index] if index < len(loss) else None
    if loss is None:
        return None
    name = loss if isinstance(loss, str) else getattr(loss, "name", None)
    name = name or getattr(loss, "__name__", "") or type(loss).__name__
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in str(name)).lstrip("_")
    for kind, names in (
        ("binary", _BINARY_LOSSES),
        ("class", _CLASS_LOSSES),
        ("regression", _REGRESSION_LOSSES),
    ):
        if snake in names or str(name).lower() in names:
            return kind
    return None


def class_probabilities(head, logits):
    """Per-class probabilities (N, classes) from logits (a final squashing skipped), or None.

    Softmax heads: the softmax; multi-label: each label's sigmoid; binary: ``(1 - p, p)``;
    segmentation: the share of pixels predicted as each class. Regression and other heads
    have none.

    Example:
        >>> class_probabilities(Head("binary", 2, (1,), "sigmoid"), np.array([[0.0]]))
        array([[0.5, 0.5]])
    """
    logits = np.asarray(logits, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if head.kind == "softmax":
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return shifted / shifted.sum(axis=-1, keepdims=True)
        if head.kind == "multilabel":
            return 1.0 / (1.0 + np.exp(-logits))
        if head.kind == "binary":
            p = 1.0 / (1.0 + np.exp(-logits[:, :1]))
            return np.concatenate([1.0 - p, p], axis=1)
        if head.kind == "segmentation":
            planes = np.concatenate([-logits, logits], -1) if logits.shape[-1] == 1 else logits
            predicted = planes.argmax(axis=-1).reshape(len(planes), -1)
            counts = np.stack([(predicted == c).mean(axis=1) for c in range(head.classes)], 1)
            return counts
    return None

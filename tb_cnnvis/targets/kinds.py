"""The target kinds' common base and the class targets: ``Target``, ``Class``, ``Binary``,
``Regression`` (see the package docstring for what each explains)."""

import numpy as np

from tb_cnnvis.heads import HEAD_KINDS


def suggest(head):
    """What targets fit ``head``, as a sentence."""
    return {
        "softmax": "use class_index=0..{n} or targets.Class(i).",
        "multilabel": "use class_index=0..{n} (a label) or targets.Class(i).",
        "binary": "use class_index=0 or 1, or targets.Binary(i) (class 0 is the negated logit).",
        "regression": "it has no classes: use targets.Regression(+1) or Regression(-1) (raise "
        "or lower the value), or leave class_index out.",
        "segmentation": "use class_index=0..{n}, or targets.Segmentation(i, mask=...).",
        "none": "give a callable target (logits -> one score per image), or leave the class "
        "views out: feature maps, filter patterns, DeepDream, Eigen-CAM, projections and top "
        "examples need no class.",
    }[head.kind].format(n=(head.classes or 1) - 1)


class Target:
    """A score per image of the explained output's logits; subclasses are the kinds.

    A target holds per-image values (class indices, masks) as numpy arrays with one row per
    image or one for all; ``score`` is TensorFlow code (traced into the views' compiled
    functions), given those values as tensors of the same names.
    """

    kind = "custom"
    heads = HEAD_KINDS

    def check(self, head, count):
        """Raise ``ValueError`` if the target cannot explain ``head`` for ``count`` images."""
        if head.kind not in self.heads:
            raise ValueError(
                f"A {type(self).__name__} target cannot explain {head.describe()}; {suggest(head)}"
            )

    def values(self, count):
        """The per-image values ``score`` takes: ``{name: array with count rows}``."""
        return {}

    def key(self):
        """What the traced code depends on besides the values (a cache key)."""
        return (self.kind,)

    def score(self, logits, values, head):
        """One score per image (N,) from the logits (N, ...) and the values (tensors)."""
        raise NotImplementedError

    def chosen(self, logits, values, head):
        """The class each image's score explains (N,) int32, or -1 where none (tensors)."""
        import tensorflow as tf

        return tf.fill(tf.shape(logits)[:1], -1)

    def caption(self, class_index, class_names=None):
        """The target in words for one image, given the class it explained."""
        return self.kind

    def has_probability(self, head):
        """True when the score's class has a probability (the faithfulness metrics use it)."""
        return False

    def probability(self, logits, values, head):
        """The probability of the explained class per image (N,) (tensors), where one exists."""
        raise ValueError(f"A {self.kind} target has no class probability.")


def _class_name(index, class_names):
    """``class 3 ('dog')`` or ``class 3``."""
    if class_names is not None and 0 <= index < len(class_names):
        return f"class {index} ({class_names[index]})"
    return f"class {index}"


def _index_values(index, count):
    """A per-image int32 index array (-1: the prediction) from None, an int or N ints."""
    if index is None:
        return np.full(count, -1, np.int32)
    values = np.asarray(index)
    if values.ndim == 0:
        values = np.full(count, values)
    return values.astype(np.int32)


def _check_index(index, count, classes, head):
    """Raise ``ValueError`` for an index that is not None, an int or ``count`` ints in range."""
    if index is None:
        return
    values = np.asarray(index)
    integer = np.issubdtype(values.dtype, np.integer) and values.dtype != np.bool_
    if not integer or values.shape not in ((), (count,)):
        raise ValueError(
            f"class_index must be None, an int, or {count} ints (one per image); got {index!r}."
        )
    bad = sorted({int(v) for v in values.reshape(-1) if v < 0 or v >= classes})
    if bad:
        raise ValueError(
            f"class_index {bad} out of range: expected 0 <= class_index < {classes} "
            f"({head.describe()})."
        )


class Class(Target):
    """The logit of class ``index`` (a softmax head) or label ``index`` (a multi-label head).

    Args:
        index: None (each image's predicted class), an int, or one int per image.

    Example:
        >>> cv.grad_cam(model, images, target=Class(3))
    """

    kind = "class"
    heads = ("softmax", "multilabel")

    def __init__(self, index=None):
        self.index = index

    def check(self, head, count):
        """The head is a classifier and the index one of its classes."""
        super().check(head, count)
        _check_index(self.index, count, head.classes, head)

    def values(self, count):
        """The class per image (-1: predicted)."""
        return {"index": _index_values(self.index, count)}

    def chosen(self, logits, values, head):
        """The class asked for, or the argmax."""
        import tensorflow as tf

        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return tf.where(values["index"] < 0, predicted, values["index"])

    def score(self, logits, values, head):
        """The chosen class's logit."""
        import tensorflow as tf

        return tf.gather(logits, self.chosen(logits, values, head), axis=1, batch_dims=1)

    def probability(self, logits, values, head):
        """The softmax probability, or the label's sigmoid."""
        import tensorflow as tf

        chosen = self.chosen(logits, values, head)
        if head.kind == "multilabel":
            return tf.sigmoid(tf.gather(logits, chosen, axis=1, batch_dims=1))
        return tf.gather(tf.nn.softmax(logits, axis=-1), chosen, axis=1, batch_dims=1)

    def caption(self, class_index, class_names=None):
        """``class 3 (dog): logit`` (label for a multi-label head)."""
        return f"{_class_name(int(class_index), class_names)}: logit"

    def has_probability(self, head):
        """Softmax and sigmoid classes have one."""
        return True

    def __repr__(self):
        return f"Class({self.index!r})"


class Binary(Target):
    """A one-unit head as two classes: class 1 is the logit ``z``, class 0 is ``-z``.

    ``log(p1 / p0) = z`` for a sigmoid unit, so the evidence for class 0 is the evidence
    against class 1: explaining ``z`` for a class-0 image shows what argues *against* it.

    Args:
        index: None (each image's predicted class: 1 where ``z > 0``), 0, 1, or one per image.

    Example:
        >>> cv.grad_cam(cats_vs_dogs, images, target=Binary(0))   # what makes it a cat
    """

    kind = "binary"
    heads = ("binary",)

    def __init__(self, index=None):
        self.index = index

    def check(self, head, count):
        """A one-unit head, classes 0 and 1."""
        super().check(head, count)
        _check_index(self.index, count, 2, head)

    def values(self, count):
        """The class per image (-1: predicted)."""
        return {"index": _index_values(self.index, count)}

    def chosen(self, logits, values, head):
        """The class asked for, or 1 where the logit is positive."""
        import tensorflow as tf

        predicted = tf.cast(logits[:, 0] > 0, tf.int32)
        return tf.where(values["index"] < 0, predicted, values["index"])

    def score(self, logits, values, head):
        """``z`` for class 1, ``-z`` for class 0."""
        import tensorflow as tf

        sign = tf.cast(2 * self.chosen(logits, values, head) - 1, logits.dtype)
        return sign * logits[:, 0]

    def probability(self, logits, values, head):
        """``sigmoid(score)``: p for class 1, 1 - p for class 0."""
        import tensorflow as tf

        return tf.sigmoid(self.score(logits, values, head))

    def caption(self, class_index, class_names=None):
        """``class 0 (cat): negated logit`` or ``class 1 (dog): logit``."""
        rule = "logit" if int(class_index) == 1 else "negated logit"
        return f"{_class_name(int(class_index), class_names)}: {rule}"

    def has_probability(self, head):
        """p or 1 - p."""
        return True

    def __repr__(self):
        return f"Binary({self.index!r})"


class Regression(Target):
    """A regression output's value, to raise (``sign=+1``) or lower (``sign=-1``).

    Args:
        sign: +1 (what raises the value) or -1 (what lowers it).
        unit: which value of a vector output; None for a one-value output.

    Example:
        >>> cv.grad_cam(age_model, images, target=Regression(-1))   # what makes it younger
    """

    kind = "regression"
    heads = ("regression", "binary", "multilabel", "softmax")

    def __init__(self, sign=1, unit=None):
        if sign not in (1, -1):
            raise ValueError(f"Regression(sign=...) must be +1 or -1; got {sign!r}.")
        self.sign = int(sign)
        self.unit = unit

    def check(self, head, count):
        """A vector output; ``unit`` in range (needed when it has several values)."""
        super().check(head, count)
        if self.unit is None and head.units > 1:
            raise ValueError(
                f"{head.describe()[0].upper()}{head.describe()[1:]}; say which value to "
                f"explain with Regression(unit=0..{head.units - 1})."
            )
        if self.unit is not None and not 0 <= int(self.unit) < head.units:
            raise ValueError(f"Regression(unit={self.unit}) is out of range: {head.describe()}.")

    def key(self):
        """The sign and unit are traced in."""
        return (self.kind, self.sign, self.unit)

    def score(self, logits, values, head):
        """``sign * output[unit]``."""
        return self.sign * logits[:, int(self.unit or 0)]

    def caption(self, class_index, class_names=None):
        """``regression: raise`` or ``regression: lower`` (with the unit when given)."""
        unit = "" if self.unit is None else f" value {self.unit}"
        return f"regression{unit}: {'raise' if self.sign > 0 else 'lower'}"

    def __repr__(self):
        return f"Regression(sign={self.sign:+d}, unit={self.unit!r})"

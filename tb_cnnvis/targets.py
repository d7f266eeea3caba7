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

from typing import NamedTuple

import numpy as np

from tb_cnnvis.heads import HEAD_KINDS, Head, head_of


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


class Segmentation(Target):
    """Seg-Grad-CAM's score: a class's logits summed over pixels (Vinogradova et al. 2020).

    Args:
        class_index: None (per image, the class predicted on the most pixels), an int, or
            one per image.
        mask: the pixels summed over, (h, w) or (N, h, w) at the output's resolution,
            nonzero where counted; None: the pixels predicted as the class.

    Example:
        >>> cv.grad_cam(unet, images, target=Segmentation(2))              # 'road'
        >>> cv.grad_cam(unet, images, target=Segmentation(2, mask=box))    # in the box
    """

    kind = "segmentation"
    heads = ("segmentation",)

    def __init__(self, class_index=None, mask=None):
        self.class_index = class_index
        self.mask = None if mask is None else np.asarray(mask)

    def check(self, head, count):
        """A segmentation head; class in range; a mask at the output's resolution."""
        super().check(head, count)
        _check_index(self.class_index, count, head.classes, head)
        if self.mask is not None:
            size = tuple(head.shape[:2])
            shape = self.mask.shape
            if (
                shape[-2:] != size
                or self.mask.ndim not in (2, 3)
                or (self.mask.ndim == 3 and shape[0] not in (1, count))
            ):
                raise ValueError(
                    f"Segmentation mask of shape {shape} does not fit: {head.describe()}, "
                    f"so a mask is {size} or ({count}, *{size}) (nonzero where counted)."
                )

    def values(self, count):
        """The class per image (-1: the largest predicted) and the mask (N, h, w) or none."""
        found = {"index": _index_values(self.class_index, count)}
        if self.mask is not None:
            mask = (self.mask != 0).astype(np.float32)
            found["mask"] = np.broadcast_to(
                mask.reshape(-1, *mask.shape[-2:]), (count, *mask.shape[-2:])
            ).copy()
        return found

    def key(self):
        """With or without a mask."""
        return (self.kind, self.mask is not None)

    def _planes(self, logits):
        """Per-class logits (N, h, w, classes): a one-channel head becomes (-z, z)."""
        import tensorflow as tf

        if logits.shape[-1] == 1:
            return tf.concat([-logits, logits], axis=-1)
        return logits

    def chosen(self, logits, values, head):
        """The class asked for, or the one predicted on the most pixels."""
        import tensorflow as tf

        planes = self._planes(logits)
        predicted = tf.argmax(planes, axis=-1, output_type=tf.int32)
        area = tf.reduce_sum(tf.one_hot(predicted, tf.shape(planes)[-1]), axis=(1, 2))
        largest = tf.argmax(area, axis=-1, output_type=tf.int32)
        return tf.where(values["index"] < 0, largest, values["index"])

    def pixels(self, logits, values, head):
        """The mask of pixels summed over (N, h, w) float."""
        import tensorflow as tf

        if "mask" in values:
            return tf.cast(values["mask"], logits.dtype)
        planes = self._planes(logits)
        predicted = tf.argmax(planes, axis=-1, output_type=tf.int32)
        chosen = self.chosen(logits, values, head)
        return tf.cast(tf.equal(predicted, chosen[:, None, None]), logits.dtype)

    def score(self, logits, values, head):
        """The class's logits summed over the mask."""
        import tensorflow as tf

        planes = self._planes(logits)
        chosen = self.chosen(logits, values, head)
        plane = tf.gather(planes, chosen, axis=3, batch_dims=1)
        return tf.reduce_sum(plane * tf.stop_gradient(self.pixels(logits, values, head)), (1, 2))

    def probability(self, logits, values, head):
        """The class's mean per-pixel probability over the mask."""
        import tensorflow as tf

        planes = self._planes(logits)
        if logits.shape[-1] == 1 or head.activation == "sigmoid":
            per_pixel = tf.sigmoid(planes)
        else:
            per_pixel = tf.nn.softmax(planes, axis=-1)
        chosen = self.chosen(logits, values, head)
        plane = tf.gather(per_pixel, chosen, axis=3, batch_dims=1)
        mask = self.pixels(logits, values, head)
        return tf.math.divide_no_nan(
            tf.reduce_sum(plane * mask, (1, 2)), tf.reduce_sum(mask, (1, 2))
        )

    def caption(self, class_index, class_names=None):
        """``segmentation: class 2 (road) over its predicted mask``."""
        where = "the given mask" if self.mask is not None else "its predicted mask"
        return f"segmentation: {_class_name(int(class_index), class_names)} over {where}"

    def has_probability(self, head):
        """The class's mean probability over the mask."""
        return True

    def __repr__(self):
        mask = None if self.mask is None else f"<mask {self.mask.shape}>"
        return f"Segmentation({self.class_index!r}, mask={mask})"


class Score(Target):
    """A target from a callable ``f(logits) -> (N,)`` (any TensorFlow code).

    Args:
        function: maps the explained output's logits (N, ...) to one score per image.
        name: how captions call it (default: the function's name).

    Example:
        >>> Score(lambda z: z[:, 3] - z[:, 5], name="dog minus cat")
    """

    kind = "custom"

    def __init__(self, function, name=None):
        if not callable(function):
            raise ValueError(f"A target must be callable (logits -> (N,)); got {function!r}.")
        self.function = function
        self.name = name or getattr(function, "__name__", "custom")

    def check(self, head, count):
        """The function gives one finite score per image on zero logits."""
        import tensorflow as tf

        shape = tuple(1 if d is None else int(d) for d in head.shape)
        try:
            found = self.function(tf.zeros((2, *shape), tf.float32))
        except Exception as error:  # the user's code: say what it did with our input
            raise ValueError(
                f"The target {self.name!r} failed on logits of shape {(2, *shape)} "
                f"({type(error).__name__}: {error}); it must map (N, ...) to (N,)."
            ) from None
        if tuple(found.shape) != (2,):
            raise ValueError(
                f"The target {self.name!r} must give one score per image, shape (N,); on "
                f"logits of shape {(2, *shape)} it gave shape {tuple(found.shape)}."
            )

    def key(self):
        """The function itself."""
        return (self.kind, self.function)

    def score(self, logits, values, head):
        """The function's value."""
        return self.function(logits)

    def caption(self, class_index, class_names=None):
        """``custom: <name>``."""
        return f"custom: {self.name}"

    def __repr__(self):
        return f"Score({self.name!r})"


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
    if isinstance(target, Segmentation) and target.mask is not None and target.mask.ndim == 3:
        mask = target.mask if len(target.mask) == 1 else target.mask[rows]
        index = target.class_index
        if index is not None and np.ndim(index) == 1:
            index = np.asarray(index)[rows]
        return Segmentation(index, mask)
    for kind in (Class, Binary, Segmentation):
        if isinstance(target, kind):
            index = target.class_index if kind is Segmentation else target.index
            if index is not None and np.ndim(index) == 1 and len(index) > 1:
                return with_classes(target, np.asarray(index)[rows])
    return target


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

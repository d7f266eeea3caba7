"""Seg-Grad-CAM's target (``Segmentation``) and any callable (``Score``)."""

import numpy as np

from tb_cnnvis.targets.kinds import Target, _check_index, _class_name, _index_values


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

"""Class activation maps: Grad-CAM and its variants, as one template with one map function each.

Every method turns the activations ``A`` (N, h, w, K) of a layer, and the gradients of the
explained class's score with respect to them, into a raw map (N, h, w); the template then
applies a ReLU, upsamples the map bilinearly to the input size and scales it to [0, 1] per
image. The methods differ only in that first step (as in pytorch-grad-cam's
``base_cam.py``, where each variant overrides one step); each is one function of
``cam_methods.MAPS``, where its paper is cited:

- channel weights, ``map = ReLU(sum_k w_k A_k)``: ``"gradcam"`` (Selvaraju et al. 2017),
  ``"gradcam++"`` (Chattopadhyay et al. 2018), ``"xgradcam"`` (Fu et al. 2020),
  ``"scorecam"`` (Wang et al. 2020, no gradients: masked forward passes);
- element-wise, ``map = ReLU(sum_k f(g_k) * A_k)``: ``"layercam"`` (Jiang et al. 2021),
  ``"hirescam"`` (Draelos & Carin 2020);
- class-agnostic: ``"eigencam"`` (Muhammad & Yeasin 2020), the activations' first
  principal direction.

The class score is the logit: when the model ends in a softmax, it is skipped
(``capture.run_graph(..., logits=True)``), because a saturated softmax flattens gradients.

Example:
    >>> maps = grad_cam(model, images)                     # (N, H, W) in [0, 1]
    >>> details = cam_details(model, images, method="layercam")
    >>> details.cam_max, details.probability
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture, targets
from tb_cnnvis.algorithms import cam_methods

METHODS = tuple(cam_methods.MAPS)
"""Every CAM method, by the name ``method=`` takes."""


class CamResult(NamedTuple):
    """Class activation maps with what a viewer needs to judge them (all arrays have N rows).

    Attributes:
        maps: float32 (N, H, W) in [0, 1] at input resolution (zeros where the map is zero).
        cam_max: float32 (N,): the maximum of each map before scaling to [0, 1].
        class_index: int32 (N,): the class explained (for the class-agnostic ``"eigencam"``,
            the class its map is judged by: the one asked for, or the prediction).
        predicted: int32 (N,): the class with the largest score.
        probability: float32 (N,): probability of the predicted class.
        target_probability: float32 (N,): probability of the class explained.
        layer: the layer's path.
        method: the method's name (one of ``METHODS``).
        score: float32 (N,): the target's score (the logit explained; for a regression,
            the signed value).
        captions: the target in words per image (``"class 0 (cat): negated logit"``).
        head: the explained output's kind (``heads.HEAD_KINDS``).
        value: float32 (N,): a regression head's output value (NaN for other targets).
        masks: bool (N, h, w): a segmentation target's pixels (its mask, or the pixels
            predicted as its class), at the output's resolution; None for other targets.
    """

    maps: np.ndarray
    cam_max: np.ndarray
    class_index: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    target_probability: np.ndarray
    layer: str
    method: str
    score: np.ndarray | None = None
    captions: tuple = ()
    head: str = "softmax"
    value: np.ndarray | None = None
    masks: np.ndarray | None = None


def _build_gradients(model_ref, path, output, bound):
    """Activations of ``path``, d score / d activations and the logits, for ``bound``'s target."""

    def run(images, values, side):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            # Watched where the layer returns: the tape holds only the operations after it,
            # and the gradient's trace is the rest of the model's, not the whole model's.
            outputs, taps = capture.run_graph(
                model_ref(), images, side=side, taps=[path], logits=True, on_tap=tape.watch
            )
            logits = tf.cast(capture.select_output(outputs, output), tf.float32)
            acts = taps[path]
            score = tf.reduce_sum(bound.score(logits, values))
        grads = tape.gradient(score, acts)
        if grads is None:
            grads = tf.zeros_like(acts)
        return tf.cast(acts, tf.float32), tf.cast(grads, tf.float32), logits

    return run


def method_name(method):
    """The canonical name of a CAM method (the view and metric spellings are aliases).

    Example:
        >>> method_name("gradcam_plus_plus"), method_name("gradcampp")
        ('gradcam++', 'gradcam++')
    """
    name = METHOD_ALIASES.get(method, method)
    if name not in cam_methods.MAPS:
        raise ValueError(f"Unknown method {method!r}; expected one of {list(METHODS)}.")
    return name


METHOD_ALIASES = {
    "grad_cam": "gradcam",
    "gradcam_plus_plus": "gradcam++",
    "gradcampp": "gradcam++",
    "score_cam": "scorecam",
    "layer_cam": "layercam",
    "hires_cam": "hirescam",
    "xgrad_cam": "xgradcam",
    "eigen_cam": "eigencam",
}
"""Other spellings of the methods (view kinds, metric names), by the name they stand for."""


def bind_target(model, index, count, target=None, class_index=None, method=None):
    """The ``targets.Bound`` a CAM explains; Eigen-CAM, class-agnostic, takes any head.

    Eigen-CAM follows the default class where the head has classes (its metrics use it);
    on a head without any, it explains nothing (a zero score) and says "class-agnostic".
    """
    try:
        return targets.bind(model, index, count, target, class_index)
    except ValueError:
        if method != "eigencam" or target is not None or class_index is not None:
            raise
        agnostic = targets.Score(_no_score, name="class-agnostic")
        head = targets.head_of(model, index)
        return targets.Bound(agnostic, head, {})


def _no_score(logits):
    """A score of zero per image (Eigen-CAM on a head without classes)."""
    return tf.zeros(tf.shape(logits)[:1], logits.dtype)


def class_count(model, output=None):
    """Number of classes of a classifier or segmentation output (a binary head has 2).

    Args:
        model: a built Keras model.
        output: which output (a name or an index); needed when the model has several.

    Returns:
        The number of classes a class index chooses among.

    Raises:
        ValueError: for a model with several outputs and no ``output`` (the message names
            them), or an output without classes (a regression, or another shape): the
            message says what it is and what works.

    Example:
        >>> class_count(keras.applications.VGG16(weights=None))
        1000
    """
    index = capture.output_index(model, output)
    head = targets.head_of(model, index)
    if head.classes is None:
        raise ValueError(f"No classes to count: {head.describe()}; {targets.suggest(head)}")
    return head.classes


def class_indices(class_index, count, classes, what="class_index"):
    """Validate a per-image index argument (a class, or a channel) as int32 (N,).

    Args:
        class_index: None, an int for every image, or one int per image.
        count: the number of images N.
        classes: indices must lie in ``[0, classes)``.
        what: the argument's name, for error messages.

    Returns:
        int32 array (N,); -1 stands for None ("choose per image").

    Raises:
        ValueError: wrong type or length, or an index out of range.

    Example:
        >>> class_indices([2, 0], count=2, classes=10).tolist()
        [2, 0]
    """
    if class_index is None:
        return np.full(count, -1, np.int32)
    values = np.asarray(class_index)
    if values.ndim == 0:
        values = np.full(count, values)
    if values.shape != (count,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"{what} must be None, an int, or {count} ints (one per image); got {class_index!r}."
        )
    bad = sorted(set(values[(values < 0) | (values >= classes)].tolist()))
    if bad:
        raise ValueError(f"{what} {bad} out of range: expected 0 <= {what} < {classes}.")
    return values.astype(np.int32)


def _cam_layer(model, layer):
    """Resolve ``layer`` (None: the last layer with a 4-D output) to a path."""
    if layer is not None:
        return capture.resolve_layer(model, layer).path
    conv = capture.conv_layers(model)
    if not conv:
        raise ValueError(f"Model {model.name!r} has no layer with a (h, w, channels) output.")
    return conv[-1]


def cam_details(
    model,
    images,
    layer=None,
    class_index=None,
    method="gradcam",
    *,
    target=None,
    max_channels=None,
    output=None,
    image_input=None,
    class_names=None,
):
    """Class activation maps with the target, probabilities and raw strength per image.

    See the module docstring for the methods and papers. Scores are computed from the
    logits (a final softmax or sigmoid is skipped); what is explained is a target
    (``tb_cnnvis.targets``): by default, each image's predicted class (a binary head's
    class 0 is its negated logit; a regression head's value, raised; a segmentation
    head's largest predicted class, summed over its pixels). Images whose map is not
    finite get a zero map and a warning.

    Args:
        model: a built Keras 3 model (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them (the other
            inputs are held at each image's values; maps are for the image input).
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output; None: the
            last such layer.
        class_index: None (the predicted class), an int, or one int per image: the short
            form of a class target (``targets.Class``, ``Binary`` or ``Segmentation``).
        method: one of ``METHODS``: "gradcam", "gradcam++", "xgradcam", "scorecam",
            "layercam", "hirescam" or "eigencam" (class-agnostic; see the module docstring);
            view and metric spellings (``"gradcam_plus_plus"``, ``"gradcampp"``) work too.
        target: what to explain: a ``targets.Target`` or a callable ``logits -> (N,)``;
            None: ``class_index``'s class target.
        max_channels: Score-CAM only: use at most this many channels per image, those whose
            activations vary most (tf-keras-vis's "Faster Score-CAM"); None: all.
        output: the output explained: a name, a dict key or an index; needed when the
            model has several outputs.
        image_input: the image input's name, when the model has several 4-D inputs.
        class_names: names for the captions (``CamResult.captions``).

    Returns:
        A ``CamResult``.

    Raises:
        ValueError: unknown method or layer, a layer without a 4-D output, images of the
            wrong shape, several outputs and no ``output`` (the message names them), a
            target that cannot explain the output or a class out of range (the message
            says what fits).

    Example:
        >>> details = cam_details(model, images, "conv2", method="scorecam")
        >>> details.maps.shape, details.class_index, details.captions[0]
    """
    method = method_name(method)
    if max_channels is not None and (not isinstance(max_channels, int) or max_channels < 1):
        raise ValueError(f"max_channels must be None or a positive int; got {max_channels!r}.")
    path = _cam_layer(model, layer)
    batch, side = capture.split_images(model, images, image_input=image_input)
    index = capture.output_index(model, output)
    bound = bind_target(model, index, len(batch), target, class_index, method)
    gradients = capture.CACHE.get(
        model,
        ("cam", path, index, bound.key()),
        lambda model_ref: _build_gradients(model_ref, path, index, bound),
    )
    acts, grads, logits = (
        t.numpy()
        for t in gradients(tf.constant(batch), bound.tensors(), capture.side_constants(side))
    )
    found = targets.outcome(bound, logits, class_names)
    evidence = cam_methods.Evidence(
        model, batch, acts, grads, targets.fix(bound, logits), path, max_channels, side, index
    )
    with np.errstate(invalid="ignore", over="ignore"):
        raw = np.maximum(cam_methods.MAPS[method](evidence), 0.0)
    raw = capture.finite_or_zero(raw, f"{method} on {path!r}")
    upsampled = tf.image.resize(raw[..., None], batch.shape[1:3]).numpy()[..., 0]
    upsampled = np.maximum(upsampled, 0.0)
    cam_max = upsampled.max(axis=(1, 2))
    maps = upsampled / np.where(cam_max > 0, cam_max, 1.0)[:, None, None]
    return CamResult(
        maps=maps.astype(np.float32),
        cam_max=cam_max.astype(np.float32),
        class_index=found.class_index,
        predicted=found.predicted,
        probability=found.probability,
        target_probability=found.target_probability,
        layer=path,
        method=method,
        score=found.score,
        captions=found.captions,
        head=bound.head.kind,
        value=found.value,
        masks=found.masks,
    )


def grad_cam(
    model,
    images,
    layer=None,
    class_index=None,
    method="gradcam",
    *,
    target=None,
    max_channels=None,
    output=None,
    image_input=None,
):
    """Class activation maps (Grad-CAM and its variants) at input resolution.

    Selvaraju et al. 2017 (Grad-CAM), Chattopadhyay et al. 2018 (Grad-CAM++), Fu et al.
    2020 (XGrad-CAM), Wang et al. 2020 (Score-CAM), Jiang et al. 2021 (LayerCAM), Draelos &
    Carin 2020 (HiResCAM), Muhammad & Yeasin 2020 (Eigen-CAM, class-agnostic); see the
    module docstring and ``cam_methods``. The score explained is a target's
    (``tb_cnnvis.targets``), computed from the logits: a final softmax or sigmoid is
    skipped. The map is ReLU'd, upsampled bilinearly and divided by its maximum per image
    (a zero map stays zero: no positive evidence for the target at that layer).

    Args:
        model: a built Keras 3 model (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them.
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output; None: the
            last such layer.
        class_index: None (the predicted class), an int, or one int per image; ignored by
            "eigencam". On a binary (one-unit) head, class 0 is the negated logit.
        method: "gradcam", "gradcam++", "xgradcam", "scorecam", "layercam", "hirescam" or
            "eigencam".
        target: a ``targets.Target`` (``Class``, ``Binary``, ``Regression``,
            ``Segmentation``) or a callable ``logits -> (N,)``; None: ``class_index``'s.
        max_channels: Score-CAM only: at most this many channels (largest variance) per image.
        output: the output explained (a name, dict key or index); needed with several.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        float32 numpy array (N, H, W) in [0, 1].

    Raises:
        ValueError: see ``cam_details``.

    Example:
        >>> import tb_cnnvis as cv
        >>> cv.grad_cam(model, images, "conv2", class_index=3, method="layercam").shape
        (4, 32, 32)
        >>> cv.grad_cam(unet, images, target=cv.targets.Segmentation(2)).shape
        (4, 128, 128)
    """
    return cam_details(
        model,
        images,
        layer,
        class_index,
        method,
        target=target,
        max_channels=max_channels,
        output=output,
        image_input=image_input,
    ).maps

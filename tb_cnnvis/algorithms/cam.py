"""Class activation maps: Grad-CAM and its variants, as one template with one weighting each.

Every method computes a map ``ReLU(sum_k w_k A_k)`` from the activations ``A`` of a layer
with a (h, w, K) output, upsamples it bilinearly to the input size and scales it to [0, 1]
per image. The methods differ only in the channel weights ``w_k`` (as in pytorch-grad-cam's
``base_cam.py``, where each variant overrides the weighting step):

- ``"gradcam"``: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", ICCV 2017: the spatial mean of d score / d A_k.
- ``"gradcam++"``: Chattopadhyay et al., "Grad-CAM++: Improved Visual Explanations for Deep
  Convolutional Networks", WACV 2018: a pixel-weighted mean of the positive gradients.
- ``"scorecam"``: Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
  Convolutional Neural Networks", CVPR Workshops 2020: no gradients; each channel, upsampled
  and scaled to [0, 1], masks the input, and the softmax over channels of the class scores
  of the masked inputs gives the weights. K forward passes per image (batched).

The class score is the logit: when the model ends in a softmax, it is skipped
(``capture.run_graph(..., logits=True)``), because a saturated softmax flattens gradients.

Example:
    >>> maps = grad_cam(model, images)                     # (N, H, W) in [0, 1]
    >>> details = cam_details(model, images, method="gradcam++")
    >>> details.cam_max, details.probability
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture

METHODS = ("gradcam", "gradcam++", "scorecam")
SCORE_CAM_BATCH = 32
"""Most masked images one Score-CAM forward pass takes."""


class CamResult(NamedTuple):
    """Class activation maps with what a viewer needs to judge them (all arrays have N rows).

    Attributes:
        maps: float32 (N, H, W) in [0, 1] at input resolution (zeros where the map is zero).
        cam_max: float32 (N,): the maximum of each map before scaling to [0, 1].
        class_index: int32 (N,): the class explained.
        predicted: int32 (N,): the class with the largest score.
        probability: float32 (N,): probability of the predicted class.
        target_probability: float32 (N,): probability of the class explained.
        layer: the layer's path.
        method: "gradcam", "gradcam++" or "scorecam".
    """

    maps: np.ndarray
    cam_max: np.ndarray
    class_index: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    target_probability: np.ndarray
    layer: str
    method: str


class _Evidence(NamedTuple):
    """What a weighting step may use: activations, gradients, and the means to rerun."""

    model: object
    images: np.ndarray
    acts: np.ndarray
    grads: np.ndarray
    target: np.ndarray
    path: str
    max_channels: int | None


def _gradcam_weights(ev):
    """Grad-CAM: global-average-pooled gradients."""
    return ev.grads.mean(axis=(1, 2))


def _gradcam_pp_weights(ev):
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19 with the exponential score)."""
    g2, g3 = ev.grads**2, ev.grads**3
    denominator = 2.0 * g2 + ev.acts.sum(axis=(1, 2), keepdims=True) * g3
    alpha = g2 / np.where(denominator != 0.0, denominator, 1.0)
    return (alpha * np.maximum(ev.grads, 0.0)).sum(axis=(1, 2))


def _scorecam_weights(ev):
    """Score-CAM: softmax over channels of the target logit for each channel-masked input."""
    n, _, _, k = ev.acts.shape
    chosen = _score_cam_channels(ev.acts, ev.max_channels)
    pairs = [(i, c) for i in range(n) for c in chosen[i]]
    batch = min(SCORE_CAM_BATCH, len(pairs))
    score = capture.CACHE.get(ev.model, ("scorecam", ev.path), _build_masked_scores)
    scores = np.zeros(len(pairs), np.float32)
    for start in range(0, len(pairs), batch):
        part = pairs[start : start + batch]
        padded = part + [part[0]] * (batch - len(part))  # a fixed shape: no retracing
        rows, cols = (np.array(column) for column in zip(*padded))
        logits = score(tf.constant(ev.images[rows]), tf.constant(ev.acts[rows, :, :, cols]))
        used = np.arange(len(part))
        scores[start : start + len(part)] = logits.numpy()[used, ev.target[rows[used]]]
    weights = np.zeros((n, k), np.float32)
    offset = 0
    for i, channels in enumerate(chosen):
        own = scores[offset : offset + len(channels)]
        offset += len(channels)
        exp = np.exp(own - own.max())
        weights[i, channels] = exp / exp.sum()
    return weights


def _score_cam_channels(acts, max_channels):
    """Channels Score-CAM uses per image: all, or the ``max_channels`` of largest variance."""
    k = acts.shape[-1]
    if max_channels is None or max_channels >= k:
        return [np.arange(k)] * len(acts)
    variance = np.nan_to_num(acts.var(axis=(1, 2)), nan=np.inf)
    return [np.sort(np.argsort(-v, kind="stable")[:max_channels]) for v in variance]


_WEIGHTS = {
    "gradcam": _gradcam_weights,
    "gradcam++": _gradcam_pp_weights,
    "scorecam": _scorecam_weights,
}


def _build_gradients(model_ref, path):
    """Activations of ``path``, d logit / d activations, logits, target and predicted class."""

    def run(images, class_index):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            logits, taps = capture.run_graph(model_ref(), images, taps=[path], logits=True)
            logits = tf.cast(logits, tf.float32)
            acts = taps[path]
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            target = tf.where(class_index < 0, predicted, class_index)
            score = tf.reduce_sum(tf.gather(logits, target, axis=1, batch_dims=1))
        grads = tape.gradient(score, acts)
        if grads is None:
            grads = tf.zeros_like(acts)
        return tf.cast(acts, tf.float32), tf.cast(grads, tf.float32), logits, target, predicted

    return run


def _build_masked_scores(model_ref):
    """Logits of ``images`` each masked by one upsampled channel scaled to [0, 1]."""

    def run(images, channel_maps):
        masks = tf.image.resize(channel_maps[..., None], tf.shape(images)[1:3])
        low = tf.reduce_min(masks, axis=(1, 2, 3), keepdims=True)
        high = tf.reduce_max(masks, axis=(1, 2, 3), keepdims=True)
        masks = tf.math.divide_no_nan(masks - low, high - low)
        logits, _ = capture.run_graph(model_ref(), images * masks, logits=True)
        return tf.cast(logits, tf.float32)

    return run


def class_count(model, output=None):
    """Number of classes of a classifier output (N, classes).

    Args:
        model: a built Keras model.
        output: which output (a name or an index); needed when the model has several.

    Returns:
        The size of that output's last axis.

    Raises:
        ValueError: for a model with several outputs and no ``output`` (the message names
            them), or an output that is not (N, classes).

    Example:
        >>> class_count(keras.applications.VGG16(weights=None))
        1000
    """
    index = capture.output_index(model, output)
    shape = capture.output_shapes(model)[index]
    if len(shape) != 1 or shape[0] is None:
        name = capture.output_keys(model)[index]
        raise ValueError(
            f"Class activation maps need a classifier with one (N, classes) output; output "
            f"{name!r} of model {model.name!r} has shape {(None, *shape)}."
        )
    return shape[0]


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


def _probabilities(model, logits):
    """Class probabilities: softmax of the logits, or the outputs of a sigmoid head."""
    if capture.final_activation(model) == "sigmoid":
        return logits
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)


def _cam_layer(model, layer):
    """Resolve ``layer`` (None: the last layer with a 4-D output) to a path."""
    if layer is not None:
        return capture.resolve_layer(model, layer).path
    conv = capture.conv_layers(model)
    if not conv:
        raise ValueError(f"Model {model.name!r} has no layer with a (h, w, channels) output.")
    return conv[-1]


def cam_details(
    model, images, layer=None, class_index=None, method="gradcam", *, max_channels=None
):
    """Class activation maps with class, probabilities and raw strength per image.

    See the module docstring for the methods and papers. Class scores are the logits:
    a final softmax is skipped; probabilities are the model's outputs (softmax of the
    logits; for a model without a final softmax, the softmax of its outputs; for a sigmoid
    head, its outputs). Images whose map is not finite get a zero map and a warning.

    Args:
        model: a built Keras 3 classifier with one (N, classes) output.
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input scale.
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output; None: the
            last such layer.
        class_index: None (the predicted class), an int, or one int per image.
        method: "gradcam", "gradcam++" or "scorecam".
        max_channels: Score-CAM only: use at most this many channels per image, those whose
            activations vary most (tf-keras-vis's "Faster Score-CAM"); None: all.

    Returns:
        A ``CamResult``.

    Raises:
        ValueError: unknown method or layer, a layer without a 4-D output, images of the
            wrong shape, a model without one (N, classes) output, class_index out of range.

    Example:
        >>> details = cam_details(model, images, "conv2", method="scorecam")
        >>> details.maps.shape, details.class_index, details.target_probability
    """
    if method not in _WEIGHTS:
        raise ValueError(f"Unknown method {method!r}; expected one of {list(METHODS)}.")
    if max_channels is not None and (not isinstance(max_channels, int) or max_channels < 1):
        raise ValueError(f"max_channels must be None or a positive int; got {max_channels!r}.")
    path = _cam_layer(model, layer)
    batch = capture.check_images(model, images)
    targets = class_indices(class_index, len(batch), class_count(model))
    gradients = capture.CACHE.get(
        model, ("cam", path), lambda model_ref: _build_gradients(model_ref, path)
    )
    acts, grads, logits, target, predicted = (
        t.numpy() for t in gradients(tf.constant(batch), tf.constant(targets))
    )
    evidence = _Evidence(model, batch, acts, grads, target, path, max_channels)
    with np.errstate(invalid="ignore", over="ignore"):
        weights = _WEIGHTS[method](evidence)
        raw = np.maximum(np.einsum("nhwk,nk->nhw", acts, weights), 0.0)
    raw = capture.finite_or_zero(raw, f"{method} on {path!r}")
    upsampled = tf.image.resize(raw[..., None], batch.shape[1:3]).numpy()[..., 0]
    upsampled = np.maximum(upsampled, 0.0)
    cam_max = upsampled.max(axis=(1, 2))
    maps = upsampled / np.where(cam_max > 0, cam_max, 1.0)[:, None, None]
    probabilities = _probabilities(model, logits)
    rows = np.arange(len(batch))
    return CamResult(
        maps=maps.astype(np.float32),
        cam_max=cam_max.astype(np.float32),
        class_index=target.astype(np.int32),
        predicted=predicted.astype(np.int32),
        probability=probabilities[rows, predicted].astype(np.float32),
        target_probability=probabilities[rows, target].astype(np.float32),
        layer=path,
        method=method,
    )


def grad_cam(model, images, layer=None, class_index=None, method="gradcam", *, max_channels=None):
    """Class activation maps (Grad-CAM, Grad-CAM++ or Score-CAM) at input resolution.

    Selvaraju et al. 2017 (Grad-CAM), Chattopadhyay et al. 2018 (Grad-CAM++), Wang et al.
    2020 (Score-CAM); see the module docstring. The class score is the logit: when the
    model ends in a softmax, the score before the softmax is used. The map is ReLU'd,
    upsampled bilinearly and divided by its maximum per image (a zero map stays zero).

    Args:
        model: a built Keras 3 classifier with one (N, classes) output.
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input scale.
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output; None: the
            last such layer.
        class_index: None (the predicted class), an int, or one int per image.
        method: "gradcam", "gradcam++" or "scorecam".
        max_channels: Score-CAM only: at most this many channels (largest variance) per image.

    Returns:
        float32 numpy array (N, H, W) in [0, 1].

    Raises:
        ValueError: see ``cam_details``.

    Example:
        >>> import tb_cnnvis as cv
        >>> cv.grad_cam(model, images, "conv2", class_index=3, method="gradcam++").shape
        (4, 32, 32)
    """
    return cam_details(model, images, layer, class_index, method, max_channels=max_channels).maps

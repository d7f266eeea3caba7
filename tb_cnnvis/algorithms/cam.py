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

from tb_cnnvis import capture
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
    """

    maps: np.ndarray
    cam_max: np.ndarray
    class_index: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    target_probability: np.ndarray
    layer: str
    method: str


def _build_gradients(model_ref, path, output=0):
    """Activations of ``path``, d logit / d activations, logits, target and predicted class."""

    def run(images, class_index, side):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            outputs, taps = capture.run_graph(
                model_ref(), images, side=side, taps=[path], logits=True
            )
            logits = tf.cast(capture.select_output(outputs, output), tf.float32)
            acts = taps[path]
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            target = tf.where(class_index < 0, predicted, class_index)
            score = tf.reduce_sum(tf.gather(logits, target, axis=1, batch_dims=1))
        grads = tape.gradient(score, acts)
        if grads is None:
            grads = tf.zeros_like(acts)
        return tf.cast(acts, tf.float32), tf.cast(grads, tf.float32), logits, target, predicted

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


def probabilities_of(model, logits, output=0):
    """Class probabilities from ``run_graph(..., logits=True)`` outputs (N, classes).

    The softmax of the logits, or, for a sigmoid head (whose outputs are kept), the outputs.

    Example:
        >>> probabilities_of(model, np.array([[2.0, 0.0]])).round(2)
        array([[0.88, 0.12]])
    """
    if capture.final_activation(model, output) == "sigmoid":
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
    model,
    images,
    layer=None,
    class_index=None,
    method="gradcam",
    *,
    max_channels=None,
    output=None,
    image_input=None,
):
    """Class activation maps with class, probabilities and raw strength per image.

    See the module docstring for the methods and papers. Class scores are the logits:
    a final softmax is skipped; probabilities are the model's outputs (softmax of the
    logits; for a model without a final softmax, the softmax of its outputs; for a sigmoid
    head, its outputs). Images whose map is not finite get a zero map and a warning.

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them (the other
            inputs are held at each image's values; maps are for the image input).
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output; None: the
            last such layer.
        class_index: None (the predicted class), an int, or one int per image.
        method: one of ``METHODS``: "gradcam", "gradcam++", "xgradcam", "scorecam",
            "layercam", "hirescam" or "eigencam" (class-agnostic; see the module docstring).
        max_channels: Score-CAM only: use at most this many channels per image, those whose
            activations vary most (tf-keras-vis's "Faster Score-CAM"); None: all.
        output: the output whose class scores are explained: a name, a dict key or an
            index; needed when the model has several outputs.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A ``CamResult``.

    Raises:
        ValueError: unknown method or layer, a layer without a 4-D output, images of the
            wrong shape, an output that is not (N, classes) (or several outputs and no
            ``output``: the message names them), class_index out of range.

    Example:
        >>> details = cam_details(model, images, "conv2", method="scorecam")
        >>> details.maps.shape, details.class_index, details.target_probability
    """
    if method not in cam_methods.MAPS:
        raise ValueError(f"Unknown method {method!r}; expected one of {list(METHODS)}.")
    if max_channels is not None and (not isinstance(max_channels, int) or max_channels < 1):
        raise ValueError(f"max_channels must be None or a positive int; got {max_channels!r}.")
    path = _cam_layer(model, layer)
    batch, side = capture.split_images(model, images, image_input=image_input)
    index = capture.output_index(model, output)
    targets = class_indices(class_index, len(batch), class_count(model, index))
    gradients = capture.CACHE.get(
        model, ("cam", path, index), lambda model_ref: _build_gradients(model_ref, path, index)
    )
    acts, grads, logits, target, predicted = (
        t.numpy()
        for t in gradients(tf.constant(batch), tf.constant(targets), capture.side_constants(side))
    )
    evidence = cam_methods.Evidence(
        model, batch, acts, grads, target, path, max_channels, side, index
    )
    with np.errstate(invalid="ignore", over="ignore"):
        raw = np.maximum(cam_methods.MAPS[method](evidence), 0.0)
    raw = capture.finite_or_zero(raw, f"{method} on {path!r}")
    upsampled = tf.image.resize(raw[..., None], batch.shape[1:3]).numpy()[..., 0]
    upsampled = np.maximum(upsampled, 0.0)
    cam_max = upsampled.max(axis=(1, 2))
    maps = upsampled / np.where(cam_max > 0, cam_max, 1.0)[:, None, None]
    probabilities = probabilities_of(model, logits, index)
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


def grad_cam(
    model,
    images,
    layer=None,
    class_index=None,
    method="gradcam",
    *,
    max_channels=None,
    output=None,
    image_input=None,
):
    """Class activation maps (Grad-CAM and its variants) at input resolution.

    Selvaraju et al. 2017 (Grad-CAM), Chattopadhyay et al. 2018 (Grad-CAM++), Fu et al.
    2020 (XGrad-CAM), Wang et al. 2020 (Score-CAM), Jiang et al. 2021 (LayerCAM), Draelos &
    Carin 2020 (HiResCAM), Muhammad & Yeasin 2020 (Eigen-CAM, class-agnostic); see the
    module docstring and ``cam_methods``. The class score is the logit: when the model ends
    in a softmax, the score before the softmax is used. The map is ReLU'd, upsampled
    bilinearly and divided by its maximum per image (a zero map stays zero).

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them.
        layer: name or ``"outer/inner"`` path of a layer with a (h, w, K) output; None: the
            last such layer.
        class_index: None (the predicted class), an int, or one int per image; ignored by
            "eigencam".
        method: "gradcam", "gradcam++", "xgradcam", "scorecam", "layercam", "hirescam" or
            "eigencam".
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
    """
    return cam_details(
        model,
        images,
        layer,
        class_index,
        method,
        max_channels=max_channels,
        output=output,
        image_input=image_input,
    ).maps

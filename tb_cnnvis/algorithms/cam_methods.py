"""The CAM methods: each one is the function that turns a layer's evidence into a raw map.

``cam.cam_details`` is the template: it runs the model once for the activations ``A``
(N, h, w, K) of a layer and the gradients ``g = d score / d A`` of the target's score
(``tb_cnnvis.targets``: a class's logit, a binary head's signed logit, a regression value,
a segmentation class's logits over its mask), hands both to the method's function here, and then does what every method shares
(ReLU, bilinear upsampling to the input size, scaling to [0, 1] per image). A method is
one entry of ``MAPS``: a function ``Evidence -> raw (N, h, w) map`` before the ReLU.
Methods with one weight per channel (``map = sum_k w_k A_k``) are written as their
weighting function wrapped by ``channel_weighted``; element-wise methods and Eigen-CAM
give the map directly.

Channel weights:

- ``"gradcam"``: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", ICCV 2017: ``w_k`` = the spatial mean of ``g_k``.
- ``"gradcam++"``: Chattopadhyay et al., "Grad-CAM++: Improved Visual Explanations for Deep
  Convolutional Networks", WACV 2018: a pixel-weighted sum of the positive gradients.
- ``"xgradcam"``: Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and
  Explanation of CNNs", BMVC 2020: ``w_k = sum(g_k * A_k) / sum(A_k)``.
- ``"scorecam"``: Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
  Convolutional Neural Networks", CVPR Workshops 2020: no gradients; each channel,
  upsampled and scaled to [0, 1], masks the input, and the softmax over channels of the
  class scores of the masked inputs gives the weights. K forward passes per image, batched.

Element-wise maps:

- ``"layercam"``: Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for
  Localization", IEEE TIP 2021: ``sum_k ReLU(g_k) * A_k`` pixel by pixel, which keeps the
  fine detail of shallow layers that Grad-CAM's averaged weights wash out.
- ``"hirescam"``: Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful
  explanations of convolutional neural networks", arXiv 2011.08891, 2020:
  ``sum_k g_k * A_k`` pixel by pixel. When the head is global average pooling and a dense
  layer the gradient is constant over space and HiResCAM equals Grad-CAM.

Without gradients or class:

- ``"eigencam"``: Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal
  Components", IJCNN 2020: the activations as an (h*w, K) matrix, not centred, projected on
  their first right singular vector; the sign is chosen so that the projection sums to a
  positive value. It does not depend on the class: it shows what the layer finds salient.

Example:
    >>> raw = MAPS["layercam"](evidence)          # (N, h, w), before the template's ReLU
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture

SCORE_CAM_BATCH = 32
"""Most masked images one Score-CAM forward pass takes."""


class Evidence(NamedTuple):
    """What a method may use: activations, gradients, and the means to run the model again.

    Attributes:
        model: the model (Score-CAM runs it on masked inputs).
        images: float32 (N, H, W, C), the checked batch.
        acts: float32 (N, h, w, K), the layer's activations.
        grads: float32 (N, h, w, K), d score of the target / d activations.
        target: the ``targets.Bound`` explained, its classes (and a segmentation's mask)
            held at what the images chose (``targets.fix``).
        path: the layer's path.
        max_channels: Score-CAM's channel budget per image, or None.
        side: the model's other inputs for these images (None for a one-input model).
        output: the index of the output explained (``capture.output_index``).
    """

    model: object
    images: np.ndarray
    acts: np.ndarray
    grads: np.ndarray
    target: object
    path: str
    max_channels: int | None
    side: dict | None = None
    output: int = 0


def channel_weighted(weights):
    """The map function ``sum_k w_k A_k`` of a channel-weighting function ``ev -> (N, K)``."""

    def raw_map(ev):
        return np.einsum("nhwk,nk->nhw", ev.acts, weights(ev))

    raw_map.__doc__ = weights.__doc__
    return raw_map


def _gradcam_weights(ev):
    """Grad-CAM: global-average-pooled gradients."""
    return ev.grads.mean(axis=(1, 2))


def _gradcam_pp_weights(ev):
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19 with the exponential score)."""
    g2, g3 = ev.grads**2, ev.grads**3
    denominator = 2.0 * g2 + ev.acts.sum(axis=(1, 2), keepdims=True) * g3
    alpha = g2 / np.where(denominator != 0.0, denominator, 1.0)
    return (alpha * np.maximum(ev.grads, 0.0)).sum(axis=(1, 2))


def _xgradcam_weights(ev):
    """XGrad-CAM (Fu et al. 2020): gradients averaged with the activations as weights."""
    total = ev.acts.sum(axis=(1, 2))
    weighted = (ev.grads * ev.acts).sum(axis=(1, 2))
    return np.where(total != 0.0, weighted / np.where(total != 0.0, total, 1.0), 0.0)


def _scorecam_weights(ev):
    """Score-CAM: softmax over channels of the target's score for each channel-masked input."""
    n, _, _, k = ev.acts.shape
    chosen = _score_cam_channels(ev.acts, ev.max_channels)
    pairs = [(i, c) for i in range(n) for c in chosen[i]]
    batch = min(SCORE_CAM_BATCH, len(pairs))
    score = capture.CACHE.get(
        ev.model,
        ("scorecam", ev.path, ev.output, ev.target.key()),
        lambda ref: _build_masked_scores(ref, ev.output, ev.target),
    )
    scores = np.zeros(len(pairs), np.float32)
    for start in range(0, len(pairs), batch):
        part = pairs[start : start + batch]
        padded = part + [part[0]] * (batch - len(part))  # a fixed shape: no retracing
        rows, cols = (np.array(column) for column in zip(*padded))
        side = capture.side_constants(capture.take_rows(ev.side, rows))
        found = score(
            tf.constant(ev.images[rows]),
            tf.constant(ev.acts[rows, :, :, cols]),
            ev.target.tensors(rows),
            side,
        )
        scores[start : start + len(part)] = found.numpy()[: len(part)]
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


def _build_masked_scores(model_ref, output, bound):
    """The target's score of ``images`` each masked by one upsampled channel in [0, 1]."""

    def run(images, channel_maps, values, side):
        masks = tf.image.resize(channel_maps[..., None], tf.shape(images)[1:3])
        low = tf.reduce_min(masks, axis=(1, 2, 3), keepdims=True)
        high = tf.reduce_max(masks, axis=(1, 2, 3), keepdims=True)
        masks = tf.math.divide_no_nan(masks - low, high - low)
        outputs, _ = capture.run_graph(model_ref(), images * masks, side=side, logits=True)
        return bound.score(tf.cast(capture.select_output(outputs, output), tf.float32), values)

    return run


def _layercam_map(ev):
    """LayerCAM (Jiang et al. 2021): positive gradients times activations, summed."""
    return (np.maximum(ev.grads, 0.0) * ev.acts).sum(axis=-1)


def _hirescam_map(ev):
    """HiResCAM (Draelos & Carin 2020): gradients times activations element-wise, summed."""
    return (ev.grads * ev.acts).sum(axis=-1)


def _eigencam_map(ev):
    """Eigen-CAM (Muhammad & Yeasin 2020): projection on the first right singular vector."""
    n, h, w, k = ev.acts.shape
    flat = ev.acts.reshape(n, h * w, k).astype(np.float64)
    projection = np.full((n, h * w), np.nan)  # non-finite activations give a NaN map
    finite = np.isfinite(flat).all(axis=(1, 2))
    if finite.any():
        _, _, right = np.linalg.svd(flat[finite], full_matrices=False)
        found = np.einsum("npk,nk->np", flat[finite], right[:, 0, :])
        sign = np.where(found.sum(axis=1) < 0.0, -1.0, 1.0)  # an SVD's sign is arbitrary
        projection[finite] = found * sign[:, None]
    return projection.reshape(n, h, w)


MAPS = {
    "gradcam": channel_weighted(_gradcam_weights),
    "gradcam++": channel_weighted(_gradcam_pp_weights),
    "scorecam": channel_weighted(_scorecam_weights),
    "layercam": _layercam_map,
    "hirescam": _hirescam_map,
    "xgradcam": channel_weighted(_xgradcam_weights),
    "eigencam": _eigencam_map,
}
"""Every CAM method's map function, by method name (the template's only variable part)."""

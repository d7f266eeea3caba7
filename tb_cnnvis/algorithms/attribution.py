"""Class attributions in input space: SmoothGrad, integrated gradients and occlusion.

Each method explains a target's score (``tb_cnnvis.targets``: by default the predicted
class's logit; a final softmax or sigmoid is skipped, as for the CAMs) with one signed map
per image at input resolution, summed over the input channels: positive where the pixels
raise the score.

- ``"smoothgrad"``: Smilkov et al., "SmoothGrad: removing noise by adding noise", ICML
  workshop 2017: the mean input gradient over ``samples`` noisy copies of the image, the
  noise Gaussian with a standard deviation of ``noise`` times the input range (the paper
  finds 10-20 % best, with 25-50 samples). ``noise=0`` is the plain gradient.
- ``"integrated_gradients"``: Sundararajan et al., "Axiomatic Attribution for Deep
  Networks", ICML 2017: ``(x - x0)`` times the mean gradient along the straight path from
  a baseline ``x0`` to ``x``, here a midpoint Riemann sum over ``steps`` points (the paper
  uses the right sum; both converge). Completeness: the map sums to ``f(x) - f(x0)``,
  closer the more steps (the paper suggests 20 to 300 and checking this sum).
- ``"occlusion"``: Zeiler & Fergus, "Visualizing and Understanding Convolutional
  Networks", ECCV 2014: the drop of the class score when a ``patch_size`` square,
  slid with ``stride``, is replaced by a baseline (grey, as in the paper), averaged over
  the patches that cover each pixel.

All copies (noisy images, path points, occluded images) go through one compiled function
in batches of at most ``MAX_BATCH`` whose estimated working memory stays under
``BATCH_BYTES``; nothing loops over copies in Python.

Example:
    >>> maps = attribution(model, images, "integrated_gradients", steps=64)   # (N, H, W)
    >>> details = attribution_details(model, images, "smoothgrad", samples=25, noise=0.15)
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture, targets
from tb_cnnvis.algorithms import attribution_options as options_
from tb_cnnvis.algorithms import backprop, faithfulness
from tb_cnnvis.input_range import InputRange

METHODS = options_.METHODS
"""The attribution methods, by the name ``method`` takes."""

BATCH_BYTES = 256 << 20
"""Estimated working memory (forward values and gradients, float32) of one batch of copies."""

MAX_BATCH = 128
"""Most copies one compiled call takes."""


class AttributionResult(NamedTuple):
    """Class attributions with what a viewer needs to judge them (arrays have N rows).

    Attributes:
        maps: float32 (N, H, W), signed, summed over input channels, at input resolution.
        class_index: int32 (N,): the class explained.
        predicted: int32 (N,): the class with the largest score.
        probability: float32 (N,): probability of the predicted class.
        target_probability: float32 (N,): probability of the class explained.
        method: the method's name.
        settings: the method's settings as used (JSON-ready), e.g. ``{"steps": 64,
            "baseline": "low"}``.
        score: float32 (N,): the target's score on the image.
        captions: the target in words per image.
        head: the explained output's kind (``heads.HEAD_KINDS``).
        value: float32 (N,): a regression head's output value (NaN for other targets).
        masks: bool (N, h, w): a segmentation target's pixels (its mask, or the pixels
            predicted as its class), at the output's resolution; None for other targets.
    """

    maps: np.ndarray
    class_index: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    target_probability: np.ndarray
    method: str
    settings: dict
    score: np.ndarray | None = None
    captions: tuple = ()
    head: str = "softmax"
    value: np.ndarray | None = None
    masks: np.ndarray | None = None


class _Job(NamedTuple):
    """What every method gets: model, images, the target (``targets.Bound``, its classes
    fixed), the scores of the images, input range, batch size, the other inputs of a model
    with several (rows per image) and the output explained."""

    model: object
    images: np.ndarray
    target: object
    scores: np.ndarray
    input_range: InputRange
    batch: int
    side: dict | None = None
    output: int = 0


def _batches(count, size, make):
    """Yield ``(rows, inputs)``: copies ``rows`` made by ``make``, padded to ``size`` rows.

    A fixed batch shape keeps the compiled function from retracing; the padding repeats
    the first copy and its results are dropped.
    """
    size = min(size, count)
    for start in range(0, count, size):
        rows = np.arange(start, min(start + size, count))
        inputs = np.asarray(make(rows), np.float32)
        if len(rows) < size:
            inputs = np.concatenate([inputs, np.repeat(inputs[:1], size - len(rows), axis=0)])
        yield rows, inputs


def _logits(job, make, count, copies=1):
    """Logits (count, classes) of the ``count`` copies that ``make(rows)`` builds.

    Copy ``j`` belongs to image ``j // copies`` (whose side inputs it takes).
    """
    function = faithfulness.logits_function(job.model, job.output)
    parts = []
    for rows, x in _batches(count, job.batch, make):
        owner = np.concatenate([rows, np.full(len(x) - len(rows), rows[0])]) // copies
        side = capture.take_rows(job.side, owner)
        parts.append(faithfulness.call_any_rows(function, x, side)[: len(rows)])
    return np.concatenate(parts)


def _gradient_sums(job, copies, make):
    """Per image, the sum of the class-score gradients of its ``copies`` copies (N, H, W, C).

    Copy ``j`` (made by ``make``) belongs to image ``j // copies``.
    """
    total = np.zeros(job.images.shape, np.float32)
    for rows, inputs in _batches(len(job.images) * copies, job.batch, make):
        owner = rows // copies
        padded = np.concatenate([owner, np.full(len(inputs) - len(rows), owner[0])])
        grads = backprop.class_gradient(
            job.model,
            inputs,
            job.target,
            rule="gradient",
            side=capture.take_rows(job.side, padded),
            output=job.output,
            rows=padded,
        )
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # owners are sorted
        total[owner[starts]] += np.add.reduceat(grads[: len(rows)], starts, axis=0)
    return total


def _smoothgrad(job, samples, noise, seed):
    """SmoothGrad: the mean gradient over noisy copies, summed over channels."""
    low, high = job.input_range.bounds(job.images.shape[-1])
    sigma = (noise * (high - low)).astype(np.float32)
    copies = samples if noise > 0 else 1  # without noise every copy is the image
    rng = np.random.default_rng(seed)  # drawn in copy order: the same for any batch size

    def make(rows):
        images = job.images[rows // copies]
        return images + rng.standard_normal(images.shape, dtype=np.float32) * sigma

    return (_gradient_sums(job, copies, make) / copies).sum(axis=-1)


def _integrated_gradients(job, steps, baseline):
    """Integrated gradients: (x - x0) times the mean gradient on the path, summed over channels."""
    base = options_.baseline_images(
        baseline, job.images, job.input_range, options_.DEFAULT_BASELINE["integrated_gradients"]
    )
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)

    def make(rows):
        image, alpha = rows // steps, alphas[rows % steps][:, None, None, None]
        return base[image] + alpha * (job.images[image] - base[image])

    mean_gradient = _gradient_sums(job, steps, make) / steps
    return ((job.images - base) * mean_gradient).sum(axis=-1)


def _occlusion(job, patch_size, stride, baseline):
    """Occlusion: the class score's drop per patch, averaged over the patches on each pixel."""
    count, height, width, _ = job.images.shape
    base = options_.baseline_images(
        baseline, job.images, job.input_range, options_.DEFAULT_BASELINE["occlusion"]
    )
    corners = np.array(
        [
            (top, left)
            for top in _starts(height, patch_size, stride)
            for left in _starts(width, patch_size, stride)
        ]
    )
    places = len(corners)
    rows_of, cols_of = np.arange(height)[None, :, None], np.arange(width)[None, None, :]

    def make(rows):
        image = rows // places
        top, left = (corners[rows % places, axis][:, None, None] for axis in (0, 1))
        inside = (rows_of >= top) & (rows_of < top + patch_size)
        inside = inside & (cols_of >= left) & (cols_of < left + patch_size)
        return np.where(inside[..., None], base[image], job.images[image])

    logits = _logits(job, make, count * places, copies=places)
    owner = np.arange(count * places) // places
    occluded = job.target.score(tf.constant(logits), job.target.tensors(owner)).numpy()
    drops = (job.scores[owner] - occluded).reshape(count, places)
    total = np.zeros((count, height, width), np.float64)
    covered = np.zeros((height, width), np.float64)
    for place, (top, left) in enumerate(corners):
        window = (slice(None), slice(top, top + patch_size), slice(left, left + patch_size))
        total[window] += drops[:, place, None, None]
        covered[window[1:]] += 1.0
    return total / covered


def _starts(size, patch, stride):
    """Patch starts along one axis: every ``stride``, the last one flush with the edge."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


_FUNCTIONS = {
    "smoothgrad": _smoothgrad,
    "integrated_gradients": _integrated_gradients,
    "occlusion": _occlusion,
}


def _batch_size(model, images):
    """Copies per batch so that the estimated working memory stays under ``BATCH_BYTES``."""
    floats = float(np.prod(images.shape[1:]))
    for ref in capture.layer_refs(model):
        shape = ref.output_shape
        if shape and all(d is not None for d in shape):
            floats += float(np.prod(shape))
    per_copy = 3 * 4 * floats  # values, their gradients and the ReLU masks
    return int(max(1, min(MAX_BATCH, BATCH_BYTES // per_copy)))


def attribution_details(
    model,
    images,
    method,
    class_index=None,
    *,
    target=None,
    output=None,
    image_input=None,
    class_names=None,
    **options,
):
    """Class attributions with the classes and probabilities, per image.

    See the module docstring for the methods, their papers and their options.

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them (the other
            inputs are held at each image's values; maps are for the image input).
        method: "smoothgrad", "integrated_gradients" or "occlusion".
        class_index: None (the predicted class), an int, or one int per image.
        target: a ``targets.Target`` or a callable ``logits -> (N,)``; None: ``class_index``'s.
        output: the output explained (a name, dict key or index); needed with several.
        image_input: the image input's name, when the model has several 4-D inputs.
        class_names: names for the captions.
        **options: the method's options: ``samples`` (25), ``noise`` (0.15), ``seed`` (0)
            for SmoothGrad; ``steps`` (64), ``baseline`` (the low end of the input range)
            for integrated gradients; ``patch_size`` (1/8 of the smaller side), ``stride``
            (half the patch), ``baseline`` (the middle of the input range) for occlusion.
            For all: ``input_range`` (the model's input scale, ``InputRange`` or a name:
            noise and default baselines are relative to it; None: [0, 1], or [0, 255] for
            a model starting with ``Rescaling(1/255)``) and ``batch_size`` (copies per
            compiled call; None: from ``BATCH_BYTES``). A baseline is a number, one value
            per channel, one image (H, W, C) or one per image (N, H, W, C).

    Returns:
        An ``AttributionResult``.

    Raises:
        ValueError: an unknown method or option, options that make no sense (``steps``,
            ``samples``, ``patch_size`` or ``stride`` out of range, a negative noise),
            a baseline of the wrong shape, images of the wrong shape, a target that cannot
            explain the output or a class out of range (the message says what fits).

    Example:
        >>> details = attribution_details(model, images, "occlusion", patch_size=8)
        >>> details.maps.shape, details.class_index, details.settings
        ((4, 64, 64), array([2, 0, 1, 1], dtype=int32), {'patch_size': 8, 'stride': 4, ...})
    """
    options_.check_method(method)
    batch, side = capture.split_images(model, images, image_input=image_input)
    index = capture.output_index(model, output)
    settings = options_.resolve(method, options, batch.shape)
    bound = targets.bind(model, index, len(batch), target, class_index)
    input_range = InputRange.resolve(settings.pop("input_range"), model)
    input_range.bounds(batch.shape[-1])
    size = settings.pop("batch_size") or _batch_size(model, batch)
    first = _Job(model, batch, bound, None, input_range, size, side, index)
    logits = _logits(first, lambda rows: batch[rows], len(batch))
    found = targets.outcome(bound, logits, class_names)
    job = first._replace(target=targets.fix(bound, logits), scores=found.score)
    with np.errstate(invalid="ignore", over="ignore"):
        maps = _FUNCTIONS[method](job, **settings)
    maps = capture.finite_or_zero(maps, f"{method} attribution")
    return AttributionResult(
        maps=maps.astype(np.float32),
        class_index=found.class_index,
        predicted=found.predicted,
        probability=found.probability,
        target_probability=found.target_probability,
        method=method,
        settings=options_.describe(method, settings),
        score=found.score,
        captions=found.captions,
        head=bound.head.kind,
        value=found.value,
        masks=found.masks,
    )


def attribution(
    model,
    images,
    method,
    class_index=None,
    *,
    target=None,
    output=None,
    image_input=None,
    **options,
):
    """Signed class attributions at input resolution: SmoothGrad, integrated gradients, occlusion.

    Smilkov et al. 2017 (SmoothGrad), Sundararajan et al. 2017 (integrated gradients),
    Zeiler & Fergus 2014 (occlusion); see the module docstring. The class score is the
    logit (a final softmax is skipped). Maps are summed over the input channels and not
    normalized: positive where the pixels raise the class score.

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``).
        images: float32 array (N, H, W, C) or one image (H, W, C), in the model's input
            scale; for a model with several inputs a dict or list of them.
        method: "smoothgrad", "integrated_gradients" or "occlusion".
        class_index: None (the predicted class), an int, or one int per image.
        target: a ``targets.Target`` or a callable ``logits -> (N,)``; None: ``class_index``'s.
        output: the output explained (a name, dict key or index); needed with several.
        image_input: the image input's name, when the model has several 4-D inputs.
        **options: ``samples``, ``noise``, ``seed`` (SmoothGrad); ``steps``, ``baseline``
            (integrated gradients); ``patch_size``, ``stride``, ``baseline`` (occlusion);
            ``input_range``, ``batch_size`` (all); see ``attribution_details``.

    Returns:
        float32 numpy array (N, H, W), signed.

    Raises:
        ValueError: see ``attribution_details``.

    Example:
        >>> import tb_cnnvis as cv
        >>> maps = cv.attribution(model, images, "integrated_gradients", steps=64)
        >>> maps.sum(axis=(1, 2))        # close to f(x) - f(baseline), per image
    """
    choice = {"target": target, "output": output, "image_input": image_input}
    return attribution_details(model, images, method, class_index, **choice, **options).maps

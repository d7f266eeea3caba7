"""Is a saliency map faithful to the model? Deletion / insertion AUC and the pointing game.

- Deletion and insertion (Petsiuk et al., "RISE: Randomized Input Sampling for Explanation
  of Black-box Models", BMVC 2018): remove the pixels the map calls most important first
  and watch the class probability fall; a faithful map makes it fall fast, so a low area
  under the curve (AUC) is good. Insertion starts from a baseline image and puts the most
  important pixels back first; there a high AUC is good. A random map (seeded) gives the
  reference value a map has to beat.
- Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV
  2016): a hit when the map's maximum lies on the object (within a tolerance, 15 px in the
  paper); the score is the fraction of hits.

Removed pixels are replaced by a baseline image: ``"blur"`` (a Gaussian blur of the image,
sigma = 1/16 of its larger side; Petsiuk et al. start insertion from a blurred image),
``"mean"`` (each image's per-channel mean), ``"zero"``, or an array. The blur is the
default because flat patches are themselves strong evidence against most classes: on the
demo CNN (Grad-CAM at ``conv4``, 32 shapes) the mean baseline gives deletion AUCs of 0.18
for Grad-CAM and 0.22 for a random map, the blur 0.23 and 0.54. Every step of every
image is evaluated in batches through one compiled function: the probability of the
target's class (``tb_cnnvis.targets``: a softmax class, a sigmoid label, a binary head's
p or 1 - p, a segmentation class's mean probability over its pixels), the class (and a
segmentation's pixels) held at what the unaltered image chose.

Example:
    >>> scores = faithfulness_scores(model, images, grad_cam(model, images))
    >>> scores.means()["deletion_auc"] < scores.means()["deletion_auc_random"]
    True
    >>> pointing_game(maps, masks, tolerance=2).accuracy
    0.875
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture, heads, targets

BASELINES = ("blur", "mean", "zero")


def _build_logits(model_ref, output):
    """The explained output's logits of a batch (a final softmax or sigmoid skipped)."""

    def run(images, side):
        outputs, _ = capture.run_graph(model_ref(), images, side=side, logits=True)
        return tf.cast(capture.select_output(outputs, output), tf.float32)

    return run


def _batched(function, images, batch_size, side):
    """``call_any_rows(function, images[rows], side[rows])`` over batches, concatenated."""
    parts, size = [], min(int(batch_size), len(images))
    for start in range(0, len(images), size):
        rows = np.arange(start, min(start + size, len(images)))
        parts.append(call_any_rows(function, images[rows], capture.take_rows(side, rows)))
    return np.concatenate(parts)


def call_any_rows(function, images, side):
    """``function(images, side)`` as a numpy array, ``function`` traced once for any number
    of rows (the batch dimension left unknown).

    Every caller of the shared logits function goes through here: the probes' logits, the
    deletion curves' batches, the class ranking and the attributions' scores then share
    one trace, a whole-model trace fewer at the first logged step.
    """
    args = (tf.constant(images), capture.side_constants(side))
    function.get_concrete_function(*tf.nest.map_structure(_any_rows, args))
    return function(*args).numpy()


def _any_rows(tensor):
    """The ``tf.TensorSpec`` of ``tensor`` with any number of rows (None stays None)."""
    return None if tensor is None else tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype)


def logits_function(model, output=0):
    """The compiled ``(images, side) -> logits`` of output ``output``, built once per model
    and output (shared by the attributions, the deletion curves and the class ranking;
    call it through ``call_any_rows``)."""
    return capture.CACHE.get(model, ("logits", output), lambda ref: _build_logits(ref, output))


def output_logits(model, images, batch_size=64, *, side=None, output=0):
    """The explained output's logits for ``images`` (N, ...), in batches.

    ``side`` holds the model's other inputs for these rows (or None); ``output`` is the
    index of the output explained (``capture.output_index``).
    """
    return _batched(logits_function(model, output), images, batch_size, side)


def class_probabilities(model, images, batch_size=64, *, side=None, output=0):
    """Probabilities of every class for ``images`` (N, classes), in batches.

    As ``heads.class_probabilities``: a softmax head's softmax, a sigmoid head's per-label
    sigmoids, a binary head's ``(1 - p, p)``, a segmentation head's share of pixels per
    class. Raises ``ValueError`` for a head without classes.
    """
    head = heads.head_of(model, output)
    logits = output_logits(model, images, batch_size, side=side, output=output)
    found = heads.class_probabilities(head, logits)
    if found is None:
        raise ValueError(f"No class probabilities: {head.describe()}.")
    return found


def gaussian_blur(images, sigma):
    """Blur (N, H, W, C) images with a Gaussian of ``sigma`` pixels (edges reflected)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = np.asarray(images, np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="symmetric")
        size = out.shape[axis]
        out = sum(w * np.take(padded, range(i, i + size), axis=axis) for i, w in enumerate(taps))
    return out.astype(np.float32)


def baseline_images(images, baseline="blur"):
    """The images that removed pixels are replaced with (see the module docstring)."""
    if isinstance(baseline, str):
        if baseline == "blur":
            return gaussian_blur(images, max(images.shape[1:3]) / 16)
        if baseline == "mean":
            return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape)
        if baseline == "zero":
            return np.zeros_like(images)
        raise ValueError(
            f"Unknown baseline {baseline!r}; expected one of {list(BASELINES)} or an array."
        )
    values = np.asarray(baseline, np.float32)
    try:
        return np.broadcast_to(values, images.shape)
    except ValueError:
        raise ValueError(
            f"baseline array of shape {values.shape} does not fit images of shape {images.shape}."
        ) from None


def _saliency(maps, images):
    """(N, H, W) maps at image resolution; (N, H, W, C) maps reduce to max |value| over C."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 4:
        maps = np.abs(maps).max(axis=-1)
    if maps.ndim != 3 or len(maps) != len(images):
        raise ValueError(
            f"maps must have shape (N, h, w) or (N, h, w, C) with N = {len(images)} images; "
            f"got {maps.shape}."
        )
    if maps.shape[1:] != images.shape[1:3]:
        maps = tf.image.resize(maps[..., None], images.shape[1:3]).numpy()[..., 0]
    return np.nan_to_num(maps, nan=-np.inf)


def deletion_curves(
    model,
    images,
    maps,
    class_index=None,
    *,
    target=None,
    steps=16,
    baseline="blur",
    insertion=False,
    batch_size=64,
    output=None,
    image_input=None,
):
    """Probability of the class as the most salient pixels are removed (or inserted) first.

    Petsiuk et al., "RISE", BMVC 2018. At step ``t`` of ``steps`` the ``round(t / steps *
    H * W)`` highest pixels of the map (ties: earlier pixel first) are replaced by the
    baseline image (deletion), or are the only ones taken from the image (insertion).

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``).
        images: float32 array (N, H, W, C), in the model's input scale (for a model with
            several inputs, a dict or list of them: the other inputs are held fixed).
        maps: saliency maps (N, h, w) or (N, h, w, C) (reduced to max |value| over C);
            resized bilinearly to (H, W) if needed.
        class_index: None (the class predicted for the unaltered image), an int, or one per
            image.
        target: a ``targets.Target`` with a class probability (``Class``, ``Binary``,
            ``Segmentation``: its class's mean probability over the pixels it sums);
            None: ``class_index``'s. Its class (and mask) are held at the unaltered image's.
        steps: number of steps (the curve has ``steps + 1`` points).
        baseline: "blur", "mean", "zero" or an array broadcastable to the images.
        insertion: start from the baseline and insert pixels instead.
        batch_size: images per forward pass.
        output: the output whose class scores are explained (a name or an index); needed
            when the model has several.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        ``(fractions (steps + 1,), probabilities (N, steps + 1), class_index (N,))``.

    Raises:
        ValueError: wrong shapes, an unknown baseline, ``steps < 1``, a target without a
            class probability (a regression or a callable: deletion needs a probability).

    Example:
        >>> fractions, curves, classes = deletion_curves(model, images, maps, steps=16)
    """
    batch, side = capture.split_images(model, images, image_input=image_input)
    index = capture.output_index(model, output)
    bound = targets.bind(model, index, len(batch), target, class_index)
    held = targets.fix(bound, output_logits(model, batch, batch_size, side=side, output=index))
    curves = _curves(model, batch, side, index, held, maps, steps, baseline, insertion, batch_size)
    return (*curves, held.values.get("index", np.full(len(batch), -1, np.int32)))


def _curves(model, batch, side, index, held, maps, steps, baseline, insertion, batch_size):
    """``(fractions, probabilities (N, steps + 1))`` of ``held`` (a fixed ``targets.Bound``)."""
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1; got {steps}.")
    if not held.target.has_probability(held.head):
        raise ValueError(
            f"Deletion and insertion follow a class probability; the target {held.target!r} "
            "has none (use a class, binary or segmentation target)."
        )
    saliency = _saliency(maps, batch)
    base = baseline_images(batch, baseline)
    logits = logits_function(model, index)
    pixels = saliency[0].size
    counts = np.round(np.linspace(0, pixels, int(steps) + 1)).astype(int)
    per_chunk = min(max(1, int(batch_size) // len(counts)), len(batch))
    curves = np.zeros((len(batch), len(counts)), np.float32)
    for start in range(0, len(batch), per_chunk):
        rows = np.arange(start, min(start + per_chunk, len(batch)))
        order = np.argsort(-saliency[rows].reshape(len(rows), -1), axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(pixels)[None], axis=1)
        removed = rank[:, None, :] < counts[None, :, None]  # (rows, steps + 1, pixels)
        removed = removed.reshape(len(rows), len(counts), *batch.shape[1:3], 1)
        first, second = (base, batch) if insertion else (batch, base)
        variants = np.where(removed, second[rows, None], first[rows, None])
        owner = np.repeat(rows, len(counts))
        images = variants.reshape(-1, *batch.shape[1:]).astype(np.float32)
        found = _batched(logits, images, batch_size, capture.take_rows(side, owner))
        # The class probability from the logits, outside the compiled forward (cheap).
        found = held.target.probability(tf.constant(found), held.tensors(owner), held.head)
        curves[rows] = np.asarray(found).reshape(len(rows), len(counts))
    return counts / pixels, curves


def curve_auc(fractions, curves):
    """Area under each curve (rows of ``curves``) over ``fractions``, by the trapezoid rule."""
    curves = np.asarray(curves, np.float64)
    widths = np.diff(np.asarray(fractions, np.float64))
    return ((curves[..., 1:] + curves[..., :-1]) / 2 * widths).sum(axis=-1)


class FaithfulnessScores(NamedTuple):
    """Per-image AUCs of the map and of a random map (arrays (N,); insertion may be None)."""

    deletion: np.ndarray
    deletion_random: np.ndarray
    insertion: np.ndarray | None
    insertion_random: np.ndarray | None
    class_index: np.ndarray

    def means(self):
        """The scalars to log: mean AUCs over images, keyed ``"deletion_auc"``, ... ."""
        named = {
            "deletion_auc": self.deletion,
            "deletion_auc_random": self.deletion_random,
            "insertion_auc": self.insertion,
            "insertion_auc_random": self.insertion_random,
        }
        return {key: float(np.mean(value)) for key, value in named.items() if value is not None}


def faithfulness_scores(
    model,
    images,
    maps,
    class_index=None,
    *,
    target=None,
    steps=16,
    baseline="blur",
    insertion=True,
    seed=0,
    batch_size=64,
    output=None,
    image_input=None,
):
    """Deletion (and insertion) AUC of ``maps`` and of a seeded random map, per image.

    Petsiuk et al., "RISE", BMVC 2018; see ``deletion_curves``. Deletion: lower is more
    faithful; insertion: higher is more faithful. The random map (uniform noise drawn with
    ``seed``, the same every call) gives the value to beat.

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``).
        images: float32 array (N, H, W, C), in the model's input scale (for a model with
            several inputs, a dict or list of them).
        maps: saliency maps (N, h, w) or (N, h, w, C).
        class_index: None (the predicted class), an int, or one per image.
        target: a ``targets.Target`` with a class probability; None: ``class_index``'s
            (see ``deletion_curves``).
        steps: points per curve minus one.
        baseline: "blur", "mean", "zero" or an array (see the module docstring).
        insertion: also compute insertion AUCs (doubles the cost).
        seed: seed of the random map.
        batch_size: images per forward pass.
        output: the output explained (a name or an index); needed with several outputs.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A ``FaithfulnessScores``; ``.means()`` gives the scalars to log.

    Raises:
        ValueError: see ``deletion_curves``.

    Example:
        >>> scores = faithfulness_scores(model, images, grad_cam(model, images), steps=16)
        >>> scores.means()
        {'deletion_auc': 0.12, 'deletion_auc_random': 0.41, 'insertion_auc': ...}
    """
    batch, side = capture.split_images(model, images, image_input=image_input)
    index = capture.output_index(model, output)
    bound = targets.bind(model, index, len(batch), target, class_index)
    held = targets.fix(bound, output_logits(model, batch, batch_size, side=side, output=index))
    noise = np.random.default_rng(seed).random(batch.shape[:3], dtype=np.float32)
    results = {}
    for name, saliency in (("", maps), ("_random", noise)):
        for mode in ("deletion", "insertion") if insertion else ("deletion",):
            insert = mode == "insertion"
            fractions, curves = _curves(
                model, batch, side, index, held, saliency, steps, baseline, insert, batch_size
            )
            results[mode + name] = curve_auc(fractions, curves).astype(np.float32)
    return FaithfulnessScores(
        deletion=results["deletion"],
        deletion_random=results["deletion_random"],
        insertion=results.get("insertion"),
        insertion_random=results.get("insertion_random"),
        class_index=held.values.get("index", np.full(len(batch), -1, np.int32)),
    )


class PointingGame(NamedTuple):
    """Pointing-game outcome: ``hits`` (N,) bool, ``points`` (N, 2) (y, x), ``accuracy``."""

    hits: np.ndarray
    points: np.ndarray
    accuracy: float


def pointing_game(maps, masks, tolerance=0.0):
    """Zhang et al.'s pointing game: does each map's maximum lie on the object?

    Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016: a hit
    when the maximum of the map is within ``tolerance`` pixels (Euclidean) of the object's
    mask (the paper uses 15 px on ~224 px images). A constant map has no maximum and counts
    as a miss; among equal maxima the first (row-major) is used.

    Args:
        maps: saliency maps (N, h, w) or (N, h, w, C) (reduced to max |value| over C);
            resized bilinearly to the masks' size if needed.
        masks: object masks (N, H, W), nonzero on the object.
        tolerance: distance in mask pixels within which a maximum still counts as a hit.

    Returns:
        A ``PointingGame``.

    Raises:
        ValueError: wrong shapes, negative tolerance.

    Example:
        >>> pointing_game(grad_cam(model, images), masks, tolerance=2).accuracy
        0.9
    """
    masks = np.asarray(masks) != 0
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W); got {masks.shape}.")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels; got {tolerance}.")
    saliency = _saliency(maps, masks[..., None])
    flat = saliency.reshape(len(saliency), -1)
    width = masks.shape[2]
    peak = flat.argmax(axis=1)
    points = np.stack([peak // width, peak % width], axis=1)
    hits = np.zeros(len(masks), bool)
    for i, (y, x) in enumerate(points):
        if flat[i].max() <= flat[i].min():
            continue
        ys, xs = np.nonzero(masks[i])
        hits[i] = ys.size > 0 and np.hypot(ys - y, xs - x).min() <= tolerance
    return PointingGame(hits=hits, points=points, accuracy=float(hits.mean()))

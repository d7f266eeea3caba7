"""The probe and reference images: read once from arrays or datasets, kept with their labels.

``CnnVisCallback.__init__`` reads what the user gave (``read_probes``): an array, a dict or
list of arrays for a model with several inputs, or a ``tf.data.Dataset`` of images, of
``(images, labels)``, or of dict features; at most ``limit`` rows are kept. The model is
not known yet: ``plan.make_plan`` splits them into the image input and the side inputs
(``capture.split_images``) at ``set_model``.

Example:
    >>> images, labels = read_probes(dataset, None, limit=8)
    >>> Probes(pixels, display, labels).inputs is pixels
    True
"""

import warnings
from typing import NamedTuple

import numpy as np
import tensorflow as tf


class Probes(NamedTuple):
    """The probe images in the model's scale, their display RGB (uint8), labels and object
    masks (N, H, W) bool for the pointing game (each None when not given); for a model with
    several inputs, ``side`` holds the other inputs' rows and ``image_name`` the image's."""

    images: np.ndarray
    display: np.ndarray
    labels: np.ndarray | None
    masks: np.ndarray | None = None
    side: dict | None = None
    image_name: str | None = None

    @property
    def inputs(self):
        """What the methods take: the images, or with side inputs the model's input dict."""
        if self.side is None:
            return self.images
        return {**self.side, self.image_name: self.images}

    def inputs_at(self, rows):
        """``inputs`` of the probes ``rows`` (an index array; repeats allowed)."""
        if self.side is None:
            return self.images[rows]
        return {**{k: v[rows] for k, v in self.side.items()}, self.image_name: self.images[rows]}


def check_masks(masks, images):
    """Boolean masks (N, H, W) that fit the probe images, or None."""
    if masks is None:
        return None
    array = np.asarray(masks.numpy() if isinstance(masks, tf.Tensor) else masks)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    expected = (len(images), *images.shape[1:3])
    if array.shape != expected:
        raise ValueError(
            f"probe_masks must have shape {expected} (one mask per probe image, at the input "
            f"size); got {np.shape(masks)}."
        )
    return array != 0


def read_probes(images, labels, limit, what="probe_images", limit_name="max_probes"):
    """Probe images and labels from arrays or a ``tf.data.Dataset``.

    Args:
        images: an array (N, H, W, C) or (H, W, C), a tensor, or a dataset of images or
            ``(images, labels)``, batched or not. For a model with several inputs: a dict
            ``{input name: array}`` (or a list of arrays in the model's input order, of
            different shapes), or a dataset of dict features (or ``(features, labels)``).
        labels: N integer labels or one-hot rows, or None (a dataset's labels win).
        limit: the most images to keep (the first ones; a warning says when more were given).
        what: the argument's name, for messages (also ``"reference_images"``).
        limit_name: the name of the argument that sets ``limit``, for messages.

    Returns:
        ``(images, labels int64 (N,) or None)``: images as float32 (N, H, W, C), or a dict
        or list of float32 arrays with N rows each.

    Raises:
        ValueError: for images or labels of the wrong shape, or an empty dataset.
    """
    if isinstance(images, tf.data.Dataset):
        images, found = _take_from_dataset(images, limit, what)
        labels = found if found is not None else labels
    if isinstance(images, dict) or _is_input_list(images):
        parts = _arrays(images, what)
        count = _rows(parts, what)
    else:
        parts = _image_array(images, what)
        count = len(parts)
    if count > limit:
        warnings.warn(
            f"cnnvis: using the first {limit} of {count} {what} ({limit_name}={limit}).",
            stacklevel=3,
        )
        parts = _first(parts, limit)
        labels = None if labels is None else np.asarray(labels)[:limit]
        count = limit
    return parts, _check_labels(labels, count)


def row_count(images):
    """How many probes ``read_probes`` returned (rows of the array, or of each input)."""
    if isinstance(images, dict):
        return len(next(iter(images.values())))
    if isinstance(images, list):
        return len(images[0])
    return len(images)


def _image_array(images, what):
    """An image batch as float32 (N, H, W, C)."""
    images = images.numpy() if isinstance(images, tf.Tensor) else images
    try:
        array = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be a numeric array (N, H, W, C): {error}") from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or len(array) == 0:
        raise ValueError(
            f"{what} must have shape (N, H, W, C) with N >= 1; got {np.shape(images)}."
        )
    return array


def _is_input_list(images):
    """A list or tuple of arrays of different shapes: one array per model input."""
    if not isinstance(images, (list, tuple)) or len(images) < 2:
        return False
    shapes = {np.shape(item) for item in images}
    return len(shapes) > 1 and all(np.ndim(item) >= 1 for item in images)


def _arrays(images, what):
    """Every input's rows as float32 arrays, in the same structure (dict or list)."""

    def convert(name, value):
        value = value.numpy() if isinstance(value, tf.Tensor) else value
        try:
            return np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{what}[{name!r}] must be a numeric array: {error}") from None

    if isinstance(images, dict):
        return {str(name): convert(name, value) for name, value in images.items()}
    return [convert(i, value) for i, value in enumerate(images)]


def _rows(parts, what):
    """The common number of rows of every input; raises if they differ or are none."""
    values = parts.values() if isinstance(parts, dict) else parts
    counts = {len(value) if np.ndim(value) else 0 for value in values}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"{what} must give every input the same number of rows (N >= 1); got "
            f"{ {k: np.shape(v) for k, v in (parts.items() if isinstance(parts, dict) else enumerate(parts))} }."
        )
    return counts.pop()


def _first(parts, limit):
    """The first ``limit`` rows of an array, dict or list of arrays."""
    if isinstance(parts, dict):
        return {name: value[:limit] for name, value in parts.items()}
    if isinstance(parts, list):
        return [value[:limit] for value in parts]
    return parts[:limit]


def _take_from_dataset(dataset, limit, what="probe_images"):
    """The first ``limit`` rows (and labels, if the elements carry them) of a dataset."""
    batches, labels, count = [], [], 0
    for element in dataset:
        is_pair = isinstance(element, (tuple, list)) and not isinstance(element, dict)
        parts = element if is_pair else (element,)
        features = parts[0]
        if isinstance(features, dict):
            features = {name: np.asarray(value) for name, value in features.items()}
            batched = max(value.ndim for value in features.values()) == 4
            batch = features if batched else {k: v[None] for k, v in features.items()}
            size = len(next(iter(batch.values())))
        else:
            x = np.asarray(features)
            batched = x.ndim == 4
            batch = x if batched else x[None]
            size = len(batch)
        batches.append(batch)
        if len(parts) > 1:
            y = np.asarray(parts[1])
            labels.append(y if batched else y[None])
        count += size
        if count >= limit:
            break
    if not batches:
        raise ValueError(f"{what} is an empty dataset; it must yield at least one image.")
    found = np.concatenate(labels)[:limit] if len(labels) == len(batches) else None
    if isinstance(batches[0], dict):
        joined = {name: np.concatenate([b[name] for b in batches])[:limit] for name in batches[0]}
        return joined, found
    return np.concatenate(batches)[:limit], found


def _check_labels(labels, count):
    """Labels (N,): ints from ints, booleans or one-hot rows, floats kept (a regression's
    values; ``subject`` checks them against the model's head); None stays None."""
    if labels is None:
        return None
    labels = np.asarray(labels.numpy() if isinstance(labels, tf.Tensor) else labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    numeric = np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_
    if labels.shape != (count,) or not numeric:
        raise ValueError(
            f"probe_labels must be {count} labels (one per probe image): class indices, "
            f"one-hot rows, or a regression's values; got shape {np.shape(labels)}."
        )
    integral = np.all(np.isfinite(labels)) and np.all(np.mod(labels, 1) == 0)
    return labels.astype(np.int64) if integral else labels.astype(np.float64)


def read_reference(images, limit):
    """The reference images (``read_probes`` of at most ``limit``), or None if not given."""
    if images is None:
        return None
    from tb_cnnvis.arguments import positive_int

    limit = positive_int(limit, "max_reference_images")
    return read_probes(images, None, limit, "reference_images", "max_reference_images")[0]


def first_masks(masks, images):
    """The probe masks of the probes kept (one per row of ``images``), or None."""
    return None if masks is None else np.asarray(masks)[: row_count(images)]

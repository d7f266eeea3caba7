"""Top-activating examples per filter, with receptive-field patches and deconvnet projections.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (Fig. 2):
for each filter, the reference images whose strongest activation of that filter is
highest, each shown as the image patch under the unit's receptive field beside the
deconvnet projection of that single activation. Yosinski et al., "Understanding Neural
Networks Through Deep Visualization", 2015 (the DeepVis Toolbox) shows the same "top 9".

The reference set is read in batches with one forward pass per batch for all filters (a
compiled function returns each channel's maximum and its position), and a running top-k
is merged in numpy, so any number of images fits in memory. Receptive fields are computed
exactly by walking the layer chain from the input (kernel sizes, strides, padding and
dilation of convolution and pooling layers); projections are batched over the (filter,
example) pairs by a compiled function that projects one given unit per image (backprop.py
projects each channel's own strongest unit, so it cannot be reused for given positions).

Example:
    >>> top = top_examples(model, images, "conv2", k=9)
    >>> top.indices.shape, top.patches.shape          # (filters, k), (filters, k, h, w, C)
    ((6, 9), (6, 9, 8, 8, 3))
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture
from tb_cnnvis.algorithms import backprop
from tb_cnnvis.algorithms.receptive_field import ReceptiveField, receptive_field


class TopExamples(NamedTuple):
    """The k strongest reference images per filter (rows follow ``filters``, best first).

    Attributes:
        layer: the layer's path.
        filters: int array (F,) of channel indices.
        indices: int array (F, k): positions of the images in the reference set.
        activations: float32 array (F, k): the channel's maximum over positions.
        positions: int array (F, k, 2): where the maximum lies, (y, x) in layer coordinates.
        boxes: int array (F, k, 4): the patch's image region (top, left, bottom, right),
            end exclusive, clipped to the image.
        patches: float32 array (F, k, ph, pw, C): the image under each unit's receptive
            field (window of ``receptive_field.patch_size`` centred on it, zeros outside
            the image, so that patches tile).
        projections: float32 array like ``patches`` (the deconvnet projection of the
            single activation, cropped to the same window), or None.
        receptive_field: the layer's ``ReceptiveField``.
        count: how many reference images were read.
    """

    layer: str
    filters: np.ndarray
    indices: np.ndarray
    activations: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    projections: np.ndarray | None
    receptive_field: ReceptiveField
    count: int


def _build_maxima(model_ref, path):
    """The Python function (traced once) giving each channel's maximum and its (y, x)."""

    def maxima(images, side):
        _, taps = capture.run_graph(model_ref(), images, side=side, taps=[path], stop_at=[path])
        act = tf.cast(taps[path], tf.float32)
        shape = tf.shape(act)
        flat = tf.reshape(act, [shape[0], -1, shape[3]])
        where = tf.argmax(flat, axis=1, output_type=tf.int32)
        return tf.reduce_max(flat, axis=1), tf.stack([where // shape[2], where % shape[2]], -1)

    return maxima


def _reference_batches(model, reference, batch_size, image_input=None):
    """Yield ``(pixels float32 (B, H, W, C), side)`` batches from arrays or a dataset.

    ``side`` holds the model's other inputs for those rows (None for a one-input model).
    """

    def split(value):
        return capture.split_images(model, value, "reference", image_input=image_input)

    if not isinstance(reference, tf.data.Dataset):
        images, side = split(reference)
        for start in range(0, len(images), batch_size):
            yield (
                images[start : start + batch_size],
                capture.take_rows(side, slice(start, start + batch_size)),
            )
        return
    spec = reference.element_spec
    if isinstance(spec, tuple):
        reference = reference.map(lambda *element: element[0])
        spec = spec[0]
    if isinstance(spec, dict):
        image = spec.get(capture.input_spec(model, image_input).image)
    else:
        image = spec
    if not isinstance(image, tf.TensorSpec) or image.shape.rank not in (3, 4):
        raise ValueError(
            "reference dataset must yield images (H, W, C) or batches (B, H, W, C), or tuples "
            "whose first element is such images (e.g. (images, labels)); for a model with "
            f"several inputs, dicts of them (the image under its input name); got {spec}."
        )
    if image.shape.rank == 4:
        reference = reference.unbatch()
    for batch in reference.batch(batch_size):
        value = (
            {k: v.numpy() for k, v in batch.items()} if isinstance(batch, dict) else batch.numpy()
        )
        yield split(value)


def _check_filters(filters, channels, path):
    """Channel indices as an int array, checked against the layer's channel count."""
    if filters is None:
        return np.arange(channels)
    chosen = np.atleast_1d(np.asarray(filters))
    if chosen.ndim != 1 or chosen.size == 0 or not np.issubdtype(chosen.dtype, np.integer):
        raise ValueError(f"filters must be a non-empty list of ints; got {filters!r}.")
    if chosen.min() < 0 or chosen.max() >= channels:
        raise ValueError(
            f"filters {chosen.tolist()} are out of range: layer {path!r} has {channels} "
            f"channels (0..{channels - 1})."
        )
    return chosen


def _merge(best, values, positions, offset, k):
    """Merge one batch's (B, F) maxima and (B, F, 2) positions into the running top-k.

    Sorted by value, then by image index, so that ties go to the earlier image whatever
    the batch size.
    """
    count = values.shape[0]
    all_values = np.concatenate([best[0], values.T], axis=1)
    all_indices = np.concatenate(
        [best[1], np.broadcast_to(offset + np.arange(count), (values.shape[1], count))], axis=1
    )
    all_positions = np.concatenate([best[2], positions.transpose(1, 0, 2)], axis=1)
    order = np.lexsort((all_indices, -all_values), axis=-1)[:, :k]
    return (
        np.take_along_axis(all_values, order, axis=1),
        np.take_along_axis(all_indices, order, axis=1),
        np.take_along_axis(all_positions, order[..., None], axis=1),
    )


def _with_side(model, images, sides, image_input):
    """``images`` with their side inputs, as the model's input structure (a dict)."""
    if sides[0] is None:
        return images
    spec = capture.input_spec(model, image_input)
    side = {name: np.concatenate([row[name] for row in sides]) for name in sides[0]}
    return {**side, spec.image: images}


def crop_windows(images, corners, size):
    """Crop ``size`` windows at ``corners`` (top, left) from ``images``; zeros outside.

    Args:
        images: array (P, H, W, C).
        corners: int array (P, 2), may lie outside the image.
        size: (ph, pw).

    Returns:
        ``(patches (P, ph, pw, C), boxes (P, 4))`` with boxes (top, left, bottom, right)
        clipped to the image, end exclusive.
    """
    count, height, width, _ = images.shape
    patches = np.zeros((count, *size, images.shape[-1]), dtype=images.dtype)
    top = np.clip(corners[:, 0], 0, height)
    left = np.clip(corners[:, 1], 0, width)
    bottom = np.clip(corners[:, 0] + size[0], 0, height)
    right = np.clip(corners[:, 1] + size[1], 0, width)
    for i in range(count):
        dy, dx = top[i] - corners[i, 0], left[i] - corners[i, 1]
        patches[i, dy : dy + bottom[i] - top[i], dx : dx + right[i] - left[i]] = images[
            i, top[i] : bottom[i], left[i] : right[i]
        ]
    return patches, np.stack([top, left, bottom, right], axis=1)


def _build_unit_projection(model_ref, path, relu_fn):
    """Input gradient of one given unit ``(channel, y, x)`` of ``path`` per image."""

    def run(images, units, side):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            _, taps = capture.run_graph(
                model_ref(), images, side=side, taps=[path], relu_fn=relu_fn, stop_at=[path]
            )
            acts = tf.cast(taps[path], tf.float32)
            rows = tf.range(tf.shape(acts)[0], dtype=units.dtype)
            where = tf.stack([rows, units[:, 1], units[:, 2], units[:, 0]], axis=1)
            target = tf.reduce_sum(tf.gather_nd(acts, where))
        return tape.gradient(target, images)

    return run


def project_units(
    model, images, layer, units, rule="deconvnet", batch_size=64, *, image_input=None
):
    """Project one given unit per image back to the input (Zeiler & Fergus 2014).

    Like ``backprop.backprop``, but the unit is chosen by the caller: all other
    activations of the layer are zeroed and the unit is projected to pixel space with the
    ReLU ``rule`` ("deconvnet", "guided" or "gradient"; see ``backprop``).

    Args:
        model: a built Keras 3 model.
        images: float32 array (P, H, W, C) (a dict or list of inputs for a model with
            several).
        layer: name or path of a layer with a (h, w, K) output.
        units: int array (P, 3) of (channel, y, x), one per image.
        rule: "deconvnet", "guided" or "gradient".
        batch_size: images per backward pass.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        float32 array (P, H, W, C), raw.

    Raises:
        ValueError: unknown rule or layer, units out of range.

    Example:
        >>> project_units(model, images[:2], "conv2", [[0, 3, 4], [5, 0, 0]]).shape
        (2, 16, 16, 3)
    """
    relu_fn = backprop.relu_rule(rule)
    ref = capture.resolve_layer(model, layer)
    batch, side = capture.split_images(model, images, image_input=image_input)
    units = np.asarray(units, dtype=np.int32).reshape(-1, 3)
    shape = (ref.output_shape[2], ref.output_shape[0], ref.output_shape[1])
    if (
        len(units) != len(batch)
        or (units < 0).any()
        or any(s is not None and (units[:, i] >= s).any() for i, s in enumerate(shape))
    ):
        raise ValueError(
            f"units must be {len(batch)} rows of (channel, y, x) within layer {ref.path!r}'s "
            f"output (h, w, channels) = {ref.output_shape}; got {units.tolist()[:4]}..."
        )
    function = capture.CACHE.get(
        model,
        ("top_examples/unit_projection", ref.path, rule),
        lambda model_ref: _build_unit_projection(model_ref, ref.path, relu_fn),
    )
    parts = []
    for start in range(0, len(batch), int(batch_size)):
        rows = slice(start, start + int(batch_size))
        side_rows = capture.side_constants(capture.take_rows(side, rows))
        parts.append(function(tf.constant(batch[rows]), tf.constant(units[rows]), side_rows))
    grads = np.concatenate([part.numpy() for part in parts])
    return capture.finite_or_zero(grads, f"{rule} projection of units of {ref.path!r}")


def top_examples(
    model,
    reference,
    layer,
    k=9,
    filters=None,
    batch_size=64,
    with_projections=True,
    rule="deconvnet",
    *,
    image_input=None,
):
    """The ``k`` reference images that activate each filter most, as in Zeiler & Fergus.

    Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
    Fig. 2: per filter, the top images' patches (the receptive field of the strongest unit)
    beside the deconvnet projection of that single activation. An image's score for a
    filter is the channel's maximum over positions; ties go to the earlier image.

    Args:
        model: a built Keras 3 model.
        reference: float32 array (N, H, W, C), or a ``tf.data.Dataset`` of images, of
            batches, or of ``(images, labels)`` tuples; it is read once, ``batch_size``
            images per forward pass. For a model with several inputs, a dict of arrays or a
            dataset of dict features (the other inputs are held at each image's values).
        layer: the layer's name, ``"outer/inner"`` path, or index into ``conv_layers``.
        k: examples per filter (fewer if the reference set has fewer images).
        filters: channel indices (default: all).
        batch_size: images per forward pass, and (filter, example) pairs per projection pass.
        with_projections: compute the projections (about one backward pass per pair).
        rule: how projections pass ReLUs: "deconvnet", "guided" or "gradient".
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A ``TopExamples``.

    Raises:
        ValueError: for an unknown layer, bad ``filters``/``k``/``batch_size``, images of
            the wrong shape, an unknown rule, or a layer whose receptive field cannot be
            computed (e.g. after upsampling).

    Example:
        >>> top = top_examples(model, dataset.take(500), "conv3", k=9, filters=[0, 5])
        >>> top.indices[0]              # the 9 images that excite filter 0 most
    """
    if int(k) < 1 or int(batch_size) < 1:
        raise ValueError(f"k and batch_size must be >= 1; got k={k}, batch_size={batch_size}.")
    backprop.relu_rule(rule)  # an unknown rule fails before the reference set is read
    ref = capture.resolve_layer(model, layer)
    chosen = _check_filters(filters, ref.output_shape[-1], ref.path)
    maxima = capture.CACHE.get(
        model,
        ("top_examples/maxima", ref.path),
        lambda model_ref: _build_maxima(model_ref, ref.path),
    )
    k = int(k)
    best = (
        np.full((len(chosen), 0), -np.inf, np.float32),
        np.zeros((len(chosen), 0), np.int64),
        np.zeros((len(chosen), 0, 2), np.int64),
    )
    kept, seen, image_shape = {}, 0, None
    for batch, side in _reference_batches(model, reference, int(batch_size), image_input):
        values, where = (
            t.numpy() for t in maxima(tf.constant(batch), capture.side_constants(side))
        )
        values = np.nan_to_num(values[:, chosen], nan=-np.inf)
        best = _merge(best, values, where[:, chosen], seen, k)
        wanted = set(np.unique(best[1]).tolist())
        kept = {i: kept_row for i, kept_row in kept.items() if i in wanted}
        for i in wanted:
            if seen <= i < seen + len(batch):
                row = i - seen
                kept[i] = (batch[row].copy(), capture.take_rows(side, slice(row, row + 1)))
        seen += len(batch)
        image_shape = batch.shape[1:]
    if seen == 0:
        raise ValueError("reference holds no images.")
    activations, indices, positions = best
    field = receptive_field(model, ref.path, input_size=image_shape[:2])
    corners = field.window_corner(positions)
    order = indices.reshape(-1)
    images = np.stack([kept[i][0] for i in order])
    patches, boxes = crop_windows(images, corners, field.patch_size)
    projections = None
    if with_projections:
        units = np.concatenate(
            [np.repeat(chosen, indices.shape[1])[:, None], positions.reshape(-1, 2)], axis=1
        )
        inputs = _with_side(model, images, [kept[i][1] for i in order], image_input)
        full = project_units(
            model, inputs, ref.path, units, rule, batch_size, image_input=image_input
        )
        projections = crop_windows(full, corners, field.patch_size)[0]
    grid = indices.shape
    tiles = (*grid, *patches.shape[1:])
    return TopExamples(
        layer=ref.path,
        filters=chosen,
        indices=indices,
        activations=activations.astype(np.float32),
        positions=positions,
        boxes=boxes.reshape(*grid, 4),
        patches=patches.reshape(tiles),
        projections=None if projections is None else projections.reshape(tiles),
        receptive_field=field,
        count=seen,
    )

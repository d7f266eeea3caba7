"""How much a view changed between two logged epochs, and how alive a layer is.

Scalars the callback logs per epoch:

- Rank correlation (Spearman) between two epochs' maps: per image for class activation
  maps, per filter for filter patterns. Spearman's rho compares the order of the pixels,
  not their scale, as Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS 2018) do
  to compare saliency maps; 1.0 means the same ranking, -1.0 the reversed one.
- SSIM (Wang et al., "Image Quality Assessment: From Error Visibility to Structural
  Similarity", IEEE TIP 2004) between maps each scaled to [0, 1], also used by Adebayo et al.
- Dead filters (channels never positive on the probe images) and activation sparsity (the
  fraction of activations that are not positive), from a layer's feature maps.

A constant map has no ranking: its correlation with another map is 0.0, or 1.0 when both
maps are the same constant (nothing changed). NaN never comes out, so the values can be
averaged and logged as they are.

Example:
    >>> cam_drift(cams_epoch_3, cams_epoch_4)             # mean over images
    0.93
    >>> dead_filters(feature_maps(model, probes, "conv2"))
    array([4, 17])
"""

import numpy as np
import tensorflow as tf


def _rows(values, what):
    """A float64 (N, P) array: one flattened map per row."""
    values = np.asarray(values, np.float64)
    if values.ndim < 2:
        raise ValueError(f"{what} must have a leading batch axis, (N, ...); got {values.shape}.")
    return values.reshape(len(values), -1)


def rank_rows(values):
    """Ranks (0-based, ties get their mean rank) along each row of a 2-D array."""
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    count = values.shape[1]
    index = np.arange(count)
    starts_group = np.ones(values.shape, bool)
    starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ends_group = np.ones(values.shape, bool)
    ends_group[:, :-1] = starts_group[:, 1:]
    first = np.maximum.accumulate(np.where(starts_group, index, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends_group, index, count - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(values.shape, np.float64)
    np.put_along_axis(ranks, order, (first + last) / 2.0, axis=1)
    return ranks


def spearman(a, b, absolute=False):
    """Spearman rank correlation between matching rows of ``a`` and ``b``.

    Spearman, "The Proof and Measurement of Association between Two Things", 1904: the
    Pearson correlation of the ranks (ties get their mean rank).

    Args:
        a: array (N, ...): N maps (each flattened).
        b: array of the same shape.
        absolute: compare absolute values (for signed maps such as gradients).

    Returns:
        float64 array (N,) in [-1, 1]; a constant row gives 0.0, or 1.0 against an equal
        constant row.

    Raises:
        ValueError: if the shapes differ or there is no batch axis.

    Example:
        >>> spearman([[1, 2, 3]], [[3, 2, 1]])
        array([-1.])
    """
    a, b = _rows(a, "a"), _rows(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"Maps to compare must have the same shape; got {a.shape} and {b.shape}.")
    if absolute:
        a, b = np.abs(a), np.abs(b)
    ra, rb = rank_rows(a), rank_rows(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    norm = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    rho = (ra * rb).sum(axis=1) / np.where(norm > 0, norm, 1.0)
    constant = norm == 0
    same = (a == b).all(axis=1)
    rho[constant] = np.where(same[constant], 1.0, 0.0)
    return np.clip(rho, -1.0, 1.0)


def cam_drift(maps_before, maps_after):
    """Mean over images of the rank correlation between two epochs' class activation maps.

    Args:
        maps_before: maps (N, H, W) (or any (N, ...)) at one epoch.
        maps_after: maps of the same images at a later epoch.

    Returns:
        A float in [-1, 1]: 1.0 when every map kept its pixel ranking.

    Example:
        >>> cam_drift(grad_cam(model_e3, probes), grad_cam(model_e4, probes))
        0.91
    """
    return float(spearman(maps_before, maps_after).mean())


def pattern_drift(patterns_before, patterns_after):
    """Rank correlation per filter between two epochs' filter patterns.

    Args:
        patterns_before: images (F, h, w, C), one per filter, at one epoch.
        patterns_after: the same filters' images at a later epoch.

    Returns:
        float64 array (F,) in [-1, 1].

    Example:
        >>> pattern_drift(patterns_e3, patterns_e4).round(2)
        array([0.8 , 0.95, 0.12])
    """
    return spearman(patterns_before, patterns_after)


def _unit_scaled(maps):
    """(N, H, W, C) float32 maps each scaled to [0, 1] (a constant map becomes zeros)."""
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 3:
        maps = maps[..., None]
    low = maps.min(axis=(1, 2, 3), keepdims=True)
    span = maps.max(axis=(1, 2, 3), keepdims=True) - low
    return (maps - low) / np.where(span > 0, span, 1.0)


def ssim(a, b):
    """Structural similarity between matching maps, each first scaled to [0, 1].

    Wang et al., IEEE TIP 2004 (``tf.image.ssim``: 11 px Gaussian window of sigma 1.5, made
    smaller for maps under 11 px).

    Args:
        a: maps (N, H, W) or images (N, H, W, C).
        b: the same shape.

    Returns:
        float64 array (N,), 1.0 for identical maps.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> ssim(maps, maps)
        array([1., 1.])
    """
    a, b = _unit_scaled(a), _unit_scaled(b)
    if a.shape != b.shape:
        raise ValueError(f"Maps to compare must have the same shape; got {a.shape} and {b.shape}.")
    window = int(min(11, *a.shape[1:3]))
    values = tf.image.ssim(tf.constant(a), tf.constant(b), max_val=1.0, filter_size=window)
    return values.numpy().astype(np.float64)


def _activations(feature_maps):
    """A float array (N, h, w, C) of one layer's outputs."""
    values = np.asarray(feature_maps)
    if values.ndim != 4:
        raise ValueError(f"feature_maps must have shape (N, h, w, channels); got {values.shape}.")
    return values


def dead_filters(feature_maps, threshold=0.0):
    """Channels that never respond: on every image and position they stay at one value.

    A filter is alive when it ever rises above its own minimum, by more than ``threshold``
    (and float rounding): a ReLU unit that died outputs 0 everywhere, one whose bias wins
    everywhere a constant. The sign is not asked: after a LayerNorm or a GELU (ConvNeXt,
    vision transformers' stems) a filter that answers with negative values responds too.

    Args:
        feature_maps: one layer's outputs (N, h, w, C) for the probe images.
        threshold: the largest spread (maximum - minimum) that still counts as no response.

    Returns:
        int array of the dead channels' indices (``len(...)`` is the count to log).

    Example:
        >>> dead_filters(np.zeros((2, 4, 4, 3)))
        array([0, 1, 2])
    """
    values = _activations(feature_maps)
    if values.size == 0:
        return np.zeros(0, np.int64)
    spread = values.max(axis=(0, 1, 2)).astype(np.float64) - values.min(axis=(0, 1, 2))
    finite = np.abs(values[np.isfinite(values)])
    rounding = 1e-6 * (float(finite.max()) if finite.size else 0.0)
    return np.flatnonzero(spread <= max(float(threshold), rounding))


def activation_sparsity(feature_maps, threshold=0.0):
    """Fraction of a layer's activations that are not above ``threshold`` (zeros of a ReLU).

    For a layer before its ReLU (e.g. a conv followed by batch normalization), this is the
    fraction the ReLU would zero.

    Args:
        feature_maps: one layer's outputs (N, h, w, C) for the probe images.
        threshold: the largest value that still counts as inactive.

    Returns:
        A float in [0, 1].

    Example:
        >>> activation_sparsity(np.array([0.0, 0.0, 1.0, 2.0]).reshape(1, 2, 2, 1))
        0.5
    """
    values = _activations(feature_maps)
    return float((values <= threshold).mean())

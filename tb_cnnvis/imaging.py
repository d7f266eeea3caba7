"""Arrays to 8-bit pictures: per-channel normalization, atlases, colour and PNG bytes.

Everything here is plain numpy except ``encode_png``/``decode_png``, which use ``tf.io`` so
that PNGs can be written to any ``tf.io.gfile`` location without extra dependencies. The
layout of an atlas (row-major tiles without gaps) is the one stated in ``tb_cnnvis.summary``.

Example:
    >>> pixels, low, high, mean = normalize_channels(maps[0])   # maps: (N, h, w, C)
    >>> atlas, grid = tile_atlas(np.moveaxis(pixels, -1, 0))    # one tile per channel
    >>> png = encode_png(atlas)
"""

import math

import numpy as np


def grid_shape(count, tile=(1, 1)):
    """Rows and columns of a near-square atlas (in pixels) for ``count`` tiles of ``tile``.

    Args:
        count: number of tiles, >= 1.
        tile: tile size ``(h, w)``; wide tiles get fewer columns.

    Returns:
        ``(rows, cols)`` with ``rows * cols >= count`` and ``(rows - 1) * cols < count``.

    Example:
        >>> grid_shape(10)
        (3, 4)
    """
    count = int(count)
    if count < 1:
        raise ValueError(f"An atlas needs at least one tile; got count={count}.")
    height, width = (max(1, int(d)) for d in tile)
    cols = max(1, min(count, math.ceil(math.sqrt(count * height / width))))
    rows = math.ceil(count / cols)
    return rows, cols


def tile_atlas(tiles, grid=None):
    """Lay ``tiles`` (n, h, w) or (n, h, w, c) out row-major in one image, unused cells zero.

    Args:
        tiles: array of n tiles; tile ``k`` goes to row ``k // cols``, column ``k % cols``.
        grid: ``(rows, cols)``; default ``grid_shape(n, (h, w))``.

    Returns:
        ``(atlas, (rows, cols))``; the atlas has shape (rows * h, cols * w[, c]) and the
        dtype of ``tiles``.

    Example:
        >>> atlas, grid = tile_atlas(np.zeros((5, 4, 4), np.uint8))
        >>> atlas.shape, grid
        ((8, 12), (2, 3))
    """
    tiles = np.asarray(tiles)
    if tiles.ndim not in (3, 4) or len(tiles) == 0:
        raise ValueError(f"tiles must have shape (n, h, w) or (n, h, w, c); got {tiles.shape}.")
    count, height, width = tiles.shape[:3]
    rows, cols = grid or grid_shape(count, (height, width))
    if rows * cols < count:
        raise ValueError(f"A {rows}x{cols} grid cannot hold {count} tiles.")
    padded = np.zeros((rows * cols, *tiles.shape[1:]), dtype=tiles.dtype)
    padded[:count] = tiles
    padded = padded.reshape(rows, cols, *tiles.shape[1:])
    atlas = np.swapaxes(padded, 1, 2).reshape(rows * height, cols * width, *tiles.shape[3:])
    return atlas, (rows, cols)


def untile_atlas(atlas, grid, tile, count):
    """Inverse of ``tile_atlas``: cut an atlas back into ``count`` tiles of size ``tile``.

    Example:
        >>> tiles = untile_atlas(atlas, facts["grid"], facts["tile"], facts["count"])
    """
    atlas = np.asarray(atlas)
    rows, cols = (int(v) for v in grid)
    height, width = (int(v) for v in tile)
    if atlas.shape[:2] != (rows * height, cols * width):
        raise ValueError(
            f"Atlas of shape {atlas.shape[:2]} does not match grid {grid} of tiles {tile}."
        )
    cells = atlas.reshape(rows, height, cols, width, *atlas.shape[2:])
    cells = np.swapaxes(cells, 1, 2).reshape(rows * cols, height, width, *atlas.shape[2:])
    return cells[: int(count)]


def normalize_channels(maps):
    """Scale each channel of (..., h, w, C) maps from its own min..max to uint8 0..255.

    A constant (or non-finite) channel becomes 0. The true range is returned alongside, so
    ``value ~= low + pixel / 255 * (high - low)`` (within half a grey level).

    Args:
        maps: float array (h, w, C) or (N, h, w, C).

    Returns:
        ``(pixels, low, high, mean)``: uint8 pixels shaped like ``maps``; float64 arrays of
        shape (C,) or (N, C) with each channel's minimum, maximum and mean (NaN-free:
        non-finite values are ignored, an all-non-finite channel reports 0).

    Example:
        >>> pixels, low, high, mean = normalize_channels(np.random.rand(2, 8, 8, 4))
        >>> pixels.shape, low.shape
        ((2, 8, 8, 4), (2, 4))
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim < 3:
        raise ValueError(f"maps must have shape (h, w, C) or (N, h, w, C); got {maps.shape}.")
    finite = np.isfinite(maps)
    clean = np.where(finite, maps, 0.0)
    any_finite = finite.any(axis=(-3, -2))
    low = np.where(any_finite, np.where(finite, maps, np.inf).min(axis=(-3, -2)), 0.0)
    high = np.where(any_finite, np.where(finite, maps, -np.inf).max(axis=(-3, -2)), 0.0)
    count = np.maximum(finite.sum(axis=(-3, -2)), 1)
    mean = clean.sum(axis=(-3, -2)) / count
    span = (high - low)[..., None, None, :]
    lows = low[..., None, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(span > 0, (clean - lows) / span, 0.0)
    pixels = to_uint8(np.where(finite, scaled, 0.0))
    return pixels, low, high, mean


def to_uint8(unit):
    """Map values in [0, 1] to uint8 0..255 (rounded, clipped; NaN becomes 0)."""
    unit = np.nan_to_num(np.asarray(unit, dtype=np.float64), nan=0.0)
    return np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)


def as_rgb(images):
    """Make (..., h, w, 1) or (..., h, w) grayscale into 3 channels; RGB passes through.

    Raises:
        ValueError: for channel counts other than 1 and 3.
    """
    images = np.asarray(images)
    if images.ndim >= 3 and images.shape[-1] == 3:
        return images
    if images.ndim >= 3 and images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    if images.ndim == 2:
        return np.repeat(images[..., None], 3, axis=-1)
    raise ValueError(
        f"Cannot show images with {images.shape[-1]} channels as RGB (expected 1 or 3); "
        f"shape {images.shape}. Pass an input_range that maps them to RGB."
    )


def signed_to_rgb(projection):
    """Show a signed (h, w, c) map as uint8 RGB: ``x / (2 * scale) + 0.5``, grey is zero.

    Args:
        projection: float array (h, w, c) with c in (1, 3), e.g. an input-space gradient.

    Returns:
        ``(rgb uint8 (h, w, 3), scale)``, where ``scale`` is the largest absolute finite
        value (0.0 for an all-zero map, which then shows as uniform grey).

    Example:
        >>> rgb, scale = signed_to_rgb(np.array([[[-2.0, 0.0, 2.0]]]))
        >>> rgb.tolist(), scale
        ([[[0, 128, 255]]], 2.0)
    """
    projection = np.asarray(projection, dtype=np.float64)
    finite = np.where(np.isfinite(projection), projection, 0.0)
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    unit = finite / (2.0 * scale) + 0.5 if scale > 0 else np.full_like(finite, 0.5)
    return as_rgb(to_uint8(unit)), scale


SIGNED_ZERO = 128
"""The grey level of zero in ``signed_to_gray``; ``SIGNED_ZERO +- 127`` is ``+-scale``."""


def signed_to_gray(values):
    """Store a signed (h, w) map as one grey channel centred on 128, with its scale.

    ``pixel = round(128 + 127 * x / scale)`` with ``scale`` the largest absolute finite
    value, so 128 is exactly zero, 255 is ``+scale`` and 1 is ``-scale`` (0 is unused);
    a reader recovers ``x = (pixel - 128) / 127 * scale`` within ``scale / 254``.
    Non-finite values are stored as zero.

    Args:
        values: float array (h, w), e.g. a class attribution map.

    Returns:
        ``(pixels uint8 (h, w, 1), scale)``; an all-zero map is all 128 with scale 0.0.

    Example:
        >>> pixels, scale = signed_to_gray(np.array([[-2.0, 0.0, 1.0]]))
        >>> pixels[..., 0].tolist(), scale
        ([[1, 128, 192]], 2.0)
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.where(np.isfinite(values), values, 0.0)
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    unit = finite / scale if scale > 0 else np.zeros_like(finite)
    pixels = np.round(SIGNED_ZERO + (SIGNED_ZERO - 1) * np.clip(unit, -1.0, 1.0))
    return pixels.astype(np.uint8)[..., None], scale


PNG_COMPRESSION = 1
"""zlib level of the stored PNGs. Level 1 against libpng's default 6, on the 48 PNGs of a
logged step of MobileNetV2 at 96 px: 0.10 s instead of 0.22 s of CPU, 2.29 MB instead of
2.19 MB (encoding was most of what feature maps cost at an ordinary logged epoch)."""


def encode_png(pixels):
    """PNG bytes of a uint8 image (h, w), (h, w, 1) or (h, w, 3), lossless.

    Example:
        >>> encode_png(np.zeros((4, 4), np.uint8))[:4]
        b'\\x89PNG'
    """
    import tensorflow as tf

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels; got {pixels.dtype}. Use to_uint8.")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3, 4):
        raise ValueError(f"encode_png needs (h, w), (h, w, 1/3/4); got {pixels.shape}.")
    return tf.io.encode_png(pixels, compression=PNG_COMPRESSION).numpy()


def decode_png(data):
    """Pixels of PNG bytes as a uint8 array (h, w, channels)."""
    import tensorflow as tf

    return tf.io.decode_png(data).numpy()


def image_facts(grid, tile, count, channels, probe=None, class_index=None):
    """The ``facts["images"]`` entry describing one stored PNG (see ``tb_cnnvis.summary``).

    ``class_index`` is added only when given (maps of several classes per probe).
    """
    entry = {
        "probe": None if probe is None else int(probe),
        "grid": [int(grid[0]), int(grid[1])],
        "tile": [int(tile[0]), int(tile[1])],
        "count": int(count),
        "channels": int(channels),
    }
    if class_index is not None:
        entry["class_index"] = int(class_index)
    return entry

"""The options of the attribution methods: defaults, checks in the user's terms, baselines.

``attribution.attribution_details`` takes each method's options as keywords; ``resolve``
fills in the defaults and refuses what makes no sense before anything runs, saying what
was expected. ``baseline_images`` turns a baseline (a number, one value per channel, one
image or one per image) into one baseline image per image.

Example:
    >>> resolve("integrated_gradients", {"steps": 32}, (4, 64, 64, 3))
    {'steps': 32, 'baseline': None, 'input_range': None, 'batch_size': None}
"""

import math

import numpy as np

METHODS = ("smoothgrad", "integrated_gradients", "occlusion")

_DEFAULTS = {
    "smoothgrad": {"samples": 25, "noise": 0.15, "seed": 0},
    "integrated_gradients": {"steps": 64, "baseline": None},
    "occlusion": {"patch_size": None, "stride": None, "baseline": None},
}
"""Each method's own options and their defaults (None: chosen from the images)."""

_COMMON = {"input_range": None, "batch_size": None}
"""Options every method takes."""

DEFAULT_BASELINE = {"integrated_gradients": "low", "occlusion": "grey"}
"""The baseline a method uses when given none: the input range's low end (black) or middle."""


def check_method(method):
    """Raise ``ValueError`` for an unknown method, listing the known ones."""
    if method not in _DEFAULTS:
        raise ValueError(f"Unknown attribution method {method!r}; expected one of {list(METHODS)}.")


def resolve(method, options, shape):
    """The method's options with defaults filled in, each checked.

    Args:
        method: one of ``METHODS``.
        options: the keywords given.
        shape: the images' shape (N, H, W, C).

    Returns:
        A dict of every option of the method and the common ones.

    Raises:
        ValueError: for an unknown option or a value that makes no sense.
    """
    known = {**_DEFAULTS[method], **_COMMON}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown options {unknown} for {method!r}; its options are {list(known)}."
        )
    settings = {**known, **options}
    if settings["batch_size"] is not None:
        settings["batch_size"] = _count(settings["batch_size"], "batch_size", "copies per call")
    if method == "smoothgrad":
        settings["samples"] = _count(settings["samples"], "samples", "noisy copies per image")
        noise = settings["noise"]
        if not _real(noise) or not math.isfinite(noise) or noise < 0:
            raise ValueError(
                "noise must be a number >= 0: the noise's standard deviation as a fraction "
                f"of the input range (0.15 is 15 %; 0 gives the plain gradient); got {noise!r}."
            )
        settings["noise"] = float(noise)
        if not _integer(settings["seed"]):
            raise ValueError(f"seed must be an int; got {settings['seed']!r}.")
    elif method == "integrated_gradients":
        what = "points on the path from the baseline to the image"
        settings["steps"] = _count(settings["steps"], "steps", what)
    else:
        _occlusion_window(settings, shape[1:3])
    return settings


def _occlusion_window(settings, size):
    """Fill in and check ``patch_size`` and ``stride`` for images of ``size`` (H, W)."""
    side = min(size)
    patch = settings["patch_size"]
    if patch is None:
        patch = max(1, round(side / 8))
    elif not _integer(patch) or not 1 <= patch <= side:
        raise ValueError(
            f"patch_size must be an int from 1 to {side} (the images are {size[0]}x{size[1]} "
            f"pixels); got {patch!r}."
        )
    stride = settings["stride"]
    if stride is None:
        stride = max(1, patch // 2)
    elif not _integer(stride) or not 1 <= stride <= patch:
        raise ValueError(
            f"stride must be an int from 1 to patch_size={patch}, so that every pixel is "
            f"occluded; got {stride!r}."
        )
    settings["patch_size"], settings["stride"] = int(patch), int(stride)


def baseline_images(baseline, images, input_range, default):
    """One baseline image per image (N, H, W, C) float32.

    Args:
        baseline: None (the default), a number, an array of one value per channel (C,),
            one image (H, W, C) or one per image (N, H, W, C), in the model's input scale.
        images: the images (N, H, W, C).
        input_range: the model's ``InputRange``.
        default: ``"low"`` (the low end of the input range: black) or ``"grey"`` (its middle).

    Raises:
        ValueError: for a baseline of another shape or with non-finite values.
    """
    _, height, width, channels = images.shape
    if baseline is None:
        low, high = input_range.bounds(channels)
        value = low if default == "low" else (low + high) / 2
        return np.broadcast_to(value.astype(np.float32), images.shape)
    allowed = {(), (channels,), (height, width, channels), images.shape}
    try:
        array = np.asarray(baseline, dtype=np.float32)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape not in allowed:
        got = "a non-numeric value" if array is None else f"shape {array.shape}"
        raise ValueError(
            f"baseline must be a number, one value per channel ({channels},), one image "
            f"{(height, width, channels)} or one per image {images.shape}; got {got}."
        )
    if not np.isfinite(array).all():
        raise ValueError("baseline must be finite; it has NaN or infinite values.")
    return np.broadcast_to(array, images.shape)


def describe(method, settings):
    """The settings as stored in the facts: JSON-ready; a baseline as ``"low"`` or ``"grey"``
    (the defaults), a number, a list (one value per channel) or ``"array"``."""
    described = {}
    for name, value in settings.items():
        if name == "baseline":
            array = None if value is None else np.asarray(value, dtype=np.float64)
            if array is None:
                value = DEFAULT_BASELINE[method]
            elif array.ndim == 0:
                value = float(array)
            elif array.ndim == 1:
                value = [float(v) for v in array]
            else:
                value = "array"
        described[name] = value
    return described


def _count(value, name, what):
    """``value`` as an int if it is an int >= 1."""
    if not _integer(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 ({what}); got {value!r}.")
    return int(value)


def _integer(value):
    """True for an int (numpy ints too), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _real(value):
    """True for a real number, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )

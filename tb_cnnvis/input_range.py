"""The scale a model expects its input images in, and the way back to displayable RGB.

Models are trained on images in different scales: ``[0, 1]`` (``Rescaling(1/255)`` done
outside the model), ``[0, 255]`` (``keras.applications`` models with their preprocessing
inside, or a leading ``Rescaling`` layer), ``[-1, 1]`` (Keras's ``"tf"`` mode: Inception,
MobileNet), per-channel standardized RGB (``"torch"`` mode) or mean-subtracted BGR
(``"caffe"`` mode: VGG16, ResNet50). An image synthesized for a model lives in that model's
scale, so the scale has to be explicit: an ``InputRange`` says, per channel of the model's
input, which model values stand for black (``low``) and white (``high``), and whether the
channels are in BGR order. ``to_display_rgb`` is the one function that turns model-scale
images into displayable RGB; every view that shows an image made for or from the model
uses it.

Example:
    >>> rng = InputRange.named("caffe")           # VGG16-style mean-subtracted BGR
    >>> x = rng.from_unit(np.full((1, 8, 8, 3), 0.5, np.float32))   # display grey -> model
    >>> to_display_rgb(x, rng)[0, 0, 0]
    array([128, 128, 128], dtype=uint8)
"""

from dataclasses import dataclass

import numpy as np

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


def _as_tuple(value, what):
    """A float or a sequence of floats as a tuple of Python floats."""
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(
            f"InputRange {what} must be a finite number or a list of them; got {value!r}."
        )
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class InputRange:
    """The values of a model's input that stand for black and for white, per channel.

    A display image ``u`` in ``[0, 1]`` (RGB) maps to the model's scale as
    ``x = low + u * (high - low)``, channel by channel, with the channels reversed first
    when ``bgr`` is set. Synthesized images are kept inside ``[low, high]``.

    Args:
        low: the model value of black: one number, or one per input channel (in the model's
            channel order).
        high: the model value of white, likewise; greater than ``low`` in every channel.
        bgr: whether the model takes its colour channels in BGR order (Caffe-style models).

    Raises:
        ValueError: if a bound is not finite, ``high <= low`` somewhere, or ``low`` and
            ``high`` give different numbers of channels.

    Example:
        >>> InputRange()                     # the default: [0, 1] RGB
        >>> InputRange(0, 255)               # 8-bit values, e.g. a model with Rescaling(1/255) inside
        >>> InputRange.named("caffe")        # keras.applications.vgg16.preprocess_input
    """

    low: float | tuple = 0.0
    high: float | tuple = 1.0
    bgr: bool = False

    def __post_init__(self):
        low, high = _as_tuple(self.low, "low"), _as_tuple(self.high, "high")
        if len(low) != len(high) and 1 not in (len(low), len(high)):
            raise ValueError(
                f"InputRange low and high give {len(low)} and {len(high)} channels; they must agree."
            )
        width = max(len(low), len(high))
        low, high = low * (width // len(low)), high * (width // len(high))
        if any(h <= lo for lo, h in zip(low, high)):
            raise ValueError(
                f"InputRange needs high > low in every channel; got low={low}, high={high}."
            )
        object.__setattr__(self, "low", low[0] if width == 1 else low)
        object.__setattr__(self, "high", high[0] if width == 1 else high)
        object.__setattr__(self, "bgr", bool(self.bgr))

    NAMES = ("unit", "byte", "tf", "torch", "caffe")
    """Names accepted by ``named``: ``unit`` [0, 1], ``byte`` [0, 255], and Keras's
    ``preprocess_input`` modes ``tf`` [-1, 1], ``torch`` (ImageNet-standardized RGB) and
    ``caffe`` (ImageNet-mean-subtracted BGR in 0..255)."""

    @classmethod
    def named(cls, name):
        """The range of a common preprocessing convention (see ``InputRange.NAMES``).

        Raises:
            ValueError: for an unknown name, listing the known ones.
        """
        if name == "unit":
            return cls(0.0, 1.0)
        if name == "byte":
            return cls(0.0, 255.0)
        if name == "tf":
            return cls(-1.0, 1.0)
        if name == "torch":
            mean, std = np.array(_TORCH_MEAN_RGB), np.array(_TORCH_STD_RGB)
            return cls(tuple(-mean / std), tuple((1.0 - mean) / std))
        if name == "caffe":
            mean = np.array(_CAFFE_MEAN_BGR)
            return cls(tuple(-mean), tuple(255.0 - mean), bgr=True)
        raise ValueError(f"Unknown input range name {name!r}; expected one of {list(cls.NAMES)}.")

    @classmethod
    def resolve(cls, spec, model=None):
        """Turn what a user passed as ``input_range`` into an ``InputRange``.

        Args:
            spec: an ``InputRange``, a name from ``InputRange.NAMES``, a ``(low, high)`` pair,
                or None. None means ``[0, 1]``, except for a model whose first layer is a
                ``Rescaling`` by 1/255 or 1/127.5 (its inputs are 8-bit values): ``[0, 255]``.
            model: the Keras model, used only when ``spec`` is None.

        Returns:
            An ``InputRange``.

        Raises:
            ValueError: for a spec of another kind or an invalid range.
        """
        if isinstance(spec, InputRange):
            return spec
        if spec is None:
            return cls(0.0, 255.0) if _takes_bytes(model) else cls()
        if isinstance(spec, str):
            return cls.named(spec)
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            return cls(spec[0], spec[1])
        raise ValueError(
            f"input_range must be an InputRange, one of {list(cls.NAMES)}, a (low, high) pair "
            f"or None; got {spec!r}."
        )

    def bounds(self, channels):
        """``(low, high)`` as float32 arrays of shape (channels,), in the model's channel order.

        Raises:
            ValueError: if the range is per channel for another number of channels.
        """
        low, high = np.atleast_1d(self.low), np.atleast_1d(self.high)
        if low.size not in (1, channels):
            raise ValueError(
                f"{self} describes {low.size} channels but the images have {channels}."
            )
        shape = (channels,)
        return (
            np.broadcast_to(low, shape).astype(np.float32),
            np.broadcast_to(high, shape).astype(np.float32),
        )

    def from_unit(self, unit):
        """Map display RGB in [0, 1] (..., C) to the model's scale (works on NumPy or TF)."""
        channels = unit.shape[-1]
        low, high = self.bounds(channels)
        if self.bgr:
            unit = unit[..., ::-1]
        return low + unit * (high - low)

    def to_unit(self, images):
        """Map model-scale images (..., C) to display RGB in [0, 1], unclipped (NumPy or TF)."""
        channels = images.shape[-1]
        low, high = self.bounds(channels)
        unit = (images - low) / (high - low)
        return unit[..., ::-1] if self.bgr else unit

    def clip(self, images):
        """Clip model-scale images (NumPy) into the range."""
        low, high = self.bounds(images.shape[-1])
        return np.clip(images, low, high)


def _takes_bytes(model):
    """True if ``model`` starts with a ``Rescaling`` that maps 0..255 to [0, 1] or [-1, 1]."""
    layers = [
        layer for layer in getattr(model, "layers", ()) if type(layer).__name__ != "InputLayer"
    ]
    if not layers or type(layers[0]).__name__ != "Rescaling":
        return False
    scale = np.asarray(layers[0].scale, dtype=np.float64)
    return bool(np.allclose(scale, 1 / 255.0) or np.allclose(scale, 1 / 127.5))


def to_display_rgb(images, input_range=None, *, dtype="uint8"):
    """Turn images in a model's input scale into displayable RGB.

    The values are mapped with ``input_range`` (BGR models get their channels reversed),
    then clipped to [0, 1]. One-channel images are repeated into grey RGB.

    Args:
        images: an array or tensor (N, H, W, C) or (H, W, C) in the model's scale, C in (1, 3).
        input_range: an ``InputRange`` or anything ``InputRange.resolve`` accepts; None is
            ``[0, 1]``.
        dtype: ``"uint8"`` for 0..255 bytes, ``"float32"`` for [0, 1] floats.

    Returns:
        An array of the same leading shape with 3 channels, uint8 or float32.

    Raises:
        ValueError: for images with other than 1 or 3 channels, or another dtype.

    Example:
        >>> to_display_rgb(result.images, InputRange.named("caffe")).shape
        (16, 64, 64, 3)
    """
    if dtype not in ("uint8", "float32"):
        raise ValueError(f"dtype must be 'uint8' or 'float32'; got {dtype!r}.")
    array = np.asarray(images, dtype=np.float32)
    if array.ndim < 3 or array.shape[-1] not in (1, 3):
        raise ValueError(
            f"Images must have shape (N, H, W, C) or (H, W, C) with C = 1 or 3; got {array.shape}."
        )
    unit = np.clip(InputRange.resolve(input_range).to_unit(array), 0.0, 1.0)
    unit = np.nan_to_num(unit, nan=0.0)
    if unit.shape[-1] == 1:
        unit = np.repeat(unit, 3, axis=-1)
    if dtype == "float32":
        return unit.astype(np.float32)
    return np.round(unit * 255.0).astype(np.uint8)

"""MaCo: optimize the phase of an image's Fourier transform under a fixed magnitude spectrum.

Fel et al., "Unlocking Feature Visualization for Deeper Networks with MAgnitude
Constrained Optimization", NeurIPS 2023. Feature visualizations of deep networks fill up
with high frequencies that natural images do not have; MaCo keeps the image's Fourier
magnitude fixed to that of natural images and lets the optimizer change only the phase
(where the structure of an image lives), with random crops and noise as the only other
regularization. The paper takes its magnitude from ImageNet; nothing can be downloaded
here, so ``magnitude_spectrum`` estimates it from the images the caller has (the
callback's reference or probe images), and ``power_law_spectrum`` gives a 1/f amplitude
spectrum (the natural-image power law, Field 1987) when there are none. Which one was used
is recorded with the patterns (``FilterPatterns.spectrum``).

The unit image of a slot is ``irfft2d(M * exp(i * phase))`` per channel, with the
direct-current term of ``M`` fixing the mean colour. The phase is made odd-symmetric on
the columns where the real FFT needs Hermitian symmetry, so the image's real FFT has
exactly the magnitude ``M`` (pixels pushed outside [0, 1] are clipped, with the gradient
passed straight through; that clipping is the only departure).

Example:
    >>> magnitude = magnitude_spectrum(unit_images, (32, 32))   # (3, 32, 17) float32
    >>> params = MacoImage().init([0, 1], (32, 32, 3), seed=0)   # phases (2, 3, 32, 17)
    >>> images = MacoImage().to_unit(tf.constant(params), (32, 32, 3), magnitude)
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tb_cnnvis.algorithms.fv_params import _rng

POWER_LAW_STD = 0.15
"""Standard deviation of a power-law image around grey, per channel (natural contrast)."""

SPECTRUM_CROPS = 64
"""At most this many crops of the given images are averaged into a magnitude spectrum."""


def _hermitian_columns(width):
    """The rfft columns whose coefficients must be Hermitian along the rows."""
    return [0, width // 2] if width % 2 == 0 else [0]


def _mirror_rows(height):
    """Row index of the frequency ``-k`` for each row ``k``."""
    return (-np.arange(height)) % height


def _symmetrize_magnitude(magnitude, width):
    """Average ``M[k]`` with ``M[-k]`` on the Hermitian columns (exact for real images)."""
    magnitude = np.array(magnitude, dtype=np.float32)
    mirror = _mirror_rows(magnitude.shape[-2])
    for column in _hermitian_columns(width):
        part = magnitude[..., :, column]
        magnitude[..., :, column] = 0.5 * (part + part[..., mirror])
    return magnitude


def magnitude_spectrum(unit_images, size, seed=0, crops=SPECTRUM_CROPS):
    """The Fourier magnitude of ``size`` crops of natural images, per channel: the square
    root of their mean power spectrum (a mean of magnitudes would give images of less
    contrast than the crops have).

    Args:
        unit_images: (N, H, W, C) images in display scale [0, 1] (``InputRange.to_unit``),
            each at least ``size``.
        size: (h, w) of the canvas the spectrum is for.
        seed: fixes where the crops are taken.
        crops: how many crops to average (spread over the images).

    Returns:
        float32 (C, h, w // 2 + 1): ``sqrt(mean |rfft2d|^2)`` over the crops, direct
        current included (it sets the mean colour).

    Raises:
        ValueError: if the images are smaller than ``size``.

    Example:
        >>> magnitude_spectrum(np.random.rand(8, 64, 64, 3), (32, 32)).shape
        (3, 32, 17)
    """
    images = np.asarray(unit_images, dtype=np.float32)
    height, width = int(size[0]), int(size[1])
    if images.ndim != 4 or images.shape[1] < height or images.shape[2] < width:
        raise ValueError(f"Need images (N, H, W, C) of at least {size}; got {images.shape}.")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 4099])
    count = max(int(crops), 1)
    if len(images) >= count:
        which = rng.permutation(len(images))[:count]
    else:
        which = np.arange(count) % len(images)
    tops = rng.integers(0, images.shape[1] - height + 1, count)
    lefts = rng.integers(0, images.shape[2] - width + 1, count)
    patches = np.stack(
        [images[i, t : t + height, s : s + width] for i, t, s in zip(which, tops, lefts)]
    )
    power = np.abs(np.fft.rfft2(np.moveaxis(patches, -1, 1), axes=(-2, -1))) ** 2
    return _symmetrize_magnitude(np.sqrt(power.mean(axis=0)), width)


def power_law_spectrum(shape, std=POWER_LAW_STD, mean=0.5):
    """A 1/f amplitude spectrum (power falling as 1/f^2, as in natural images), per channel.

    Args:
        shape: (h, w, C) of the canvas.
        std: the standard deviation of any image with this spectrum, per channel.
        mean: its mean (the direct-current term).

    Returns:
        float32 (C, h, w // 2 + 1).

    Example:
        >>> power_law_spectrum((16, 16, 3))[0, 0, 0]     # the mean: 0.5 * 16 * 16
        128.0
    """
    height, width, channels = (int(s) for s in shape)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.sqrt(fx * fx + fy * fy), 1.0 / max(height, width))
    amplitude[0, 0] = 0.0
    # Parseval: sum over the full plane of |X|^2 = (h w)^2 var; the half-plane columns
    # other than the Hermitian ones stand for two coefficients each.
    weights = np.full(amplitude.shape, 2.0)
    weights[:, _hermitian_columns(width)] = 1.0
    energy = np.sum(weights * amplitude**2)
    amplitude *= std * height * width / np.sqrt(energy)
    amplitude[0, 0] = mean * height * width
    return np.broadcast_to(amplitude, (channels, *amplitude.shape)).astype(np.float32)


@dataclass(frozen=True)
class MacoImage:
    """Optimize the Fourier phase under a fixed magnitude spectrum (Fel et al. 2023).

    Parameters have shape (B, C, h, w // 2 + 1): one phase per rfft coefficient. The
    magnitude is not a parameter: it is passed to ``to_unit`` (a tensor, so a new spectrum
    does not retrace).

    Example:
        >>> MacoImage().init([0], (16, 16, 3), seed=0).shape
        (1, 3, 16, 9)
    """

    uses_spectrum = True

    def init(self, filters, shape, seed, member=0):
        """Start phases, uniform in [-pi, pi), one draw per (seed, filter, member)."""
        height, width, channels = shape
        spec = (channels, height, width // 2 + 1)
        return np.stack(
            [_rng(seed, f, member).uniform(-np.pi, np.pi, size=spec) for f in filters]
        ).astype(np.float32)

    def from_unit(self, unit, shape):
        """Phases of unit images (B, h, w, C): the data-seeded start keeps their structure."""
        spectrum = np.fft.rfft2(np.moveaxis(np.asarray(unit, np.float32), -1, 1), axes=(-2, -1))
        return np.angle(spectrum).astype(np.float32)

    def to_unit(self, params, shape, spectrum=None):
        """The unit images (B, h, w, C) with magnitude ``spectrum``: (C, h, w // 2 + 1) for
        every slot, or (B, C, h, w // 2 + 1) one per slot."""
        height, width = int(shape[0]), int(shape[1])
        mirror = tf.constant(_mirror_rows(height), tf.int32)
        odd = 0.5 * (params - tf.gather(params, mirror, axis=2))
        columns = np.zeros(width // 2 + 1, bool)
        columns[_hermitian_columns(width)] = True
        phase = tf.where(tf.constant(columns), odd, params)
        magnitude = tf.cast(spectrum, tf.float32)
        if magnitude.shape.rank == 3:  # one spectrum for every slot
            magnitude = magnitude[None]
        coefficients = tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))
        image = tf.signal.irfft2d(coefficients, fft_length=[height, width])
        image = tf.transpose(image, (0, 2, 3, 1))
        # Clip to the valid range, the gradient passing straight through.
        return image + tf.stop_gradient(tf.clip_by_value(image, 0.0, 1.0) - image)

    def project(self, params):
        """No constraint: phases are angles (wrapping them would flip the sign of the
        coefficients made from two of them on the Hermitian columns)."""
        return params


def spectrum_for(parametrization, images, input_range, shape, seed=0):
    """The magnitude spectrum a parametrization needs, and where it came from.

    Args:
        parametrization: the preset's parametrization.
        images: natural images (N, H, W, C) in the model's scale, or None.
        input_range: the model's ``InputRange``.
        shape: (h, w, C) of the canvas.
        seed: fixes the crops.

    Returns:
        ``(magnitude, source)``: ``magnitude_spectrum`` of the images (``"images"``), else
        (no images, or smaller than the canvas) ``power_law_spectrum`` (``"power_law"``);
        a placeholder and None for a parametrization without spectrum.

    Example:
        >>> spectrum_for(MacoImage(), None, InputRange(), (16, 16, 3))[1]
        'power_law'
    """
    if not getattr(parametrization, "uses_spectrum", False):
        return np.zeros(1, np.float32), None
    fits = images is not None and images.shape[1] >= shape[0] and images.shape[2] >= shape[1]
    if fits and images.shape[-1] == shape[2]:
        unit = np.clip(input_range.to_unit(images), 0.0, 1.0)
        return magnitude_spectrum(unit, shape[:2], seed=seed), "images"
    return power_law_spectrum(shape), "power_law"

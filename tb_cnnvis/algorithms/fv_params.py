"""Image parametrizations for feature visualization: what the optimizer actually changes.

A parametrization holds a batch of parameters (one slot per filter) and turns them into
display-space images ("unit images": RGB-like values in [0, 1], mapped to the model's
scale by an ``InputRange`` afterwards). Two are provided here (and ``fv_maco.MacoImage``):

- ``PixelImage``: the pixels themselves, clipped to [0, 1] after every step (Erhan et al.
  2009; Simonyan et al. 2013). Cheap; needs explicit regularizers to avoid high-frequency
  noise.
- ``FourierImage``: a 1/f-scaled Fourier spectrum with colour decorrelation and a sigmoid
  to the valid range (Olah et al. 2017, "Feature Visualization", Distill; the Lucid
  library's ``fft_image`` + ``to_valid_rgb``). The spectrum's scaling whitens the gradient,
  so plain optimization yields natural-looking, low-frequency patterns.

Start parameters are drawn per (seed, filter index, diversity member) with NumPy, so the
same filter starts from the same image whichever other filters share the batch and at every
epoch. ``from_unit`` gives the parameters of a given image (a data-seeded start).

Example:
    >>> param = FourierImage()
    >>> params = param.init([0, 1], (64, 64, 3), seed=0)    # NumPy (2, ...) float32
    >>> images = param.to_unit(tf.constant(params), (64, 64, 3))   # (2, 64, 64, 3) in [0, 1]
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

# Square root of the colour correlation matrix of ImageNet pixels (the constants published
# with Olah et al. 2017); its columns are normalized by the largest column norm below.
_COLOR_CORRELATION_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR_MIX = (_COLOR_CORRELATION_SQRT / np.max(np.linalg.norm(_COLOR_CORRELATION_SQRT, axis=0))).T


def _rng(seed, index, member=0):
    """A NumPy generator for one (seed, filter index, diversity member)."""
    key = [int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 7919]
    return np.random.default_rng([*key, int(member)] if member else key)


@dataclass(frozen=True)
class PixelImage:
    """Optimize the pixels directly; start from grey plus uniform noise.

    Args:
        noise: half-width of the uniform noise around grey (0.5) in the start image.

    Example:
        >>> PixelImage(noise=0.1).init([3], (32, 32, 3), seed=0).shape
        (1, 32, 32, 3)
    """

    noise: float = 0.1
    uses_spectrum = False

    def init(self, filters, shape, seed, member=0):
        """Start parameters (len(filters), H, W, C) as float32, one draw per filter."""
        return np.stack(
            [
                0.5 + _rng(seed, f, member).uniform(-self.noise, self.noise, size=shape)
                for f in filters
            ]
        ).astype(np.float32)

    def from_unit(self, unit, shape):
        """The parameters that give unit images (B, H, W, C): the pixels, clipped."""
        return np.clip(np.asarray(unit, np.float32), 0.0, 1.0)

    def to_unit(self, params, shape, spectrum=None):
        """The unit images: the parameters themselves."""
        return params

    def project(self, params):
        """Keep the pixels inside [0, 1] after a step."""
        return tf.clip_by_value(params, 0.0, 1.0)


def _rfft2d_freqs(height, width):
    """Spatial frequency magnitude of each rfft2d coefficient, shape (H, W // 2 + 1)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


@dataclass(frozen=True)
class FourierImage:
    """Optimize a 1/f^decay-scaled Fourier spectrum, decorrelated colours, sigmoid output.

    Parameters have shape (B, 2, C, H, W' // 2 + 1), W' = W rounded up to even: real and
    imaginary parts of each channel's spectrum, scaled by ``1 / max(f, 1 / max(H, W)) ** decay`` before the inverse
    FFT (Olah et al. 2017).

    Args:
        decay: exponent of the frequency scaling (1.0 in Lucid).
        sd: standard deviation of the normal start spectrum (0.01 in Lucid).
        decorrelate: mix the three channels with the ImageNet colour correlation (only
            applied to 3-channel images).

    Example:
        >>> FourierImage().init([0], (64, 64, 3), seed=0).shape
        (1, 2, 3, 64, 33)
    """

    decay: float = 1.0
    sd: float = 0.01
    decorrelate: bool = True
    uses_spectrum = False

    def init(self, filters, shape, seed, member=0):
        """Start spectra (len(filters), 2, C, H, W' // 2 + 1) as float32."""
        height, width, channels = shape
        spec_shape = (2, channels, *_rfft2d_freqs(height, width + width % 2).shape)
        return np.stack(
            [_rng(seed, f, member).normal(0.0, self.sd, size=spec_shape) for f in filters]
        ).astype(np.float32)

    def _scale(self, height, width):
        """The 1/f^decay scaling of each rfft2d coefficient."""
        freqs = _rfft2d_freqs(height, width)
        return np.sqrt(height * width) / np.maximum(freqs, 1.0 / max(height, width)) ** self.decay

    def from_unit(self, unit, shape):
        """The spectra whose ``to_unit`` gives unit images (B, H, W, C) (up to clipping)."""
        unit = np.clip(np.asarray(unit, np.float64), 1e-3, 1.0 - 1e-3)
        mixed = np.log(unit / (1.0 - unit))
        if self.decorrelate and unit.shape[-1] == 3:
            mixed = mixed @ np.linalg.inv(_COLOR_MIX.astype(np.float64))
        mixed = 4.0 * mixed
        if shape[1] % 2:  # the spectrum is of an even width: repeat the last column
            mixed = np.concatenate([mixed, mixed[:, :, -1:]], axis=2)
        spectrum = np.fft.rfft2(np.moveaxis(mixed, -1, 1), axes=(-2, -1))
        spectrum /= self._scale(shape[0], shape[1] + shape[1] % 2)
        return np.stack([spectrum.real, spectrum.imag], axis=1).astype(np.float32)

    def to_unit(self, params, shape, spectrum=None):
        """Inverse FFT of the scaled spectrum, colour mixing and a sigmoid: (B, H, W, C)."""
        height, width = shape[0], shape[1] + shape[1] % 2
        scale = self._scale(height, width)
        spectrum = tf.complex(params[:, 0], params[:, 1]) * tf.cast(
            tf.constant(scale, tf.float32), tf.complex64
        )
        image = tf.signal.irfft2d(spectrum, fft_length=[height, width])  # (B, C, H, W)
        image = tf.transpose(image[:, :, :, : shape[1]], (0, 2, 3, 1)) / 4.0
        if self.decorrelate and image.shape[-1] == 3:
            image = tf.tensordot(image, tf.constant(_COLOR_MIX), axes=[[3], [0]])
        return tf.sigmoid(image)

    def project(self, params):
        """No constraint on the spectrum."""
        return params

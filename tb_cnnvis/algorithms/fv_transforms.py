"""Random image transforms applied before every optimization step ("transformation robustness").

An image that excites a filter only at one exact pixel alignment is mostly high-frequency
noise; asking it to keep exciting the filter while being shifted, scaled and rotated at
random removes that noise (Mordvintsev et al. 2015, "Inceptionism"; Olah et al. 2017,
"Feature Visualization", whose Lucid defaults are pad 12, jitter 8, scale 0.9-1.1,
rotate +-10 degrees, jitter 4).

Each transform is a small frozen dataclass called as ``transform(images, seed, step)``,
with ``images`` a (B, H, W, C) tensor of unit images, ``seed`` a stateless-RNG seed (an
int32 tensor of shape (2,)) and ``step`` the optimization step; every slot of the batch
gets the same draw. The seed is derived from
(the user's seed, step, transform position), so a run is reproducible exactly, and chunks of
one request see the same sequence.

Example:
    >>> images = apply_transforms((Pad(12), Jitter(8)), images, seed=0, step=3)
"""

import dataclasses
import math
from dataclasses import dataclass

import tensorflow as tf


def _uniform(seed, low, high):
    """One stateless uniform float in [low, high)."""
    return tf.random.stateless_uniform((), seed=seed, minval=low, maxval=high)


def _offset(seed, limit):
    """One stateless uniform int in [0, limit]."""
    return tf.random.stateless_uniform((), seed=seed, minval=0, maxval=limit + 1, dtype=tf.int32)


@dataclass(frozen=True)
class Pad:
    """Pad every side by ``pixels`` with a constant ``value`` (0.5: grey).

    Example:
        >>> Pad(12)(tf.zeros((1, 8, 8, 3)), seed, step).shape
        TensorShape([1, 32, 32, 3])
    """

    pixels: int
    value: float = 0.5

    def __call__(self, images, seed, step=0):
        p = self.pixels
        return tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=self.value)


@dataclass(frozen=True)
class Jitter:
    """Crop ``pixels`` rows and columns at a random offset (Lucid's ``jitter``).

    The image shrinks by ``pixels`` in height and width.
    """

    pixels: int

    def __call__(self, images, seed, step=0):
        d = self.pixels
        height, width = images.shape[1] - d, images.shape[2] - d
        seeds = tf.random.experimental.stateless_split(seed, 2)
        top, left = _offset(seeds[0], d), _offset(seeds[1], d)
        return tf.slice(images, [0, top, left, 0], [-1, height, width, -1])


@dataclass(frozen=True)
class Roll:
    """Shift the image circularly by up to ``pixels`` along each axis; the size is kept.

    The cheapest jitter: content leaving one side comes back on the other.
    """

    pixels: int

    def __call__(self, images, seed, step=0):
        seeds = tf.random.experimental.stateless_split(seed, 2)
        dy = _offset(seeds[0], 2 * self.pixels) - self.pixels
        dx = _offset(seeds[1], 2 * self.pixels) - self.pixels
        return tf.roll(images, shift=tf.stack([dy, dx]), axis=[1, 2])


@dataclass(frozen=True)
class Affine:
    """One random shift, scale and rotation about the centre, keeping the image size.

    A single ``ImageProjectiveTransformV3`` with bilinear sampling, so shift, scale and
    rotation together cost one pass over the pixels (and one more for the gradient). On
    CPU that pass costs as much as a small convolution; ``every`` applies it on one step
    in ``every`` only (the others pass the image through unchanged).

    Args:
        shift: largest shift in pixels along each axis.
        scale: ``(low, high)`` range of the zoom factor.
        degrees: largest rotation in degrees, either way.
        fill: how pixels coming from outside are filled: ``"reflect"``, ``"wrap"``,
            ``"nearest"`` or ``"constant"`` (grey, 0.5).
        every: apply the transform on steps ``0, every, 2 * every, ...`` only.

    Example:
        >>> Affine(shift=2, scale=(0.95, 1.05), degrees=5)(images, seed, step)
    """

    shift: float = 0.0
    scale: tuple = (1.0, 1.0)
    degrees: float = 0.0
    fill: str = "reflect"
    every: int = 1

    def __call__(self, images, seed, step=0):
        if self.every == 1:
            return self._warp(images, seed)
        return tf.cond(
            tf.equal(tf.math.floormod(step, self.every), 0),
            lambda: self._warp(images, seed),
            lambda: tf.identity(images),
        )

    def _warp(self, images, seed):
        """The random warp itself."""
        seeds = tf.random.experimental.stateless_split(seed, 4)
        zoom = _uniform(seeds[0], self.scale[0], self.scale[1] + 1e-7)
        angle = _uniform(seeds[1], -self.degrees, self.degrees + 1e-7) * (math.pi / 180.0)
        dy = _uniform(seeds[2], -self.shift, self.shift + 1e-7)
        dx = _uniform(seeds[3], -self.shift, self.shift + 1e-7)
        cy, cx = (images.shape[1] - 1) / 2.0, (images.shape[2] - 1) / 2.0
        # Output pixel (x, y) samples the input at R(-angle) / zoom * (p - c) + c - shift.
        cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
        a0, a1, b0, b1 = cos, sin, -sin, cos
        a2 = cx - a0 * cx - a1 * cy - dx
        b2 = cy - b0 * cx - b1 * cy - dy
        zero = tf.zeros_like(cos)
        matrix = tf.reshape(tf.stack([a0, a1, a2, b0, b1, b2, zero, zero]), (1, 8))
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=matrix,
            output_shape=tf.constant(list(images.shape[1:3]), tf.int32),
            fill_value=0.5,
            interpolation="BILINEAR",
            fill_mode=self.fill.upper(),
        )


@dataclass(frozen=True)
class RandomCrops:
    """``count`` random crops of each image, resized back to its size, plus Gaussian noise.

    MaCo's augmentation (Fel et al. 2023): each crop covers a random fraction ``scale`` of
    the image's side at a random place (the same boxes for every slot). The batch grows
    from B to ``B * count``, the crops of slot ``i`` at ``i * count ... i * count + count - 1``;
    the objective averages them per slot.

    Args:
        count: crops per image and step.
        scale: ``(low, high)`` range of the crop's side as a fraction of the image's.
        noise: standard deviation of the added Gaussian noise (unit scale).

    Example:
        >>> RandomCrops(4)(tf.zeros((2, 16, 16, 3)), seed, step).shape
        TensorShape([8, 16, 16, 3])
    """

    count: int = 4
    scale: tuple = (0.6, 1.0)
    noise: float = 0.05

    def __call__(self, images, seed, step=0):
        batch, height, width = images.shape[0], images.shape[1], images.shape[2]
        seeds = tf.random.experimental.stateless_split(seed, 4)
        side = tf.random.stateless_uniform(
            (self.count,), seeds[0], self.scale[0], self.scale[1] + 1e-7
        )
        top = tf.random.stateless_uniform((self.count,), seeds[1]) * (1.0 - side)
        left = tf.random.stateless_uniform((self.count,), seeds[2]) * (1.0 - side)
        boxes = tf.stack([top, left, top + side, left + side], axis=1)
        crops = tf.image.crop_and_resize(
            images,
            tf.tile(boxes, [batch, 1]),
            tf.repeat(tf.range(batch), self.count),
            (height, width),
        )
        if self.noise:
            crops += self.noise * tf.random.stateless_normal(tf.shape(crops), seeds[3])
        return crops


def apply_transforms(transforms, images, seed, step):
    """Apply ``transforms`` in order with seeds derived from (seed, step, position).

    Args:
        transforms: a sequence of transforms.
        images: (B, H, W, C) unit images.
        seed: the user's seed (int or int tensor).
        step: the optimization step (int or int tensor).

    Returns:
        The transformed batch (its size may differ when the transforms pad or crop, and
        ``RandomCrops`` multiplies the batch).
    """
    if not transforms:
        return images
    base = tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])
    seeds = tf.random.experimental.stateless_split(base, len(transforms))
    for i, transform in enumerate(transforms):
        images = transform(images, seeds[i], step)
    return images


def output_size(transforms, size):
    """The (h, w) of images of ``size`` after ``transforms`` (pads grow, jitters shrink)."""
    height, width = int(size[0]), int(size[1])
    for transform in transforms:
        if isinstance(transform, Pad):
            height, width = height + 2 * transform.pixels, width + 2 * transform.pixels
        elif isinstance(transform, Jitter):
            height, width = height - transform.pixels, width - transform.pixels
    return height, width


def scale_transforms(transforms, factor):
    """``transforms`` with their pixel sizes multiplied by ``factor`` (at least 1 if set).

    Lucid's pads and jitters are sized for 128-224 pixel images; a 16 pixel canvas needs
    proportionally smaller ones.
    """

    def scaled(pixels):
        return max(1, round(pixels * factor)) if pixels else pixels

    out = []
    for transform in transforms:
        if isinstance(transform, (Pad, Jitter, Roll)):
            transform = dataclasses.replace(transform, pixels=scaled(transform.pixels))
        elif isinstance(transform, Affine):
            transform = dataclasses.replace(transform, shift=transform.shift * factor)
        out.append(transform)
    return tuple(out)

"""Feature-visualization presets: named combinations of parametrization, transforms,
regularizers and step rule (the composable pieces of ``fv_params``, ``fv_transforms`` and
``fv_objectives``, after Lucid's objectives x parametrizations x transforms; Olah et al.
2017, "Feature Visualization", Distill).

- ``"fast"`` (the callback's default; about as costly as 32 plain forward + backward
  passes): pixel parametrization starting from grey +-0.1; each step a random circular
  shift of up to 2 pixels, and on one step in four a random zoom 0.95-1.05 and rotation of
  up to 5 degrees; total variation 0.02 and L2 decay 0.01 towards grey; per-slot
  normalized gradient steps of 0.08 (Yosinski et al. 2015 regularize the same way);
  32 steps, the first 8 with redirected ReLU gradients.
- ``"quality"``: Lucid's defaults: 1/f Fourier parametrization with colour decorrelation
  and a sigmoid to the valid range; pad 12 / jitter 8 / zoom 0.9-1.1 / rotate +-10 degrees
  / jitter 4 before every step; Adam 0.05; 512 steps, the first 16 with redirected ReLU
  gradients. The pads and jitters are in pixels, sized for 128-224 pixel images.

Example:
    >>> from tb_cnnvis.algorithms.fv_presets import PRESETS, Preset
    >>> slower = dataclasses.replace(PRESETS["fast"], steps=128)
    >>> cv.filter_patterns(model, "conv3", preset=slower)
"""

from dataclasses import dataclass

from tb_cnnvis.algorithms.fv_maco import MacoImage
from tb_cnnvis.algorithms.fv_objectives import L2, Adam, NormalizedAscent, TotalVariation
from tb_cnnvis.algorithms.fv_params import FourierImage, PixelImage
from tb_cnnvis.algorithms.fv_transforms import Affine, Jitter, Pad, RandomCrops, Roll


@dataclass(frozen=True)
class Preset:
    """A feature-visualization recipe: parametrization, transforms, regularizers, step rule.

    Args:
        parametrization: a ``fv_params`` parametrization (``PixelImage``, ``FourierImage``).
        transforms: ``fv_transforms`` transforms applied in order before every step.
        regularizers: ``fv_objectives`` penalties on the unit image (``TotalVariation``, ``L2``).
        optimizer: an ``fv_objectives`` step rule (``NormalizedAscent``, ``Adam``).
        steps: the default number of steps.
        rescue_steps: for how many first steps ReLU gradients are redirected.
        attribution: sum the absolute gradients reaching the image over the steps (MaCo's
            transparency map, ``FilterPatterns.attribution``).
        reference_size: the canvas side the transforms' pixel sizes are meant for; on
            another canvas they are scaled in proportion. None: used as they are.

    Example:
        >>> mine = Preset(PixelImage(), (Affine(shift=4),), (TotalVariation(0.05),),
        ...               NormalizedAscent(0.05), steps=64)
        >>> cv.filter_patterns(model, "conv2", preset=mine)
    """

    parametrization: object
    transforms: tuple
    regularizers: tuple
    optimizer: object
    steps: int
    rescue_steps: int = 16
    attribution: bool = False
    reference_size: int | None = None


PRESETS = {
    "fast": Preset(
        parametrization=PixelImage(noise=0.1),
        transforms=(Roll(2), Affine(scale=(0.95, 1.05), degrees=5, every=4)),
        regularizers=(TotalVariation(0.02), L2(0.01)),
        optimizer=NormalizedAscent(lr=0.08),
        steps=32,
        rescue_steps=8,
    ),
    "quality": Preset(
        parametrization=FourierImage(decay=1.0, sd=0.01),
        transforms=(Pad(12), Jitter(8), Affine(scale=(0.9, 1.1), degrees=10), Jitter(4)),
        regularizers=(),
        optimizer=Adam(lr=0.05),
        steps=512,
        reference_size=224,
    ),
    "maco": Preset(
        parametrization=MacoImage(),
        transforms=(RandomCrops(count=4, scale=(0.8, 1.0), noise=0.05),),
        regularizers=(),
        optimizer=Adam(lr=0.2),
        steps=64,
        attribution=True,
    ),
}
"""The named presets (see the module docstring)."""


def check_preset(preset, name="preset"):
    """The ``Preset`` for a name in ``PRESETS`` or a ``Preset`` itself.

    Raises:
        ValueError: for anything else, naming the presets (``name``: the argument's name).
    """
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    raise ValueError(f"Unknown {name} {preset!r}; expected one of {sorted(PRESETS)} or a Preset.")

"""Filter patterns: synthesized images per filter, all filters of a layer at once.

Activation maximization (Erhan et al. 2009; Simonyan et al. 2013; Yosinski et al. 2015;
Olah et al. 2017, "Feature Visualization", Distill): gradient ascent in input space on the
mean activation of one channel. Slot ``i`` of one batch optimizes the image of one filter,
and the whole optimization of a batch runs inside one compiled ``tf.function``
(``fv_loop``), cached per (model, layer, batch, canvas, preset, diversity) and reused
across calls and epochs; it reads the model's current weights every time.

- Presets (``fv_presets``): ``"fast"`` (pixels, light regularizers), ``"quality"``
  (Lucid's defaults) and ``"maco"`` (Fel et al. 2023, ``fv_maco``: the Fourier phase under
  a fixed magnitude spectrum, estimated from ``reference_images`` when given, else a 1/f
  power law; its attribution map comes back as ``FilterPatterns.attribution``).
- The canvas follows the layer's receptive field (``fv_canvas``): about twice the field,
  between ``MIN_CANVAS`` and the model's input size; ``display()`` shows the central
  unit's field.
- Dead filters: ReLU gradients are redirected during the first steps; a filter still dead
  after that but firing on ``reference_images`` starts again from its best crop of them
  (``fv_seeding``; listed in ``FilterPatterns.seeded``). Filters that never respond (the
  optimization could not move their activation: a ReLU off everywhere, a constant) are
  listed in ``FilterPatterns.dead`` instead of showing noise. The sign is not asked: after
  a LayerNorm or a GELU a filter whose best activation is negative has a pattern too.
- ``diversity=n``: n patterns per filter, pushed apart by Lucid's Gram-matrix penalty.

Start images depend only on (seed, filter index, member) and the random transforms only on
(seed, step), so the pattern of a filter at two epochs differs only because the model did.

Example:
    >>> result = cv.filter_patterns(model, "conv3", filters=[0, 5, 7], preset="fast")
    >>> result.images.shape, result.display().shape       # canvas, display crop
    ((3, 36, 36, 3), (3, 18, 18, 3))
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture
from tb_cnnvis.algorithms import fv_seeding
from tb_cnnvis.algorithms.fv_canvas import auto_chunk, check_size, interior_window, plan_canvas
from tb_cnnvis.algorithms.fv_loop import optimizer_loop
from tb_cnnvis.algorithms.fv_maco import spectrum_for
from tb_cnnvis.algorithms.fv_presets import PRESETS, check_preset
from tb_cnnvis.algorithms.fv_transforms import output_size, scale_transforms
from tb_cnnvis.input_range import InputRange, to_display_rgb

__all__ = ["PRESETS", "FilterPatterns", "filter_patterns", "interior_window"]

CHUNK_BYTES = 1 << 30
"""Estimated working memory allowed for one compiled batch; larger requests are chunked."""

JIT_UPDATE = False
"""Compile each step's update (regularizer gradients, step rule, clipping) with XLA. Off by
default: on 2 CPU cores the XLA compile at the first call (once per layer) costs more than
the fused update saves over a training run's logged epochs."""


@dataclass
class FilterPatterns:
    """The result of ``filter_patterns``.

    Attributes:
        layer: the layer path.
        filters: (F,) int, the filter indices in the order asked.
        images: (F, h, w, C) float32 canvas images in the model's input scale; image ``i``
            maximizes filter ``filters[i]`` (the first diversity member).
        activations: (F,) the mean activation of filter ``filters[i]`` for image ``i``.
        start_activations: (F,) the same for the start images.
        input_range: the ``InputRange`` the images live in.
        steps: optimization steps run.
        canvas: the ``fv_canvas.Canvas`` (size, display crop, window, receptive field).
        preset: the preset's name (or "custom").
        seeded: filter indices whose pattern started from a crop of the reference images.
        spectrum: MaCo's magnitude source, ``"images"`` or ``"power_law"``; None otherwise.
        attribution: (F, h, w) accumulated absolute gradients (MaCo), or None.
        variants: (F, n, h, w, C) all ``n`` diversity members (member 0 is ``images``), or
            None when ``diversity == 1``.
        variant_activations: (F, n), or None.
        dead: filter indices that never responded (``fv_seeding.unmoved``), in order.

    Example:
        >>> rgb = result.display()          # (F, ch, cw, 3) uint8: the display crop
        >>> result.dead, result.seeded      # filters that never fired; started from data
    """

    layer: str
    filters: np.ndarray
    images: np.ndarray
    activations: np.ndarray
    start_activations: np.ndarray
    input_range: InputRange
    steps: int
    canvas: object = None
    preset: str = "custom"
    seeded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    spectrum: str | None = None
    attribution: np.ndarray | None = None
    variants: np.ndarray | None = None
    variant_activations: np.ndarray | None = None
    dead: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def _crop(self, images, crop):
        return self.canvas.crop_images(images) if crop and self.canvas is not None else images

    def display(self, dtype="uint8", crop=True):
        """The images as display RGB (``input_range.to_display_rgb``), cropped to the
        central unit's field unless ``crop`` is False."""
        return to_display_rgb(self._crop(self.images, crop), self.input_range, dtype=dtype)

    def display_variants(self, dtype="uint8", crop=True):
        """The diversity members (F, n, ch, cw, 3) as display RGB, or None."""
        if self.variants is None:
            return None
        return to_display_rgb(self._crop(self.variants, crop), self.input_range, dtype=dtype)

    def transparency(self, crop=True):
        """MaCo's attribution as opacity in [0, 1] (F, ch, cw): each filter's map over its
        99th percentile, clipped; None without attribution."""
        if self.attribution is None:
            return None
        maps = self._crop(self.attribution[..., None], crop)[..., 0]
        top = np.percentile(maps.reshape(len(maps), -1), 99, axis=1)[:, None, None]
        return np.clip(maps / np.maximum(top, 1e-12), 0.0, 1.0).astype(np.float32)


def filter_patterns(
    model,
    layer,
    filters=None,
    *,
    steps=None,
    size=None,
    preset="fast",
    seed=0,
    input_range=None,
    chunk_size=None,
    diversity=1,
    reference_images=None,
    side_inputs=None,
    image_input=None,
):
    """Synthesize, for each filter of ``layer``, an image that maximizes its mean activation.

    Args:
        model: a built Keras model (with several inputs: see ``side_inputs``).
        layer: the layer name, ``"outer/inner"`` path or index into ``conv_layers(model)``.
        filters: filter (channel) indices, an int, or None for all; kept in the order given.
        steps: optimization steps; None uses the preset's default.
        size: ``(height, width)`` or an int to optimize at; None: the receptive-field
            canvas (``fv_canvas.plan_canvas``; for a model that takes any size, within the
            reference images' size, else the size that holds the layer's field). Another
            size than the model's works when every layer up to ``layer`` accepts it
            (convolutions, pooling).
        preset: ``"fast"``, ``"quality"``, ``"maco"`` or a ``Preset``.
        seed: fixes the start images and the random transforms.
        input_range: the model's input scale (``InputRange``, a name, ``(low, high)``);
            None means [0, 1], or [0, 255] for a model that starts with ``Rescaling(1/255)``.
        chunk_size: filters per compiled batch; None picks it from ``CHUNK_BYTES``.
        diversity: patterns per filter (Lucid's diversity objective when > 1).
        reference_images: natural images (N, H, W, C) in the model's scale, or None: MaCo's
            magnitude spectrum is estimated from them, and a filter left dead that fires
            on them starts again from its best crop. For a model with several inputs, a
            dict or list of them.
        side_inputs: for a model with several inputs, ``{input name: value}`` (one row)
            at which the other inputs are held while the image is optimized; None: the
            mean of ``reference_images``' rows.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A ``FilterPatterns``.

    Raises:
        ValueError: for a layer without (height, width, channels) output, a filter index out
            of range, ``steps < 1``, ``diversity < 1``, an unknown preset, a size the layers
            cannot take, or reference images that do not fit the model.

    Example:
        >>> result = cv.filter_patterns(model, "conv2", steps=32, reference_images=x_val)
        >>> result.dead, result.seeded
        (array([], dtype=int64), array([3]))
    """
    ref = capture.resolve_layer(model, layer, need_4d=True)
    filters = _check_filters(filters, ref.output_shape[-1], ref.path)
    recipe = check_preset(preset)
    steps = recipe.steps if steps is None else steps
    _check_int(steps, "steps")
    _check_int(diversity, "diversity")
    held = capture.held_values(model, reference_images, side_inputs, "filter_patterns", image_input)
    with capture.holding(model, held):
        return _synthesize(
            model, ref, filters, recipe, steps, size, seed, input_range, chunk_size, diversity,
            reference_images, image_input, capture.fingerprint(held),
        )  # fmt: skip


def _synthesize(
    model, ref, filters, recipe, steps, size, seed, input_range, chunk_size, diversity,
    reference_images, image_input, held,
):  # fmt: skip
    """``filter_patterns`` once the arguments are checked and the side inputs held."""
    if reference_images is not None:
        reference_images, _ = capture.split_images(
            model, reference_images, "reference_images", image_input
        )
    seen_size = None if reference_images is None else reference_images.shape[1:3]
    shape = check_size(model, ref, size, seen_size)
    canvas = plan_canvas(model, ref.path, None if size is None else shape[:2], seen_size)
    shape = (*canvas.size, shape[2])
    rng = InputRange.resolve(input_range, model)
    rng.bounds(shape[2])
    if chunk_size is None:
        chunk_size = max(1, auto_chunk(model, ref, shape, CHUNK_BYTES) // int(diversity))
    _check_int(chunk_size, "chunk_size")
    members = int(diversity)
    slot_filters = np.repeat(filters, members)
    slot_members = np.tile(np.arange(members), len(filters))
    batch = int(min(chunk_size, len(filters))) * members
    spectrum, source = spectrum_for(recipe.parametrization, reference_images, rng, shape, seed)
    name = next((name for name, p in PRESETS.items() if p == recipe), "custom")
    if recipe.reference_size:
        factor = min(shape[:2]) / float(recipe.reference_size)
        recipe = dataclasses.replace(recipe, transforms=scale_transforms(recipe.transforms, factor))
    seen = output_size(recipe.transforms, shape[:2])
    windows = (canvas.window, interior_window(model, ref.path, seen))
    key = ("filter_patterns", ref.path, batch, shape, recipe, rng, members, JIT_UPDATE, held)
    run = capture.CACHE.get(
        model,
        key,
        lambda model_ref: optimizer_loop(
            model_ref, ref.path, recipe, rng, shape, windows, members, JIT_UPDATE
        ),
    )

    def optimize(params, slots, spectra=None):
        if spectra is None:  # one magnitude per slot: a data-seeded MaCo slot keeps its crop's
            spectra = np.broadcast_to(spectrum, (len(slots), *spectrum.shape))
        parts = []
        for begin in range(0, len(slots), batch):
            chunk = slots[begin : begin + batch]
            pad = batch - len(chunk)
            index = np.concatenate([np.arange(len(chunk)), np.repeat(len(chunk) - 1, pad)])
            out = run(
                tf.constant(params[begin : begin + batch][index]),
                tf.constant(chunk[index], tf.int32),
                tf.constant(int(seed) & 0x7FFFFFFF, tf.int32),
                tf.constant(int(steps), tf.int32),
                tf.constant(spectra[begin : begin + batch][index]),
            )
            parts.append({name: np.asarray(t)[: len(chunk)] for name, t in out.items()})
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    param = recipe.parametrization
    params = fv_seeding.start_params(param, slot_filters, slot_members, shape, seed)
    out = optimize(params, slot_filters)
    seeded = np.zeros(0, np.int64)
    dead_slots = fv_seeding.unmoved(out)
    fits = reference_images is not None and all(
        n >= c for n, c in zip(reference_images.shape[1:3], canvas.size)
    )
    if fits and dead_slots.any():  # data crops need images at least the canvas's size
        out, seeded = fv_seeding.reseed_dead(
            model, ref.path, reference_images, canvas, rng, out, optimize,
            (param, slot_filters, slot_members, shape, seed),
        )  # fmt: skip
    grid = (len(filters), members)
    dead = filters[dead_slots.reshape(grid)[:, 0] & ~np.isin(filters, seeded)]
    images = out["images"].reshape(*grid, *shape)
    final = out["final"].reshape(grid)
    return FilterPatterns(
        layer=ref.path,
        filters=filters,
        images=images[:, 0].astype(np.float32),
        activations=final[:, 0].astype(np.float32),
        start_activations=out["start"].reshape(grid)[:, 0].astype(np.float32),
        input_range=rng,
        steps=int(steps),
        canvas=canvas,
        preset=name,
        seeded=seeded,
        spectrum=source,
        attribution=out["attribution"].reshape(*grid, *shape[:2])[:, 0]
        if recipe.attribution
        else None,
        variants=images.astype(np.float32) if members > 1 else None,
        variant_activations=final.astype(np.float32) if members > 1 else None,
        dead=dead.astype(np.int64),
    )


def _check_int(value, name):
    """Raise unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")


def _check_filters(filters, channels, path):
    """Filter indices as an int array, each in [0, channels)."""
    if filters is None:
        return np.arange(channels)
    values = np.atleast_1d(np.asarray(filters))
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"filters must be an int or a non-empty list of ints in [0, {channels}); got {filters!r}."
        )
    bad = values[(values < 0) | (values >= channels)]
    if bad.size:
        raise ValueError(
            f"Filter indices {bad.tolist()} are out of range: layer {path!r} has {channels} "
            f"filters (0..{channels - 1})."
        )
    return values.astype(np.int64)

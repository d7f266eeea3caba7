"""Writers for cnnvis summaries. This docstring is the stored format, exactly.

Run and tags
    The callback writes to its own run directory ``<log_dir>/cnnvis`` (``metadata.RUN_SUBDIR``).
    One tag per (kind, layer): ``"<kind>/<layer path>"`` (e.g. ``"grad_cam/conv3"``,
    ``"feature_maps/vgg16/block1_conv1"``), plus the tag ``"probes"``. The step is the epoch:
    0 is the untrained network (logged before the first epoch), ``e`` is after epoch ``e``.
    ``tb-cnnvis log`` (post hoc, ``tb_cnnvis.cli``) writes one step per saved checkpoint,
    numbered by the number in its file name (else 0, 1, ...).

Metadata (``metadata.create_summary_metadata``)
    ``plugin_data.plugin_name = "cnnvis"``, ``data_class = DATA_CLASS_BLOB_SEQUENCE``, and
    ``plugin_data.content`` = UTF-8 JSON with
    ``{"version": 1, "kind", "layer", "layer_index", "layer_class", "output_shape": [h, w, c],
    "input_shape": [H, W, C], "probe_count": N, "class_names": [...] or null}``
    (``layer``/``layer_index``/``layer_class``/``output_shape`` are null for ``probes``).

Values
    Each step's value is a rank-1 ``tf.string`` tensor (a blob sequence):
    ``blob[0]`` is UTF-8 JSON with the step's facts; ``blob[1:]`` are PNG images (8-bit,
    lossless). ``facts["images"]`` describes each PNG, in order (``facts["images"][i]``
    describes ``blob[i + 1]``)::

        {"probe": int | null,       # which probe image it belongs to, null if none
         "grid": [rows, cols],      # an atlas of tiles laid out row-major
         "tile": [h, w],            # tile size in pixels (no gaps between tiles)
         "count": n,                # number of tiles used (the last row may be short)
         "channels": 1 | 3}         # grayscale intensities or RGB

    Tile ``k`` of an atlas sits at row ``k // cols``, column ``k % cols``.

    Facts common to every kind: ``"seconds"`` (time spent computing this view at this step)
    and ``"images"``. Per kind:

    ``probes`` (the first logged step only: 0 during ``fit``): one RGB PNG per probe image (display RGB, see
        ``input_range``); facts ``{"labels": [int] | null}``.
    ``feature_maps``: one grayscale atlas per probe image, one tile per channel, each tile
        scaled from its own (probe, channel) min..max to 0..255; facts
        ``{"min": [[float] * C] * N, "max": [[float] * C] * N, "mean": [[float] * C] * N}``
        so a reader recovers ``value = min + pixel / 255 * (max - min)`` and can rescale per
        layer.
    ``filter_patterns``: one RGB atlas, one tile per filter (display RGB); facts
        ``{"filters": [int], "activations": [float], "start_activations": [float],
        "dead": [int]}`` (``dead``: the filter indices whose activation stayed <= 0).
    ``grad_cam``, ``gradcam_plus_plus``, ``score_cam``: one grayscale PNG per probe image at
        input resolution, the map in [0, 1] times 255; facts ``{"class_index": [int]``
        (class explained), ``"predicted": [int], "probability": [float]`` (of the predicted
        class), ``"target_probability": [float], "labels": [int] | null,
        "cam_max": [float]}`` (the map's raw maximum before normalization).
    ``deconvnet``, ``guided_backprop``, ``saliency``: one RGB PNG per probe image at input
        resolution: the projection divided by twice its largest absolute value plus 0.5
        (grey is zero); facts ``{"channel": [int], "activation": [float],
        "position": [[y, x]], "scale": [float]}`` (the unit projected, its value and place,
        and the largest absolute value of the projection).

    ``top_examples`` (reference images, Zeiler & Fergus 2014): two RGB atlases, each with
        ``grid = [F, k]`` (row ``f`` = ``facts["filters"][f]``, column ``j`` = its ``j``-th
        strongest reference image, best first), ``tile`` = the patch size, ``probe`` null:
        ``blob[1]`` the image patches under the receptive field of each unit (display
        RGB; zeros of the model's scale outside the image), ``blob[2]`` (absent if not
        computed) the deconvnet projection of that single activation cropped to the same
        window, each tile stored as ``x / (2 * scale) + 0.5`` with its own ``scale``. Facts
        ``{"atlases": ["patches", "projections"]`` (what each PNG is, in order),
        ``"filters": [int] * F, "indices": [[int] * k] * F`` (positions in the reference
        set), ``"activations": [[float] * k] * F`` (the channel's maximum in that image),
        ``"positions": [[[y, x]] * k] * F`` (where, in layer coordinates),
        ``"boxes": [[[top, left, bottom, right]] * k] * F`` (the patch's image region,
        clipped, end exclusive), ``"projection_scale": [[float] * k] * F | null``,
        ``"receptive_field": {"size": [h, w], "stride": [h, w], "start": [h, w]}``,
        ``"reference_count": n}`` (images searched). ``k`` is at most ``n``.

Metrics in the facts (per logged epoch; a key is absent in logs written before it existed,
and null where the metric failed or does not apply)
    ``feature_maps``: ``"dead_filters": [int]`` (channels never above 0 on any probe image)
        and ``"sparsity": float`` (the fraction of the layer's activations <= 0).
    ``filter_patterns``: ``"drift": [float] * F | null``: per filter, Spearman's rank
        correlation of the pattern with the one logged at step ``"drift_from": int | null``
        (the previous logged step; null at the first).
    ``grad_cam``, ``gradcam_plus_plus``, ``score_cam``: ``"drift": [float] * N | null`` and
        ``"drift_from"``: per probe, the rank correlation of the map with that of the
        previous logged step; ``"pointing_hits": [bool] * N | null`` (the map's maximum lies
        within 15/224 of the image's larger side of the object; only with probe masks);
        ``"deletion_auc": [float] * N | null`` and ``"deletion_auc_random": [float] * N |
        null``: deletion AUC (Petsiuk et al. 2018; 16 steps, blurred baseline) of the
        explained class's probability for the map and for a seeded random map (lower is
        more faithful), computed for the view's last layer only (null on other layers).

Per-epoch scalars (scalars plugin, run ``cnnvis``)
    ``cnnvis_seconds/<view>``: seconds spent per view per logged epoch (``metrics``: seconds
    spent on the metrics below). ``cnnvis_metrics/<name>`` (``metadata.SCALAR_TAG_PREFIX``)
    with ``<method>`` one of ``gradcam``, ``gradcampp``, ``scorecam`` (the CAM views) and
    ``<layer>`` a layer path; CAM metrics describe the view's last layer:

    - ``deletion_auc/<method>``, ``deletion_auc/random``: mean deletion AUCs (above);
    - ``pointing_game/<method>``: the fraction of pointing-game hits (with probe masks);
    - ``cam_drift/<method>``: the mean CAM rank correlation with the previous logged step;
    - ``pattern_drift/<layer>``: the mean filter-pattern rank correlation, likewise;
    - ``dead_filters/<layer>``: the number of dead filters; ``sparsity/<layer>``: as above.

    Drift scalars start at the second logged step of their view.
"""

import json
import math

import numpy as np
import tensorflow as tf

from tb_cnnvis import imaging, metadata


def content(
    kind,
    layer=None,
    *,
    input_shape,
    probe_count,
    layer_index=None,
    layer_class=None,
    output_shape=None,
    class_names=None,
):
    """The static plugin content of one tag, as stored in its ``SummaryMetadata``.

    Args:
        kind: one of ``metadata.KINDS``.
        layer: the layer path (None for ``probes``).
        input_shape: the model's input ``(H, W, C)``.
        probe_count: number of probe images N.
        layer_index: position of the layer in model order (for sorting).
        layer_class: the layer's class name, e.g. ``"Conv2D"``.
        output_shape: the layer's output ``(h, w, c)``.
        class_names: list of class names, or None.

    Returns:
        A JSON-ready dict (see the module docstring).

    Example:
        >>> content("grad_cam", "conv3", input_shape=(64, 64, 3), probe_count=8,
        ...         layer_index=4, layer_class="Conv2D", output_shape=(14, 14, 32))
    """
    metadata.tag_name(kind, layer)  # validates kind and layer
    return metadata.tag_content(
        kind,
        layer,
        layer_index=None if layer_index is None else int(layer_index),
        layer_class=layer_class,
        output_shape=_shape_list(output_shape),
        input_shape=_shape_list(input_shape),
        probe_count=int(probe_count),
        class_names=None if class_names is None else [str(name) for name in class_names],
    )


def content_for_layer(kind, ref, **common):
    """``content`` for a ``capture.LayerRef`` (path, layer, index, output_shape)."""
    return content(
        kind,
        ref.path,
        layer_index=ref.index,
        layer_class=type(ref.layer).__name__,
        output_shape=ref.output_shape,
        **common,
    )


def write_probes(tag_content, images, step=None, *, labels=None, seconds=0.0):
    """Write the probe images (display RGB) as the ``probes`` tag.

    Args:
        tag_content: ``content("probes", ...)``.
        images: (N, H, W, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step (default: the writer's default step).
        labels: N integer labels, or None.
        seconds: time spent preparing them.

    Returns:
        True if written (a default writer was set), as ``tf.summary.write``.

    Example:
        >>> with writer.as_default(step=0):
        ...     write_probes(content("probes", input_shape=(64, 64, 3), probe_count=4), rgb)
    """
    _check_kind(tag_content, (metadata.PROBES,))
    pixels = imaging.as_rgb(_pixels(images, "images", ndim=4))
    facts = {"labels": _int_list(labels)}
    return _write_single_tiles(tag_content, step, pixels, facts, seconds)


def write_feature_maps(tag_content, maps, step=None, *, seconds=0.0, metrics=None):
    """Write one layer's feature maps: one atlas per probe, one tile per channel.

    Args:
        tag_content: ``content("feature_maps", layer, ...)``.
        maps: float array (N, h, w, C) of layer outputs.
        step: the step.
        seconds: time spent computing them.
        metrics: more facts (``dead_filters``, ``sparsity``; see the module docstring).

    Returns:
        True if written.

    Example:
        >>> write_feature_maps(tag_content, cv.feature_maps(model, probes, "conv1"), step=3)
    """
    _check_kind(tag_content, (metadata.FEATURE_MAPS,))
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"feature maps must have shape (N, h, w, C); got {maps.shape}.")
    pixels, low, high, mean = imaging.normalize_channels(maps)
    pngs, images = [], []
    for probe, probe_pixels in enumerate(pixels):
        atlas, grid = imaging.tile_atlas(np.moveaxis(probe_pixels, -1, 0))
        pngs.append(imaging.encode_png(atlas))
        images.append(imaging.image_facts(grid, maps.shape[1:3], maps.shape[3], 1, probe))
    facts = _with_metrics({"min": low, "max": high, "mean": mean}, metrics)
    return _write(tag_content, step, facts, images, pngs, seconds)


def write_filter_patterns(
    tag_content,
    images,
    step=None,
    *,
    filters,
    activations,
    start_activations=None,
    dead=(),
    seconds=0.0,
    metrics=None,
):
    """Write one layer's filter patterns as one RGB atlas (one tile per filter).

    Args:
        tag_content: ``content("filter_patterns", layer, ...)``.
        images: (F, H, W, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step.
        filters: the F filter (channel) indices, in tile order.
        activations: the F final mean activations.
        start_activations: the F activations of the starting images (or None).
        dead: indices of filters whose activation stayed <= 0.
        seconds: time spent synthesizing them.
        metrics: more facts (``drift``, ``drift_from``; see the module docstring).

    Returns:
        True if written.
    """
    _check_kind(tag_content, (metadata.FILTER_PATTERNS,))
    pixels = imaging.as_rgb(_pixels(images, "images", ndim=4))
    atlas, grid = imaging.tile_atlas(pixels)
    image = imaging.image_facts(grid, pixels.shape[1:3], len(pixels), 3)
    facts = {
        "filters": _int_list(filters),
        "activations": _float_list(activations),
        "start_activations": _float_list(start_activations),
        "dead": _int_list(dead),
    }
    facts = _with_metrics(facts, metrics)
    return _write(tag_content, step, facts, [image], [imaging.encode_png(atlas)], seconds)


def write_cam(
    tag_content,
    maps,
    step=None,
    *,
    class_index,
    predicted,
    probability,
    target_probability,
    cam_max,
    labels=None,
    seconds=0.0,
    metrics=None,
):
    """Write class activation maps (Grad-CAM, Grad-CAM++ or Score-CAM) for every probe.

    Args:
        tag_content: content of kind ``grad_cam``, ``gradcam_plus_plus`` or ``score_cam``.
        maps: (N, H, W) or (N, H, W, 1) maps in [0, 1] at input resolution.
        step: the step.
        class_index: the N classes explained.
        predicted: the N predicted classes.
        probability: the N probabilities of the predicted classes.
        target_probability: the N probabilities of the explained classes.
        cam_max: the N raw map maxima before normalization.
        labels: N true labels, or None.
        seconds: time spent.
        metrics: more facts (``drift``, ``pointing_hits``, ``deletion_auc``, ...; see the
            module docstring).

    Returns:
        True if written.
    """
    _check_kind(tag_content, metadata.CAM_KINDS)
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3:
        raise ValueError(f"CAM maps must have shape (N, H, W); got {maps.shape}.")
    facts = {
        "class_index": _int_list(class_index),
        "predicted": _int_list(predicted),
        "probability": _float_list(probability),
        "target_probability": _float_list(target_probability),
        "labels": _int_list(labels),
        "cam_max": _float_list(cam_max),
    }
    facts = _with_metrics(facts, metrics)
    return _write_single_tiles(tag_content, step, imaging.to_uint8(maps)[..., None], facts, seconds)


def write_projection(
    tag_content, projections, step=None, *, channel, activation, position, seconds=0.0
):
    """Write input-space projections (deconvnet, guided backprop, saliency), one per probe.

    Each projection is stored as ``x / (2 * scale) + 0.5`` with ``scale`` its largest
    absolute value (kept in the facts), so grey means zero.

    Args:
        tag_content: content of kind ``deconvnet``, ``guided_backprop`` or ``saliency``.
        projections: (N, H, W, C) signed float maps, C in (1, 3).
        step: the step.
        channel: the N projected channels.
        activation: the N activation values projected.
        position: the N ``(y, x)`` positions of those activations.
        seconds: time spent.

    Returns:
        True if written.
    """
    _check_kind(tag_content, metadata.PROJECTION_KINDS)
    projections = np.asarray(projections)
    if projections.ndim != 4:
        raise ValueError(f"projections must have shape (N, H, W, C); got {projections.shape}.")
    converted = [imaging.signed_to_rgb(p) for p in projections]
    pixels = np.stack([rgb for rgb, _ in converted])
    facts = {
        "channel": _int_list(channel),
        "activation": _float_list(activation),
        "position": [_int_list(p) for p in np.asarray(position).reshape(len(pixels), 2)],
        "scale": [scale for _, scale in converted],
    }
    return _write_single_tiles(tag_content, step, pixels, facts, seconds)


def write_top_examples(
    tag_content,
    patches,
    step=None,
    *,
    projections=None,
    filters,
    indices,
    activations,
    positions,
    boxes,
    receptive_field,
    reference_count,
    seconds=0.0,
):
    """Write one layer's top-activating reference examples: a patch atlas and a projection atlas.

    Zeiler & Fergus 2014, Fig. 2: row ``f`` of each atlas shows filter ``filters[f]``'s
    ``k`` strongest reference images, best first; see the module docstring.

    Args:
        tag_content: ``content("top_examples", layer, ...)``.
        patches: (F, k, ph, pw, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step.
        projections: (F, k, ph, pw, C) signed deconvnet projections (C in (1, 3)), or None.
        filters: the F channel indices.
        indices: (F, k) positions of the images in the reference set.
        activations: (F, k) the channel's maximum in each image.
        positions: (F, k, 2) the (y, x) of that maximum in layer coordinates.
        boxes: (F, k, 4) the patch's (top, left, bottom, right) in the image.
        receptive_field: a ``ReceptiveField`` (or anything with ``size``, ``stride``,
            ``start``).
        reference_count: how many reference images were searched.
        seconds: time spent.

    Returns:
        True if written.

    Example:
        >>> top = cv.top_examples(model, reference, "conv2", k=9, filters=range(8))
        >>> write_top_examples(tag_content, to_display_rgb(top.patches), 3,
        ...     projections=top.projections, filters=top.filters, indices=top.indices,
        ...     activations=top.activations, positions=top.positions, boxes=top.boxes,
        ...     receptive_field=top.receptive_field, reference_count=top.count)
    """
    _check_kind(tag_content, (metadata.TOP_EXAMPLES,))
    pixels = imaging.as_rgb(_pixels(patches, "patches", ndim=5))
    rows, cols = pixels.shape[:2]
    tiles = pixels.reshape(rows * cols, *pixels.shape[2:])
    atlas, grid = imaging.tile_atlas(tiles, (rows, cols))
    pngs = [imaging.encode_png(atlas)]
    images = [imaging.image_facts(grid, pixels.shape[2:4], len(tiles), 3)]
    scales = None
    if projections is not None:
        projections = np.asarray(projections)
        if projections.shape[:4] != pixels.shape[:4]:
            raise ValueError(
                f"projections of shape {projections.shape} do not match patches {pixels.shape}."
            )
        flat = projections.reshape(rows * cols, *projections.shape[2:])
        converted = [imaging.signed_to_rgb(p) for p in flat]
        atlas, grid = imaging.tile_atlas(np.stack([rgb for rgb, _ in converted]), (rows, cols))
        pngs.append(imaging.encode_png(atlas))
        images.append(imaging.image_facts(grid, pixels.shape[2:4], len(tiles), 3))
        scales = np.reshape([scale for _, scale in converted], (rows, cols))
    shape = (rows, cols)
    facts = {
        "atlases": ["patches", "projections"][: len(pngs)],
        "filters": _int_list(filters),
        "indices": np.asarray(indices, dtype=np.int64).reshape(shape),
        "activations": np.asarray(activations, dtype=np.float64).reshape(shape),
        "positions": np.asarray(positions, dtype=np.int64).reshape(*shape, 2),
        "boxes": np.asarray(boxes, dtype=np.int64).reshape(*shape, 4),
        "projection_scale": scales,
        "receptive_field": {
            key: _int_list(getattr(receptive_field, key)) for key in ("size", "stride", "start")
        },
        "reference_count": int(reference_count),
    }
    if len(facts["filters"]) != rows:
        raise ValueError(f"{len(facts['filters'])} filters for {rows} rows of patches.")
    return _write(tag_content, step, facts, images, pngs, seconds)


def write_metrics(values, step=None):
    """Write ``cnnvis_metrics/<name>`` scalars (scalars plugin) for one logged epoch.

    Args:
        values: ``{name: float}``, e.g. ``{"deletion_auc/gradcam": 0.21}``; non-finite
            values are skipped.
        step: the step.

    Example:
        >>> write_metrics({"dead_filters/conv1": 2, "sparsity/conv1": 0.61}, step=4)
    """
    for name, value in values.items():
        if value is not None and math.isfinite(float(value)):
            tf.summary.scalar(metadata.SCALAR_TAG_PREFIX + name, float(value), step=step)


def write_timings(seconds_by_view, step=None):
    """Write ``cnnvis_seconds/<view>`` scalars (scalars plugin) for one logged epoch."""
    for view, seconds in seconds_by_view.items():
        tf.summary.scalar(metadata.TIMING_TAG_PREFIX + view, float(seconds), step=step)


def decode_step(blob_values):
    """Split one stored step (a sequence of blobs) into its facts and its PNG bytes.

    Args:
        blob_values: the step's blobs: a list of bytes, a numpy array or a string tensor.

    Returns:
        ``(facts, pngs)``: the facts dict and the list of PNG bytes, in order.

    Raises:
        ValueError: if the blobs do not follow the format (no facts, wrong image count).

    Example:
        >>> facts, pngs = decode_step([provider.read_blob(blob_key=b.blob_key) for b in seq])
    """
    if isinstance(blob_values, tf.Tensor):
        blob_values = blob_values.numpy()
    blobs = [bytes(b) for b in np.asarray(blob_values, dtype=object).reshape(-1)]
    if not blobs:
        raise ValueError("A cnnvis step needs at least one blob (the facts); got none.")
    try:
        facts = json.loads(blobs[0].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"The first blob of a cnnvis step is not JSON facts: {error}") from None
    if len(facts.get("images", ())) != len(blobs) - 1:
        raise ValueError(
            f"facts describe {len(facts.get('images', ()))} images but {len(blobs) - 1} follow."
        )
    return facts, blobs[1:]


def decode_tiles(facts, pngs):
    """Decode every PNG of a step and cut atlases into tiles.

    Returns:
        A list with one uint8 array (count, h, w, channels) per PNG.
    """
    tiles = []
    for image, png in zip(facts["images"], pngs):
        pixels = imaging.decode_png(png)
        tiles.append(imaging.untile_atlas(pixels, image["grid"], image["tile"], image["count"]))
    return tiles


def recover_feature_maps(facts, pngs):
    """Approximate (N, h, w, C) float32 feature maps back from a stored ``feature_maps`` step.

    Values are within ``(max - min) / 510`` of the originals (the 8-bit quantization).
    """
    tiles = decode_tiles(facts, pngs)
    pixels = np.stack([np.moveaxis(t[..., 0], 0, -1) for t in tiles]).astype(np.float64)
    low = np.asarray(facts["min"], dtype=np.float64)[:, None, None, :]
    high = np.asarray(facts["max"], dtype=np.float64)[:, None, None, :]
    return (low + pixels / 255.0 * (high - low)).astype(np.float32)


# ---------------------------------------------------------------------------------------


def _write_single_tiles(tag_content, step, pixels, facts, seconds):
    """Write one 1x1 "atlas" PNG per probe from uint8 (N, H, W, c) pixels."""
    pngs = [imaging.encode_png(p) for p in pixels]
    images = [
        imaging.image_facts((1, 1), pixels.shape[1:3], 1, pixels.shape[-1], probe)
        for probe in range(len(pixels))
    ]
    return _write(tag_content, step, facts, images, pngs, seconds)


def _write(tag_content, step, facts, images, pngs, seconds):
    """Write facts + PNGs as one rank-1 string tensor under the tag of ``tag_content``."""
    facts = {**facts, "seconds": float(seconds), "images": images}
    blob = json.dumps(_jsonable(facts), allow_nan=False, sort_keys=True).encode("utf-8")
    tag = metadata.tag_name(tag_content["kind"], tag_content.get("layer"))
    return tf.summary.write(
        tag,
        tensor=tf.constant([blob, *pngs], dtype=tf.string),
        step=step,
        metadata=metadata.create_summary_metadata(tag_content),
    )


def _with_metrics(facts, metrics):
    """``facts`` plus the metric facts, which must not replace any of them."""
    if not metrics:
        return facts
    clash = sorted(set(facts) & set(metrics))
    if clash:
        raise ValueError(f"metrics must not replace the facts {clash}.")
    return {**facts, **metrics}


def _check_kind(tag_content, kinds):
    """Raise if ``tag_content`` is not of one of ``kinds``."""
    kind = tag_content.get("kind") if isinstance(tag_content, dict) else None
    if kind not in kinds:
        raise ValueError(f"This writer takes content of kind {list(kinds)}; got {kind!r}.")


def _pixels(images, what, ndim):
    """uint8 pixels from uint8 images or floats in [0, 1]."""
    images = np.asarray(images)
    if images.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions; got shape {images.shape}.")
    return images if images.dtype == np.uint8 else imaging.to_uint8(images)


def _jsonable(value):
    """numpy and non-finite floats made JSON-safe (NaN/Inf become null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, bool, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _int_list(values):
    """A list of Python ints, or None."""
    return None if values is None else [int(v) for v in np.asarray(values).reshape(-1)]


def _shape_list(shape):
    """A shape as a list of ints (unknown dimensions as None), or None."""
    return None if shape is None else [None if d is None else int(d) for d in shape]


def _float_list(values):
    """A list of Python floats (non-finite kept for ``_jsonable`` to null), or None."""
    return None if values is None else [float(v) for v in np.asarray(values).reshape(-1)]

"""Writers for cnnvis summaries. This docstring is the stored format, exactly.

Run and tags
    The callback writes to its own run directory ``<log_dir>/cnnvis`` (``metadata.RUN_SUBDIR``).
    One tag per (kind, layer): ``"<kind>/<layer path>"`` (e.g. ``"grad_cam/conv3"``,
    ``"feature_maps/vgg16/block1_conv1"``), plus the tag ``"probes"``. Views at the model's
    input (family ``attribution``) have the one "layer" ``input``: ``"smoothgrad/input"``.
    The step is the epoch:
    0 is the untrained network (logged before the first epoch), ``e`` is after epoch ``e``.
    ``tb-cnnvis log`` (post hoc, ``tb_cnnvis.cli``) writes one step per saved checkpoint,
    numbered by the number in its file name (else 0, 1, ...).

Metadata (``metadata.create_summary_metadata``)
    ``plugin_data.plugin_name = "cnnvis"``, ``data_class = DATA_CLASS_BLOB_SEQUENCE``, and
    ``plugin_data.content`` = UTF-8 JSON with
    ``{"version": 2, "kind", "layer", "layer_index", "layer_class", "output_shape": [h, w, c],
    "input_shape": [H, W, C], "probe_count": N, "class_names": [...] or null,
    "default_layer": bool}`` (``layer``/``layer_index``/``layer_class``/``output_shape`` are
    null for ``probes``; for the ``attribution`` family they are ``"input"``, ``-1``,
    ``"InputLayer"`` and the input shape ``[H, W, C]``; ``default_layer``: the callback chose
    the layer itself, by ``views.Family.default_layers``; absent in logs written before it
    existed). ``version`` is 3 (``metadata.FORMAT_VERSION``): PNGs and facts in pixel files
    (below). Version 2 kept the facts in the event files, version 1 (tb-cnnvis 0.1) the PNGs
    too; steps with several classes per probe (below) add to any layout without changing
    the meaning of anything in it. Inside a ``RunWriter`` step the metadata is written with
    a tag's first value in each event file only (later values carry none), as TensorFlow
    1's ``FileWriter`` did; both of TensorBoard's loaders take it from the first value.
    In a tag, a layer path's ``%``, ``"`` and ``\\`` are written ``%25``, ``%22`` and
    ``%5C`` (``metadata.TAG_ESCAPES``; TensorBoard's Rust data server cannot read blobs of
    tags holding them); ``layer`` keeps the true path.

Values
    Each step's value is a rank-1 ``tf.string`` tensor (a blob sequence) whose ``blob[0]``
    is UTF-8 JSON: the step's *facts*, or (version 3) a reference to them. Its PNG images
    (8-bit, lossless) and its facts are stored in one of three ways:

    - Pixel files (version 3, all that ``blobstore.RunWriter`` writes): the value is
      ``[reference]`` alone, ``reference = {"facts": {"file": "pixels/<step>-<12 hex>.bin",
      "span": [offset, length, crc32]}}``: the facts are ``length`` bytes of UTF-8 JSON at
      ``offset`` of ``<run dir>/plugins/cnnvis/<file>`` (one file per logged step: every
      tag's PNGs in a row, then every tag's facts; renamed into place only after the step's
      events are flushed, so a step is served only whole: ``tb_cnnvis.blobstore``). The
      facts hold ``"pixels": {"file", "spans": [[offset, length, crc32], ...]}``: PNG ``i``
      is ``length`` bytes at ``offset`` of the same file (a reader takes the file from the
      reference). A step without images has no ``"pixels"``.
    - Version 2: the value is ``[facts]``, the facts with the same ``"pixels"`` key, the
      PNGs in the pixel file it names.
    - In the events (version 1, or a writer called outside a ``RunWriter`` step): no
      ``"pixels"`` key; ``blob[1:]`` are the PNGs.

    ``facts["images"]`` describes each PNG, in order (``facts["images"][i]`` describes
    PNG ``i``: ``blob[i + 1]`` or span ``i``)::

        {"probe": int | null,       # which probe image it belongs to, null if none
         "grid": [rows, cols],      # an atlas of tiles laid out row-major
         "tile": [h, w],            # tile size in pixels (no gaps between tiles)
         "count": n,                # number of tiles used (the last row may be short)
         "channels": 1 | 3,         # grayscale intensities or RGB
         "class_index": int}        # only in steps with several classes per probe (below):
                                    # the class this image's map explains

    Tile ``k`` of an atlas sits at row ``k // cols``, column ``k % cols``.

    Facts common to every kind: ``"seconds"`` (time spent computing this view at this step)
    and ``"images"``; any step may also carry ``"notes": [str]`` (whole sentences the
    dashboard shows above the step's cards: which backprop rule really ran, an ascent
    stopped early, what the cost budget reduced) and ``"budget": {"filters"?: int,
    "steps"?: int, "probes"?: int, "layers"?: int, "deletion_steps"?: int}`` (what the cost
    budget, ``tb_cnnvis.budget``, reduced at this step; absent when nothing was). Per family of kinds (``tb_cnnvis.views`` registers each family's
    kinds; its module writes them, ``tb_cnnvis.views.<module>.write_*``):

    ``probes`` (the first logged step only: 0 during ``fit``): one RGB PNG per probe image (display RGB, see
        ``input_range``); facts ``{"labels": [int] | null}``.
    ``feature_maps`` (family ``feature_maps``): one grayscale atlas per probe image, one
        tile per stored channel, each tile scaled from its own (probe, channel) min..max to
        0..255; facts ``{"channels": [int] * K`` (the channels stored, in tile order: all C
        in order, or within the byte budget the K most active, most active first),
        ``"channel_count": C, "map_size": [h, w]`` (the layer's true map size; tiles larger
        than 64 pixels a side are stored downsampled by an integer factor, area mean, so
        ``images[i]["tile"]`` may be smaller), ``"min": [[float] * K] * N, "max": [[float]
        * K] * N, "mean": [[float] * K] * N}`` (of the true maps, per probe and stored
        channel) so a reader recovers ``value = min + pixel / 255 * (max - min)`` and can
        rescale per layer. Logs written before the byte budget have no ``channels``,
        ``channel_count`` or ``map_size``: then every channel is stored, in order.
    ``filter_patterns`` (family ``filter_patterns``; activation maximization,
        ``tb_cnnvis.algorithms.filters``): up to three atlases, named in order by
        ``facts["atlases"]``, all with the same ``tile`` (the display crop, see below) and
        ``probe`` null:
        ``"patterns"`` (always ``blob[1]``): one RGB tile per filter (display RGB), tile
        ``f`` = ``facts["filters"][f]``;
        ``"transparency"`` (MaCo only): one grayscale tile per filter, laid out like the
        patterns: MaCo's attribution (Fel et al. 2023; absolute gradients summed over the
        optimization) as opacity, 0 transparent .. 255 opaque, each tile scaled by its
        own 99th percentile: draw the pattern with this alpha;
        ``"diversity"`` (``filter_diversity`` > 1): ``grid = [F, n]``, row ``f`` the ``n``
        patterns of filter ``facts["filters"][f]`` (column 0 is the tile of
        ``"patterns"``), pushed apart by Lucid's Gram-matrix diversity penalty.
        Each tile is the *display crop* of the canvas the pattern was optimized on: the
        receptive field of the canvas's central unit, clipped to the canvas (a 3x3-field
        layer stores 3x3 tiles; a layer whose field covers the canvas stores it whole).
        Facts ``{"atlases": [str], "filters": [int], "activations": [float],
        "start_activations": [float], "dead": [int]`` (the filter indices that never
        responded: the optimization could not move their activation), ``"preset": str |
        null`` (``"fast"``, ``"quality"``, ``"maco"``, ``"custom"``), ``"canvas": [H, W]``
        (the canvas: about twice the receptive field, at most the input size), ``"crop":
        [top, left, bottom, right]`` (the tiles' box in the canvas, end exclusive),
        ``"receptive_field": {"size": [h, w], "stride": [h, w], "start": [h, w]} | null``
        (at the canvas size), ``"seeded": [int]``
        (filters that stayed dead from the seeded start and were optimized again from
        the data crop that excites them most), ``"spectrum": "reference_images" |
        "probe_images" | "power_law" | null`` (where MaCo's magnitude spectrum came from:
        estimated from those images, or a 1/f amplitude law; a data-seeded filter keeps
        the magnitude of its own crop; null for other presets),
        ``"diversity": n`` (patterns per filter, 1 without diversity),
        ``"diversity_activations": [[float] * n] * F | null}`` (each member's mean
        activation; null when ``n`` is 1). Logs written before these keys existed have
        only the patterns atlas and the first five keys.
    ``deepdream`` (family ``deepdream``; Mordvintsev et al. 2015): one RGB PNG per probe
        image at input resolution (display RGB): the probe after gradient ascent on the
        layer's mean squared positive activation over a few octaves; facts
        ``{"objective": [float] * N`` (that mean for each dream), ``"start_objective":
        [float] * N`` (for each probe image), ``"octaves": [[h, w]]`` (the sizes dreamt
        at, smallest first), ``"steps": int}`` (ascent steps per octave).
    family ``cam`` (``grad_cam``, ``gradcam_plus_plus``, ``score_cam``, ``layercam``,
        ``hirescam``, ``xgradcam``, ``eigencam``): one grayscale PNG per map at input
        resolution, the map in [0, 1] times 255; facts ``{"class_index": [int]`` (class
        explained), ``"predicted": [int], "probability": [float]`` (of the predicted
        class), ``"target_probability": [float], "labels": [int] | null,
        "cam_max": [float]}`` (the map's raw maximum before normalization). ``eigencam``
        is class-agnostic: its map is the same for every class, its ``class_index`` is the
        class its metrics follow, and it always has one map per probe.
    family ``attribution`` (``smoothgrad``, ``integrated_gradients``, ``occlusion``; tags
        ``"<kind>/input"``): one grayscale PNG per map at input resolution holding a signed
        map (summed over input channels; positive where the pixels raise the class score):
        ``pixel = round(128 + 127 * value / scale)``, so 128 is zero, 255 is ``+scale``,
        1 is ``-scale`` and 0 is unused; a reader recovers ``value = (pixel - 128) / 127 *
        scale``. Facts ``{"class_index": [int], "predicted": [int], "probability": [float],
        "target_probability": [float], "labels": [int] | null`` (as for ``cam``),
        ``"scale": [float]`` (each map's largest absolute value; 0.0 for an all-zero map),
        ``"settings": {name: value}}`` (the method's settings: ``samples``, ``noise`` (a
        fraction of the input range), ``seed`` for SmoothGrad; ``steps``, ``baseline`` for
        integrated gradients; ``patch_size``, ``stride``, ``baseline`` for occlusion; a
        baseline is ``"low"`` (the input range's low end), ``"grey"`` (its middle), a
        number, one number per channel, or ``"array"``).

    Targets (families ``cam`` and ``attribution``; ``tb_cnnvis.targets``): what each map
        explains, a score of the explained output's logits. Facts ``"targets": [str] * M
        | null`` (each map's target in words: ``"class 1 (dog): logit"``, ``"class 0
        (cat): negated logit"`` for a one-unit binary head, ``"regression: raise"``,
        ``"segmentation: class 2 (road) over its predicted mask"``, ``"custom: <name>"``),
        ``"head": str | null`` (the explained output's kind: ``"softmax"``,
        ``"multilabel"``, ``"binary"``, ``"regression"``, ``"segmentation"`` or
        ``"none"``) and ``"values": [float] * M | null`` (a regression head's output value
        for each map's probe; null for other heads). ``class_index`` is -1 and
        ``probability``/``target_probability`` null where a target has no class (a
        regression, a custom score); for a binary head the classes are 0 and 1 and the
        probabilities ``1 - p`` and ``p``; for a segmentation head ``predicted`` is the
        class on the most pixels, ``probability`` its share of the pixels and
        ``target_probability`` the explained class's mean probability over its pixels.
        ``labels`` holds floats for a regression head (its true values). For a
        segmentation target each map's PNG is followed by its mask's: a grayscale PNG at
        the map's size, 255 on the pixels the score summed over (the given mask, or the
        pixels predicted as the class), 0 elsewhere, whose ``images`` entry is the map's
        with ``"role": "mask"`` (a map's entry has no ``role``); per-map facts still have
        one entry per map. Logs written before targets existed lack the three keys and
        the masks: their maps explain a class's logit.

    Several classes per probe (families ``cam`` and ``attribution``; the callback's
        ``cam_classes``): with one class per probe (the default) a step holds one map per
        probe, ``images[i]`` is probe ``i``, and its ``images`` entries have no
        ``class_index``. With ``K > 1`` classes per probe a step holds ``M = N * K`` maps:
        ``images[i]`` has ``"probe": i // K`` and ``"class_index"`` (equal to
        ``facts["class_index"][i]``); the ``K`` maps of one probe are consecutive, most
        probable class first (``cam_classes=k``: the ``k`` most probable classes) or in the
        order of the list given (``cam_classes=[...]``). Every per-map fact (all lists
        above but ``labels``, and the metric facts below) has ``M`` entries, entry ``i``
        for ``images[i]``; ``predicted`` and ``probability`` repeat for the maps of one
        probe; ``labels`` keeps one entry per probe.
    family ``projection`` (``deconvnet``, ``guided_backprop``, ``saliency``): one RGB PNG per probe image at input
        resolution: the projection divided by twice its largest absolute value plus 0.5
        (grey is zero); facts ``{"channel": [int], "activation": [float],
        "position": [[y, x]], "scale": [float], "rule": str}`` (the unit projected, its value
        and place, the largest absolute value of the projection, and the backprop rule
        that really ran: the view's, or ``"gradient"`` with no ReLU on the way).

    ``top_examples`` (family ``top_examples``; reference images, Zeiler & Fergus 2014): two
        RGB atlases, each with
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
    ``feature_maps``: ``"dead_filters": [int]`` (channels that never respond: one value on
        every probe image and position) and ``"sparsity": float`` (the fraction of the layer's activations <= 0).
    ``filter_patterns``: ``"drift": [float] * F | null``: per filter, Spearman's rank
        correlation of the pattern with the one logged at step ``"drift_from": int | null``
        (the previous logged step; null at the first).
    families ``cam`` and ``attribution`` (one entry per map, ``M``: see above):
        ``"drift": [float | null] * M | null`` and ``"drift_from"``: per map, the rank
        correlation of the map with the one in its place at the previous logged step (null
        where that one explained another class); ``"pointing_hits": [bool] * M | null``
        (the map's maximum lies within 15/224 of the image's larger side of the object;
        only with probe masks); ``"deletion_auc": [float] * M | null`` and
        ``"deletion_auc_random": [float] * M | null``: deletion AUC (Petsiuk et al. 2018;
        16 steps, blurred baseline) of the explained class's probability for the map and
        for a seeded random map (lower is more faithful), computed for the view's last
        layer only (null on other layers; attributions have one). Attributions are judged
        by their positive part (the evidence for the class).

Per-epoch scalars (scalars plugin, run ``cnnvis``)
    ``cnnvis_seconds/<view>``: seconds spent per view per logged epoch (``metrics``: seconds
    spent on the metrics below). ``cnnvis_metrics/<name>`` (``metadata.SCALAR_TAG_PREFIX``)
    with ``<method>`` the ``metric_name`` of a CAM or attribution view (``gradcam``,
    ``gradcampp``, ``scorecam``, ``layercam``, ``hirescam``, ``xgradcam``, ``eigencam``,
    ``smoothgrad``, ``integrated_gradients``, ``occlusion``) and ``<layer>`` a layer path;
    CAM metrics describe the view's last layer:

    - ``deletion_auc/<method>``, ``deletion_auc/random``: mean deletion AUCs (above);
    - ``pointing_game/<method>``: the fraction of pointing-game hits (with probe masks);
    - ``cam_drift/<method>``: the mean rank correlation of the maps with the previous
      logged step (over the maps that have one);
    - ``pattern_drift/<layer>``: the mean filter-pattern rank correlation, likewise;
    - ``dead_filters/<layer>``: the number of dead filters; ``sparsity/<layer>``: as above.

    Drift scalars start at the second logged step of their view.
"""

import json
import math

import numpy as np

from tb_cnnvis import blobstore, imaging, metadata
from tb_cnnvis.blobstore import RunWriter
from tb_cnnvis.facts import (
    check_kind,
    content,
    content_for_layer,
    float_list,
    int_list,
    jsonable,
    pixels_of,
    shape_list,
    with_metrics,
)

__all__ = [
    "RunWriter",
    "check_kind",
    "content",
    "content_for_layer",
    "float_list",
    "int_list",
    "jsonable",
    "pixels_of",
    "shape_list",
    "with_metrics",
    "write_metrics",
    "write_probes",
    "write_single_tiles",
    "write_step",
    "write_timings",
]


def write_probes(tag_content, images, step=None, *, labels=None, seconds=0.0):
    """Write the probe images (display RGB) as the ``probes`` tag.

    Args:
        tag_content: ``content("probes", ...)``.
        images: (N, H, W, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step (default: the writer's default step).
        labels: N labels (class indices; a regression head's values as floats), or None.
        seconds: time spent preparing them.

    Returns:
        True if written (a default writer was set), as ``tf.summary.write``.

    Example:
        >>> with writer.as_default(step=0):
        ...     write_probes(content("probes", input_shape=(64, 64, 3), probe_count=4), rgb)
    """
    check_kind(tag_content, None)
    pixels = imaging.as_rgb(pixels_of(images, "images", ndim=4))
    values = None if labels is None else [v.item() for v in np.asarray(labels).reshape(-1)]
    facts = {"labels": values}
    return write_single_tiles(tag_content, step, pixels, facts, seconds)


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
            _write_scalar(metadata.SCALAR_TAG_PREFIX + name, float(value), step)


def write_timings(seconds_by_view, step=None):
    """Write ``cnnvis_seconds/<view>`` scalars (scalars plugin) for one logged epoch."""
    for view, seconds in seconds_by_view.items():
        _write_scalar(metadata.TIMING_TAG_PREFIX + view, float(seconds), step)


def _write_scalar(tag, value, step):
    """One scalar: kept for the logged step being collected, else written now."""
    pending = blobstore.pending_step()
    if pending is not None:
        pending.add_scalar(tag, value, step)
        return
    import tensorflow as tf

    tf.summary.scalar(tag, value, step=step)


def write_single_tiles(tag_content, step, pixels, facts, seconds, probes=None, classes=None):
    """Write one 1x1 "atlas" PNG per map from uint8 (M, H, W, c) pixels.

    Map ``i`` is of probe ``i``; with ``probes`` (and ``classes``), of probe ``probes[i]``
    for class ``classes[i]``, which its ``images`` entry then says (``"class_index"``).
    """
    pngs = [imaging.encode_png(p) for p in pixels]
    shape = pixels.shape[1:3], 1, pixels.shape[-1]
    if probes is None:
        images = [imaging.image_facts((1, 1), *shape, probe) for probe in range(len(pixels))]
    else:
        images = [
            imaging.image_facts((1, 1), *shape, probe, class_index=c)
            for probe, c in zip(int_list(probes), int_list(classes))
        ]
    return write_step(tag_content, step, facts, images, pngs, seconds)


def class_layout(probe, class_index):
    """``write_single_tiles`` arguments for maps of several classes per probe (``probe`` not
    None), or none for one map per probe."""
    if probe is None:
        return {}
    if len(probe) != len(class_index):
        raise ValueError(f"probe has {len(probe)} entries for {len(class_index)} maps.")
    return {"probes": probe, "classes": class_index}


def write_step(tag_content, step, facts, images, pngs, seconds):
    """Write one step of the tag of ``tag_content``: its facts and its PNGs.

    Inside ``blobstore.RunWriter.step`` (the callback, the CLI, the synthetic writer) the
    step is kept for that logged step's commit: the PNGs and the facts go to its pixel file
    and the event holds a reference to the facts (format version 3). Outside one, the facts
    and PNGs are written now as one rank-1 string tensor (the layout of version 1, which
    later readers read).

    Args:
        tag_content: the tag's content (``content(...)``).
        step: the step (None: the writer's default step).
        facts: the step's facts, without ``seconds`` and ``images`` (added here).
        images: one ``imaging.image_facts`` entry per PNG.
        pngs: the PNG bytes, in order.
        seconds: time spent computing the view.

    Returns:
        True if written (or kept for the logged step's commit).
    """
    facts = jsonable({**facts, "seconds": float(seconds), "images": images})
    tag = metadata.tag_name(tag_content["kind"], tag_content.get("layer"))
    pending = blobstore.pending_step()
    if pending is not None:
        pending.add(tag, tag_content, step, facts, pngs)
        return True
    import tensorflow as tf

    blob = json.dumps(facts, allow_nan=False, sort_keys=True).encode("utf-8")
    return tf.summary.write(
        tag,
        tensor=tf.constant([blob, *pngs], dtype=tf.string),
        step=step,
        metadata=metadata.create_summary_metadata(tag_content),
    )

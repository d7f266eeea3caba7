"""Writers for cnnvis summaries. This docstring is the stored format, exactly.

Run and tags
    The callback writes to its own run directory ``<log_dir>/cnnvis`` (``metadata.RUN_SUBDIR``).
    One tag per (kind, layer): ``"<kind>/<layer path>"`` (e.g. ``"grad_cam/conv3"``,
    ``"feature_maps/vgg16/block1_conv1"``), plus the tag ``"probes"``. The step is the epoch:
    0 is the untrained network (logged in ``on_train_begin``), ``e`` is after epoch ``e``.

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

    ``probes`` (step 0 only): one RGB PNG per probe image (display RGB, see
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

Per-epoch scalars
    ``cnnvis_seconds/<view>`` (scalars plugin): seconds spent per view per logged epoch.
"""

"""A deep network's cnnvis run for the dashboard's layer list, written through the real writers.

``write_deep_run`` writes feature maps of a MobileNetV2-like layer sequence, 153 layers in
model order, one step each: a top-level ``rescaling`` layer, 149 layers inside a nested model
``mobilenetv2_1.00_224`` at five resolution stages (112x112 down to 7x7), and three top-level
layers after it. The last layer at each size where a convolution runs is marked
``default_layer`` (the callback's one-per-stage choice), so the run mixes default and
user-named layers. One of them, ``BUDGET_LAYER``, is logged at
steps 0..3 the way the byte budget stores a large layer: a subset of its 16 channels
(``BUDGET_CHANNELS``, most active first, a different subset at each step, and channel 5 left
out at step 3), downsampled by 2 (112x112 maps stored as 56x56 tiles). Each channel's map
is the same pattern at every step, so its stored pixels are too: a view that follows a
channel across epochs shows identical tiles.

Used by ``tests/test_browser_layers.py`` and ``benchmarks/bench_browser.py``.

Example:
    >>> info = write_deep_run("/tmp/logs/deep/cnnvis")
    >>> len(info["layers"]), info["layers"][0]
    (153, 'rescaling')
"""

import numpy as np

MODEL = "mobilenetv2_1.00_224"
"""The nested model's name (the path prefix of its layers)."""

BUDGET_LAYER = f"{MODEL}/block_1_expand_relu"
"""The layer stored as the byte budget stores a large one (a subset, downsampled)."""

BUDGET_CHANNELS = {0: [5, 2, 9, 0], 1: [2, 7, 5, 11], 2: [7, 5, 3, 2], 3: [7, 3, 11]}
"""The channels of ``BUDGET_LAYER`` stored at each step, in tile order."""

PROBES = 2
STAGES = {1: 56, 3: 28, 6: 14, 13: 7}
"""The blocks whose depthwise convolution halves the size (MobileNetV2's strides)."""


def layer_sequence():
    """The layers of the run in model order: ``[(path, class, (h, w, c))]``."""
    layers = []

    def add(name, cls, side, channels=8):
        layers.append((f"{MODEL}/{name}", cls, (side, side, channels)))

    layers.append(("rescaling", "Rescaling", (224, 224, 3)))  # top level, before the model
    side = 112
    add("Conv1", "Conv2D", side)
    add("bn_Conv1", "BatchNormalization", side)
    add("Conv1_relu", "ReLU", side)
    for part, cls in (("depthwise", "DepthwiseConv2D"), ("depthwise_BN", "BatchNormalization"),
                      ("depthwise_relu", "ReLU"), ("project", "Conv2D"),
                      ("project_BN", "BatchNormalization")):  # fmt: skip
        add(f"expanded_conv_{part}", cls, side)
    for block in range(1, 17):
        before = side  # a stage starts at a strided depthwise: the expansion is still before it
        side = STAGES.get(block, side)
        for part, cls in (("expand", "Conv2D"), ("expand_BN", "BatchNormalization"),
                          ("expand_relu", "ReLU"), ("depthwise", "DepthwiseConv2D"),
                          ("depthwise_BN", "BatchNormalization"), ("depthwise_relu", "ReLU"),
                          ("project", "Conv2D"), ("project_BN", "BatchNormalization")):  # fmt: skip
            name = f"block_{block}_{part}"
            size = before if part.startswith("expand") else side
            add(name, cls, size, 16 if f"{MODEL}/{name}" == BUDGET_LAYER else 8)
        if block in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15):
            add(f"block_{block}_add", "Add", side)
    add("Conv_1", "Conv2D", 7)
    add("Conv_1_bn", "BatchNormalization", 7)
    add("out_relu", "ReLU", 7)
    for name, cls in (("head_conv", "Conv2D"), ("head_bn", "BatchNormalization"),
                      ("head_relu", "ReLU")):  # fmt: skip
        layers.append((name, cls, (7, 7, 8)))
    return layers


def channel_maps(shape, probes=PROBES):
    """(probes, h, w, c) maps where channel ``c`` is its own pattern and range, the same at every
    step."""
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w].astype("float32")
    ks = np.arange(c, dtype="float32")
    maps = np.sin(xx[..., None] * (ks + 1) / 9) + np.cos(yy[..., None] * (ks + 2) / 13)
    maps = maps * (1 + ks / 4)  # each channel its own range, for per-layer scaling
    maps = maps[None] + np.arange(probes, dtype="float32")[:, None, None, None] * 0.25
    return np.maximum(maps, 0).astype("float32")


def write_deep_run(run_dir):
    """Write the run to ``run_dir`` (e.g. ``<logdir>/deep/cnnvis``).

    Returns:
        ``{"layers": [path], "defaults": [path], "stages": {path: "h×w"}}``, in model order.
    """
    import tensorflow as tf

    from tb_cnnvis import summary, views

    layers = layer_sequence()
    # The callback's choice (views.registry.representative_layers): the last layer at each
    # spatial size, for the sizes at which a convolution runs.
    last, convolved = {}, set()
    for path, cls, shape in layers:
        last[shape[:2]] = path
        if "Conv" in cls:
            convolved.add(shape[:2])
    defaults = {path for size, path in last.items() if size in convolved}
    common = {"input_shape": (224, 224, 3), "probe_count": PROBES, "class_names": None}
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        for index, (path, cls, shape) in enumerate(layers):
            content = summary.content(
                "feature_maps", path, layer_index=index, layer_class=cls, output_shape=shape,
                default_layer=path in defaults, **common,
            )  # fmt: skip
            maps = channel_maps(shape)
            if path != BUDGET_LAYER:
                views.feature_maps.write_feature_maps(
                    content, maps, 0, factor=2 if shape[0] > 64 else 1
                )
                continue
            for step, channels in BUDGET_CHANNELS.items():
                views.feature_maps.write_feature_maps(
                    content, maps, step, channels=channels, factor=2
                )
    writer.close()
    return {
        "layers": [path for path, _, _ in layers],
        "defaults": [path for path, _, _ in layers if path in defaults],
        "stages": {path: f"{shape[0]}×{shape[1]}" for path, _, shape in layers},
    }

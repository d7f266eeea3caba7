"""tb-cnnvis: see what a convolutional network learns while it trains, in TensorBoard.

Public API (imported lazily, so that TensorBoard can load the plugin without TensorFlow):

    import tb_cnnvis as cv
    cv.conv_layers(model)                          # layers with 4-D outputs, in model order
    cv.feature_maps(model, images, layer)          # (N, h, w, C) layer outputs
    cv.grad_cam(model, images, layer=None, class_index=None, method="gradcam", target=None)
                                                   # also "gradcam++", "xgradcam", "scorecam",
                                                   # "layercam", "hirescam", "eigencam"
    cv.targets.Binary(0)                           # what a class view explains: Class,
                                                   # Binary, Regression, Segmentation, callables
    cv.attribution(model, images, method, class_index=None, **options)  # (N, H, W), signed:
                                                   # "smoothgrad", "integrated_gradients",
                                                   # "occlusion"
    cv.backprop(model, images, layer, channel=None, rule="deconvnet")
    cv.guided_grad_cam(model, images, layer=None, class_index=None)
    cv.filter_patterns(model, layer, filters=None, steps=..., preset="fast", seed=0)
    cv.deepdream(model, images, layer)             # each image with the layer's features amplified
    cv.top_examples(model, reference, layer, k=9)  # top-activating patches + projections
    cv.receptive_field(model, layer)               # exact receptive field of a layer's units
    cv.faithfulness_scores(model, images, maps)    # deletion / insertion AUC vs a random map
    cv.pointing_game(maps, masks, tolerance=0)     # does each map peak on the object?
    cv.randomization_check(model, images)          # Adebayo et al.'s model-randomization test
    cv.CnnVisCallback(log_dir, probe_images, ...)  # logs all views during model.fit
                                                   # (and keeps snapshots for explore mode)
    cv.explore(logdir, models=None, port=0)        # TensorBoard here, live models explorable

Command line: ``tb-cnnvis log --model 'ckpt/*.keras' --images DIR --logdir LOGS`` logs saved
models after the fact (``tb_cnnvis.cli``).

Modules: ``targets`` (what the class views explain) and ``heads`` (what an output is),
``capture`` (layer lookup and graph tracing), ``algorithms`` (pure array
functions), ``imaging`` (normalization, atlases, PNG), ``summary`` (the stored format),
``callback`` (the Keras callback, with ``plan``, ``views``, ``epoch_metrics`` and ``budget``,
what a logged step may cost in training steps), ``cli`` (the ``tb-cnnvis`` command),
``plugin`` (the TensorBoard plugin), ``explorer`` (the tab's explore mode: snapshots
computed on request), ``metadata`` (names shared by writer and server).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "conv_layers": "tb_cnnvis.capture",
    "feature_maps": "tb_cnnvis.algorithms.feature_maps",
    "grad_cam": "tb_cnnvis.algorithms.cam",
    "attribution": "tb_cnnvis.algorithms.attribution",
    "backprop": "tb_cnnvis.algorithms.backprop",
    "guided_grad_cam": "tb_cnnvis.algorithms.backprop",
    "filter_patterns": "tb_cnnvis.algorithms.filters",
    "deepdream": "tb_cnnvis.algorithms.deepdream",
    "FilterPatterns": "tb_cnnvis.algorithms.filters",
    "InputRange": "tb_cnnvis.input_range",
    "top_examples": "tb_cnnvis.algorithms.top_examples",
    "receptive_field": "tb_cnnvis.algorithms.receptive_field",
    "faithfulness_scores": "tb_cnnvis.algorithms.faithfulness",
    "pointing_game": "tb_cnnvis.algorithms.faithfulness",
    "randomization_check": "tb_cnnvis.algorithms.sanity",
    "CnnVisCallback": "tb_cnnvis.callback",
    "explore": "tb_cnnvis.explorer.server",
}

__all__ = sorted(_EXPORTS)

_MODULES = ("targets", "heads")
"""Public modules reachable as attributes (``cv.targets.Binary``), imported on first use."""


def __getattr__(name):
    """Import public names on first use (PEP 562)."""
    if name in _MODULES:
        value = importlib.import_module(f"tb_cnnvis.{name}")
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tb_cnnvis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

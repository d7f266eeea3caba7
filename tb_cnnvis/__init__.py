"""tb-cnnvis: see what a convolutional network learns while it trains, in TensorBoard.

Public API (imported lazily, so that TensorBoard can load the plugin without TensorFlow):

    import tb_cnnvis as cv
    cv.conv_layers(model)                          # layers with 4-D outputs, in model order
    cv.feature_maps(model, images, layer)          # (N, h, w, C) layer outputs
    cv.grad_cam(model, images, layer=None, class_index=None, method="gradcam")
    cv.backprop(model, images, layer, channel=None, rule="deconvnet")
    cv.guided_grad_cam(model, images, layer=None, class_index=None)
    cv.filter_patterns(model, layer, filters=None, steps=..., preset="fast", seed=0)
    cv.CnnVisCallback(log_dir, probe_images, ...)  # logs all views during model.fit

Modules: ``capture`` (layer lookup and graph tracing), ``algorithms`` (pure array
functions), ``imaging`` (normalization, atlases, PNG), ``summary`` (the stored format),
``callback`` (the Keras callback), ``plugin`` (the TensorBoard plugin), ``metadata``
(names shared by writer and server).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "conv_layers": "tb_cnnvis.capture",
    "feature_maps": "tb_cnnvis.algorithms.feature_maps",
    "grad_cam": "tb_cnnvis.algorithms.cam",
    "backprop": "tb_cnnvis.algorithms.backprop",
    "guided_grad_cam": "tb_cnnvis.algorithms.backprop",
    "filter_patterns": "tb_cnnvis.algorithms.filters",
    "FilterPatterns": "tb_cnnvis.algorithms.filters",
    "InputRange": "tb_cnnvis.input_range",
    "CnnVisCallback": "tb_cnnvis.callback",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    """Import public names on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tb_cnnvis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

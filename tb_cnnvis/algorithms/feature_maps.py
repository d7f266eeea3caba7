"""Feature maps: what a layer outputs for given images (Zeiler & Fergus 2014, section 4).

The outputs are read by walking the model's own graph (``capture.run_graph``) up to the
last requested layer only, so layers inside nested models work and the rest of the model
is not computed. One compiled function per (model, set of layers) is built and reused.

Example:
    >>> maps = feature_maps(model, images, "conv2")       # (N, h, w, C)
    >>> both = layer_outputs(model, images, ["conv1", "base/conv2"])
"""

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture


def _build(model_ref, paths):
    """The Python function (traced once) that returns the outputs of ``paths``."""

    def outputs(images, side):
        _, taps = capture.run_graph(model_ref(), images, side=side, taps=paths, stop_at=paths)
        return [taps[path] for path in paths]

    return outputs


def layer_outputs(model, images, layers, *, image_input=None):
    """Outputs of several layers with 4-D outputs, computed in one pass.

    Args:
        model: a built Keras 3 model (Sequential, functional, nested or subclassed).
        images: float32 array (N, H, W, C) or a single image (H, W, C), in the model's own
            input scale; for a model with several inputs, a dict or list of them (see
            ``capture.split_images``).
        layers: layer names or ``"outer/inner"`` paths (a list), or one name.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        A dict ``{path: float32 array (N, h, w, C)}`` in the order given. Images whose
        outputs are not finite get zeros (with a ``RuntimeWarning``).

    Raises:
        ValueError: for an unknown layer, a layer without a (h, w, C) output, or images of
            the wrong shape.

    Example:
        >>> maps = layer_outputs(model, images, ["conv1", "conv2"])
        >>> maps["conv2"].shape
        (4, 8, 8, 6)
    """
    batch, side = capture.split_images(model, images, image_input=image_input)
    names = [layers] if isinstance(layers, (str, int, np.integer)) else list(layers)
    paths = tuple(dict.fromkeys(capture.resolve_layer(model, name).path for name in names))
    function = capture.CACHE.get(
        model, ("feature_maps", paths), lambda model_ref: _build(model_ref, paths)
    )
    values = function(tf.constant(batch), capture.side_constants(side))
    return {
        path: capture.finite_or_zero(value.numpy(), f"feature maps of {path!r}")
        for path, value in zip(paths, values)
    }


def feature_maps(model, images, layer, *, image_input=None):
    """The output of one layer (a conv, pooling, activation... layer with a 4-D output).

    Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014:
    feature maps are the activations a layer produces for an input.

    Args:
        model: a built Keras 3 model (Sequential, functional, nested or subclassed).
        images: float32 array (N, H, W, C) or a single image (H, W, C), in the model's own
            input scale; for a model with several inputs, a dict or list of them.
        layer: the layer's name, an ``"outer/inner"`` path for a layer of a nested model,
            or an index into ``conv_layers(model)``.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        float32 numpy array (N, h, w, C): the layer's output, unscaled.

    Raises:
        ValueError: for an unknown layer (the message lists the usable layers), a layer
            without a (h, w, C) output, or images of the wrong shape.

    Example:
        >>> import tb_cnnvis as cv
        >>> cv.feature_maps(model, images, "conv1").shape
        (4, 16, 16, 8)
    """
    path = capture.resolve_layer(model, layer).path
    maps = layer_outputs(model, images, [path], image_input=image_input)[path]
    return np.asarray(maps, dtype=np.float32)

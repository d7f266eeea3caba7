"""What a layer does that the methods must know: ReLUs (for the backprop rules) and the
final squashing of the model's outputs (skipped to explain logits).

Example:
    >>> relu_role(keras.layers.ReLU())
    'layer'
    >>> final_activation(model)
    'softmax'
"""

import keras
import numpy as np
import tensorflow as tf

from tb_cnnvis.capture.layers import is_graph_model, require_built

_RELUS = {keras.activations.relu: None, keras.activations.relu6: 6.0}  # function: its cap


def relu_role(layer):
    """How ``layer`` applies a ReLU: "layer" (ReLU / Activation('relu')), "activation"
    (a layer with ``activation=relu``), or None. A capped ReLU (``ReLU(6.)``, ``relu6``,
    as in MobileNetV2) counts, as ``min(relu(x), cap)`` (``relu_cap``); a leaky or
    thresholded one does not."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        leaky = any(float(config.get(key) or 0.0) for key in ("negative_slope", "threshold"))
        return None if leaky else "layer"
    if getattr(layer, "activation", None) in _RELUS:
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def relu_cap(layer):
    """The largest value ``layer``'s ReLU lets through (6.0 for ``ReLU(6.)``), or None."""
    if isinstance(layer, keras.layers.ReLU):
        cap = layer.get_config().get("max_value")
        return None if cap is None else float(cap)
    return _RELUS.get(getattr(layer, "activation", None))


def softmax_role(layer):
    """How ``layer`` applies a softmax: "layer" (Softmax / Activation('softmax')),
    "activation" (a layer with ``activation=softmax``), or None."""
    if isinstance(layer, keras.layers.Softmax):
        return "layer"
    if getattr(layer, "activation", None) is keras.activations.softmax:
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def squash_role(layer):
    """How ``layer`` squashes its output into probabilities: a softmax or a sigmoid, as
    "layer" (``Softmax``, ``Activation``) or "activation" (``activation=``), or None."""
    found = softmax_role(layer)
    if found:
        return found
    if getattr(layer, "activation", None) is keras.activations.sigmoid:
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def _graph_output_layer(model, index=0):
    """The layer that produces output ``index`` of a graph model, looking inside nested models."""
    if isinstance(model, keras.Sequential):
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        layer = layers[-1] if layers else None
    else:
        history = getattr(model.outputs[index], "_keras_history", None)
        layer = history.operation if history is not None else None
    if layer is not None and is_graph_model(layer):
        return _graph_output_layer(layer)
    return layer


def output_layers(model):
    """The layer that produces each of the model's outputs (None where no layer does).

    For a subclassed model, the innermost layer call whose result the model returns, as
    recorded in one call (``intercept.structure``).
    """
    require_built(model)
    if is_graph_model(model):
        count = 1 if isinstance(model, keras.Sequential) else len(model.outputs)
        return [_graph_output_layer(model, i) for i in range(count)]
    from tb_cnnvis.capture import intercept
    from tb_cnnvis.capture.layers import all_layers

    by_path = dict(all_layers(model))
    return [by_path.get(path) for path in intercept.structure(model).producers]


def output_keys(model):
    """A name for each of the model's outputs, in ``tf.nest.flatten`` order."""
    require_built(model)
    if is_graph_model(model):
        names = getattr(model, "output_names", None)
        return tuple(str(n) for n in names) if names else ("output",)
    from tb_cnnvis.capture import intercept

    return intercept.structure(model).output_keys


def output_shapes(model):
    """The shape (without the batch dimension) of each of the model's outputs."""
    require_built(model)
    if is_graph_model(model):
        outputs = model.outputs if not isinstance(model, keras.Sequential) else model.outputs[:1]
        return tuple(tuple(t.shape[1:]) for t in outputs)
    from tb_cnnvis.capture import intercept

    return intercept.structure(model).output_shapes


def output_index(model, output=None):
    """Which output (an index into the flattened outputs) ``output`` names.

    Args:
        model: a built Keras model.
        output: an output name or dict key, an index, or None (the only output).

    Raises:
        ValueError: for a model with several outputs and ``output=None``, or an unknown
            output; the message names the outputs.
    """
    keys = output_keys(model)
    if output is None:
        if len(keys) == 1:
            return 0
        raise ValueError(
            f"Model {model.name!r} has {len(keys)} outputs {list(keys)}; choose the one to "
            "explain with output=... (a name or an index)."
        )
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if -len(keys) <= output < len(keys):
            return int(output) % len(keys)
    elif str(output) in keys:
        return keys.index(str(output))
    raise ValueError(
        f"output={output!r} is not an output of model {model.name!r}; its outputs: {list(keys)}."
    )


def select_output(outputs, index):
    """Output ``index`` of a model's result (a tensor, list or dict), as ``output_index``."""
    return tf.nest.flatten(outputs)[index]


def final_activation(model, output=0):
    """How output ``output`` (an index) is squashed: "softmax", "sigmoid" or "linear".

    ``run_graph(..., logits=True)`` skips a final softmax or sigmoid; with "softmax" the
    model's outputs are ``softmax(logits)``, with "sigmoid" ``sigmoid(logits)``, with
    "linear" they are the logits themselves.
    """
    layers = output_layers(model)
    layer = layers[output] if output < len(layers) else None
    if layer is None:
        return "linear"
    if softmax_role(layer):
        return "softmax"
    if getattr(layer, "activation", None) is keras.activations.sigmoid:
        return "sigmoid"
    return "linear"

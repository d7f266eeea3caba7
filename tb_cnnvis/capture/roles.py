"""What a layer does that the methods must know: ReLUs (for the backprop rules) and the
final squashing of the model's outputs (skipped to explain logits).

Example:
    >>> relu_role(keras.layers.ReLU())
    'layer'
    >>> final_activation(model)
    'softmax'
"""

import weakref

import keras

from tb_cnnvis.capture.layers import is_graph_model, require_built

_RELU_ARGS_DEFAULT = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}


def relu_role(layer):
    """How ``layer`` applies a ReLU: "layer" (ReLU / Activation('relu')), "activation"
    (a layer with ``activation=relu``), or None."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        plain = all(
            float(config.get(k) or 0.0) == float(v or 0.0) for k, v in _RELU_ARGS_DEFAULT.items()
        )
        return "layer" if plain else None
    activation = getattr(layer, "activation", None)
    if activation is keras.activations.relu:
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def softmax_role(layer):
    """How ``layer`` applies a softmax: "layer" (Softmax / Activation('softmax')),
    "activation" (a layer with ``activation=softmax``), or None."""
    if isinstance(layer, keras.layers.Softmax):
        return "layer"
    if getattr(layer, "activation", None) is keras.activations.softmax:
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


_RECORDED_OUTPUTS = weakref.WeakKeyDictionary()


def output_layers(model):
    """The layer that produces each of the model's outputs (None where no layer does).

    For a subclassed model, the innermost layer call whose result the model returns, as
    recorded in one call (``intercept.trace_calls``).
    """
    require_built(model)
    if is_graph_model(model):
        count = 1 if isinstance(model, keras.Sequential) else len(model.outputs)
        return [_graph_output_layer(model, i) for i in range(count)]
    if model not in _RECORDED_OUTPUTS:
        from tb_cnnvis.capture import inputs, intercept

        paths = intercept.trace_calls(model, inputs.build_shape(model), _producers)
        _RECORDED_OUTPUTS[model] = paths
    from tb_cnnvis.capture.layers import all_layers

    by_path = dict(all_layers(model))
    return [by_path.get(path) for path in _RECORDED_OUTPUTS[model]]


def _producers(calls, inputs, outputs):
    """For each model output, the path of the innermost call that returned it (or None)."""
    found = []
    for output in outputs:
        leaves = [c for c in calls if not c.children and any(t is output for t in c.outputs)]
        found.append(leaves[-1].path if leaves else None)
    return found


def final_activation(model, output=0):
    """How output ``output`` is squashed: "softmax", "sigmoid" or "linear" (anything else).

    ``run_graph(..., logits=True)`` skips a final softmax; with "softmax" the model's
    outputs are ``softmax(logits)``, with "linear" they are the logits themselves.
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

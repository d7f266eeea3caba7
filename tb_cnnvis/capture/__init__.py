"""Find layers in any Keras model and run the model with taps, ReLU rules and logits.

Modules:
    ``layers``: layer lookup by name or ``"outer/inner"`` path (Sequential, functional,
        nested and subclassed models), ``conv_layers``.
    ``inputs``: the model's inputs and outputs, checks of image batches, side inputs.
    ``held``: side inputs held at fixed values while an image is optimized.
    ``roles``: ReLUs and final activations (what the backprop rules and logits need).
    ``intercept``: the model's own ``call`` run with its layers intercepted
        (``run_graph``), or recorded (``trace_calls``).
    ``cache``: compiled functions built once per model, never keeping it alive.

Example:
    >>> from tb_cnnvis import capture
    >>> capture.conv_layers(model)
    ['conv1', 'conv2', 'vgg16/block5_conv3']
    >>> outputs, taps = capture.run_graph(model, images, taps=["conv2"], logits=True)
"""

from tb_cnnvis.capture.cache import CACHE, CompiledCache, total_traces
from tb_cnnvis.capture.held import fingerprint, holding
from tb_cnnvis.capture.inputs import (
    InputSpec,
    assemble,
    check_images,
    finite_or_zero,
    held_values,
    input_shape,
    input_spec,
    side_constants,
    split_images,
    take_rows,
)
from tb_cnnvis.capture.intercept import Call, Record, run_graph, structure, trace_calls
from tb_cnnvis.capture.layers import (
    LayerRef,
    all_layers,
    conv_layers,
    is_conv_like,
    is_convolution,
    is_graph_model,
    is_preprocessing,
    iter_layers,
    layer_refs,
    require_tensorflow_backend,
    resolve_layer,
    select_layers,
    sublayers,
)
from tb_cnnvis.capture.roles import (
    final_activation,
    output_index,
    output_keys,
    output_layers,
    output_shapes,
    relu_cap,
    relu_role,
    select_output,
    softmax_role,
    squash_role,
)

__all__ = [
    "CACHE",
    "Call",
    "CompiledCache",
    "InputSpec",
    "LayerRef",
    "Record",
    "all_layers",
    "assemble",
    "check_images",
    "conv_layers",
    "final_activation",
    "fingerprint",
    "finite_or_zero",
    "held_values",
    "holding",
    "input_shape",
    "input_spec",
    "is_conv_like",
    "is_convolution",
    "is_graph_model",
    "is_preprocessing",
    "iter_layers",
    "layer_refs",
    "output_index",
    "output_keys",
    "output_layers",
    "output_shapes",
    "relu_cap",
    "relu_role",
    "require_tensorflow_backend",
    "resolve_layer",
    "run_graph",
    "select_layers",
    "select_output",
    "side_constants",
    "softmax_role",
    "split_images",
    "squash_role",
    "structure",
    "sublayers",
    "take_rows",
    "total_traces",
    "trace_calls",
]

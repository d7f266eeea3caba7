"""Model-randomization sanity check for saliency methods (Adebayo et al. 2018).

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018: re-initialize the
weights of a trained model layer by layer from the top down ("cascading randomization")
and compare each method's maps with the original ones. A method whose maps stay the same
while the model is destroyed shows the image, not what the model learned. The paper finds
that Grad-CAM and the plain gradient change, while guided backpropagation barely does:
its maps keep the edges of the image whatever the weights.

Measured here on the demo CNN (``demo.model``, 4 conv blocks, trained to 91 % on the
shapes; 32 probe images, Grad-CAM at ``conv4``), mean correlation after randomizing
predictions / dense / conv4 / conv3 / conv2 / conv1 (cumulative):

    gradcam    0.10  0.09  0.21  0.20  0.06  0.00
    guided     0.95  0.92  0.82  0.58  0.20  0.12
    gradient   0.79  0.70  0.49  0.34  0.14  0.05
    deconvnet  0.65  0.65  0.49  0.36  0.19  0.08

So guided backpropagation barely changes while the top layers are random, as the paper
says, but in a network this shallow it does fall once the convolutions are randomized.
On a two-conv toy model it falls at once (0.36 after the head), so the effect needs depth.

The check runs on a clone of the model (``keras.models.clone_model`` + ``set_weights``);
the user's model is never modified. A subclassed model that cannot be cloned (no
``get_config``) is randomized in place and every weight is put back exactly before the
call returns. Maps are compared with Spearman's rank correlation of absolute values
(``drift.spearman``), averaged over images.

Example:
    >>> table = randomization_check(model, probes, layer="conv3")
    >>> table["gradcam"][-1]        # (the last layer randomized, correlation)
    ('conv1', 0.08)
"""

import contextlib

import keras
import numpy as np

from tb_cnnvis import capture, targets
from tb_cnnvis.algorithms import backprop, cam, drift

METHODS = ("gradcam", "guided", "gradient", "deconvnet")


def _maps(model, inputs, method, layer, target, output, image_input):
    """(N, H, W) maps of ``method`` for ``target``; gradients reduce to max |value| over C."""
    if method == "gradcam":
        return cam.grad_cam(
            model, inputs, layer, target=target, output=output, image_input=image_input
        )
    batch, side = capture.split_images(model, inputs, image_input=image_input)
    index = capture.output_index(model, output)
    bound = targets.bind(model, index, len(batch), target)
    grads = backprop.class_gradient(model, batch, bound, rule=method, side=side, output=index)
    return np.abs(np.nan_to_num(grads)).max(axis=-1)


def _weighted_layers(model):
    """``(path, layer)`` of the layers with trainable weights, from the output down."""
    found = [
        (path, layer)
        for path, layer in capture.all_layers(model)
        if not capture.sublayers(layer) and layer.trainable_weights
    ]
    return found[::-1]


def _randomize(layer, rng):
    """Redraw each trainable weight from a normal with its own mean and std (clipped at 2 std)."""
    for variable in layer.trainable_weights:
        values = np.asarray(variable.numpy(), np.float64)
        noise = np.clip(rng.standard_normal(values.shape), -2.0, 2.0)
        variable.assign((values.mean() + values.std() * noise).astype(variable.dtype))


def randomization_check(
    model,
    images,
    layer=None,
    methods=METHODS,
    class_index=None,
    *,
    target=None,
    seed=0,
    output=None,
    image_input=None,
):
    """Cascading model randomization (Adebayo et al. 2018): do the maps depend on the weights?

    Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018. On a clone of
    ``model``, the layers with trainable weights are re-initialized one after the other
    from the output down (each weight redrawn from a normal with that weight's own mean
    and standard deviation, clipped at 2 standard deviations, so the scale of every layer is
    kept; a constant weight, e.g. an untrained bias, stays constant). After each layer the
    maps are recomputed for the same classes and compared with the original ones by
    Spearman rank correlation of absolute values, averaged over images.

    Expected (Adebayo et al.): Grad-CAM and the gradient drop well below 1 once the top
    layers are random; guided backpropagation barely changes (its maps keep the image's
    edges), which is why it is no evidence of what a model learned. On the demo CNN this
    holds while only the top layers are random (see the module docstring).

    Args:
        model: a built Keras 3 classifier (with several outputs: see ``output``); not
            modified.
        images: float32 array (N, H, W, C), in the model's input scale (for a model with
            several inputs, a dict or list of them).
        layer: the Grad-CAM layer (None: the last layer with a 4-D output).
        methods: any of "gradcam", "guided" (guided backpropagation), "gradient"
            (saliency) and "deconvnet"; the last three are input gradients of the class
            logit with that ReLU rule, reduced to max |value| over colour channels.
        class_index: None (the original model's predicted class), an int, or one per image.
        target: a ``targets.Target`` or a callable ``logits -> (N,)``; None: ``class_index``'s.
            Its class is held at the original model's choice.
        seed: seed of the random weights.
        output: the output explained (a name, dict key or index); needed with several.
        image_input: the image input's name, when the model has several 4-D inputs.

    Returns:
        ``{method: [(layer path, mean correlation), ...]}``, one entry per randomized layer,
        top layer first (each entry: that layer and every layer above it are random).

    Raises:
        ValueError: unknown method, layer or class index, images of the wrong shape.

    Example:
        >>> table = randomization_check(model, probes, methods=("gradcam", "guided"))
        >>> [round(rho, 2) for _, rho in table["gradcam"]]
        [0.31, 0.12, 0.05]
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"Unknown methods {unknown}; expected some of {list(METHODS)}.")
    choice = {"output": output, "image_input": image_input}
    details = cam.cam_details(model, images, layer, class_index, target=target, **choice)
    head = targets.head_of(model, capture.output_index(model, output))
    held = targets.with_classes(targets.resolve(head, target, class_index), details.class_index)
    path = details.layer
    with _scratch_copy(model) as clone:
        original = {m: _maps(clone, images, m, path, held, **choice) for m in methods}
        rng = np.random.default_rng(seed)
        table = {m: [] for m in methods}
        for name, target_layer in _weighted_layers(clone):
            _randomize(target_layer, rng)
            for method in methods:
                maps = _maps(clone, images, method, path, held, **choice)
                rho = drift.spearman(original[method], maps, absolute=True).mean()
                table[method].append((name, float(rho)))
    return table


@contextlib.contextmanager
def _scratch_copy(model):
    """A model whose weights may be randomized: a clone, or the model itself, restored.

    ``keras.models.clone_model`` needs a model it can rebuild from its config; a
    subclassed model without ``get_config`` cannot be cloned, so its own weights are
    randomized and every one of them is put back exactly before this returns.
    """
    try:
        clone = keras.models.clone_model(model)
    except (TypeError, ValueError, NotImplementedError):
        saved = [variable.numpy() for variable in model.weights]
        try:
            yield model
        finally:
            for variable, value in zip(model.weights, saved):
                variable.assign(value)
        return
    clone.set_weights(model.get_weights())
    yield clone

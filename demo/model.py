"""The demo's network: a small plain CNN that learns the shape classes in a few minutes on CPU.

Four blocks of a 3x3 convolution with ReLU followed by 2x2 max pooling, then global average
pooling, a small dense layer and a softmax. No batch normalization or residual links, so
each convolution's output is directly a post-ReLU feature map, as in the networks the
visualization papers studied (Zeiler & Fergus 2014; Springenberg et al. 2015).

Example:
    >>> model = build_model()
    >>> [layer.name for layer in model.layers][1:4]
    ['conv1', 'pool1', 'conv2']
"""

import keras
from keras import layers

from demo.shapes import CLASS_NAMES

WIDTHS = (16, 32, 64, 64)
"""Filters per convolution block."""

CLASSES = len(CLASS_NAMES)
"""Number of shape classes: the default number of outputs."""


def build_model(size=64, classes=CLASSES, widths=WIDTHS, dense_units=64, channels=3):
    """Build the (uncompiled) demo CNN.

    Layers are named ``conv1, pool1, conv2, pool2, ...``, ``gap``, ``dense`` and
    ``predictions`` (the softmax).

    Args:
        size: input height and width in pixels; a multiple of ``2 ** len(widths)``.
        classes: number of output classes.
        widths: filters of each convolution block, one block per entry.
        dense_units: units of the dense layer before the softmax; 0 for none.
        channels: input channels (3 for RGB).

    Returns:
        A ``keras.Model`` mapping ``(batch, size, size, channels)`` images in [0, 1] to class
        probabilities ``(batch, classes)``.

    Raises:
        ValueError: if ``size`` cannot be halved once per block or ``classes < 2``.

    Example:
        >>> model = build_model(size=32, classes=4)
        >>> model.output_shape
        (None, 4)
    """
    if not widths:
        raise ValueError("widths must name at least one convolution block; got ()")
    if size % (2 ** len(widths)) or size < 2 ** len(widths):
        raise ValueError(
            f"size must be a positive multiple of {2 ** len(widths)} so that each of the "
            f"{len(widths)} pooling layers halves it exactly; got {size}"
        )
    if classes < 2:
        raise ValueError(f"classes must be at least 2; got {classes}")
    inputs = keras.Input((size, size, channels), name="images")
    x = inputs
    for block, filters in enumerate(widths, start=1):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            name=f"conv{block}",
        )(x)
        x = layers.MaxPooling2D(name=f"pool{block}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="shapes_cnn")

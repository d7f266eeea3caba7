"""Tiny models shared by the tests: every architecture shape the public API must handle."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

SIZE = 16
CLASSES = 3


def sequential(size=SIZE, classes=CLASSES):
    """Conv/pool stack with ReLUs given as the layers' ``activation``; softmax head."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(classes, activation="softmax", name="head"),
        ],
        name="seq",
    )


def trainable_cnn(size, classes):
    """Three conv layers (8, 16, 16 filters) and a logits head, compiled for integer labels:
    the small classifier the filter-pattern tests train for a few seconds."""
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3"),
            layers.GlobalMaxPooling2D(),
            layers.Dense(classes),
        ]
    )
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def scaled_cnn(scale, size=32):
    """Two bias-free ReLU convolutions (``conv1``, ``conv2``) behind ``Rescaling(scale)``:
    the same network, same weights, for every scale, its activations ``scale`` times as
    large (how deep layers of untrained networks look: 1e-12 and less)."""
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Rescaling(scale),
            layers.Conv2D(8, 3, activation="relu", use_bias=False, name="conv1"),
            layers.Conv2D(8, 3, activation="relu", use_bias=False, name="conv2"),
        ]
    )


def functional(size=SIZE, classes=CLASSES):
    """Functional model with a branch (add) and a linear head."""
    x = keras.Input((size, size, 3))
    a = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(x)
    b = layers.Conv2D(4, 1, padding="same", activation="relu", name="conv1b")(x)
    y = layers.Add(name="add")([a, b])
    y = layers.MaxPooling2D(name="pool1")(y)
    y = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(y)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    y = layers.Dense(classes, name="logits")(y)
    return keras.Model(x, y, name="func")


def nested(size=SIZE, classes=CLASSES):
    """A functional base (like a keras.applications model) inside a classifier."""
    inner_in = keras.Input((size, size, 3))
    z = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inner_in)
    z = layers.MaxPooling2D(name="pool1")(z)
    z = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(z)
    base = keras.Model(inner_in, z, name="base")
    x = keras.Input((size, size, 3))
    y = base(x)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    y = layers.Dense(classes, activation="softmax", name="head")(y)
    return keras.Model(x, y, name="outer")


def relu_layers(size=SIZE, classes=CLASSES, cap=None):
    """ReLUs as standalone ``ReLU`` and ``Activation('relu')`` layers, softmax as a layer;
    with ``cap=6.0``, MobileNetV2's ``ReLU(6.)`` and ``Activation('relu6')`` instead."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(4, 3, padding="same", name="conv1"),
            layers.ReLU(max_value=cap, name="relu1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(6, 3, padding="same", name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.Activation("relu6" if cap else "relu", name="relu2"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(classes, name="dense"),
            layers.Softmax(name="softmax"),
        ],
        name="relus",
    )


BUILDERS = {
    "sequential": sequential,
    "functional": functional,
    "nested": nested,
    "relu_layers": relu_layers,
}


class _Subclassed(keras.Model):
    """The twin of ``sequential()`` written as a subclassed model (same layers and names)."""

    def __init__(self, classes=CLASSES):
        super().__init__(name="sub")
        self.conv1 = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")
        self.pool1 = layers.MaxPooling2D(name="pool1")
        self.conv2 = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")
        self.gap = layers.GlobalAveragePooling2D(name="gap")
        self.head = layers.Dense(classes, activation="softmax", name="head")

    def call(self, x):
        return self.head(self.gap(self.conv2(self.pool1(self.conv1(x)))))


def subclassed(size=SIZE, classes=CLASSES):
    """A subclassed model, built by one call; ``twin_of(model)`` is its Sequential twin."""
    model = _Subclassed(classes)
    model(np.zeros((1, size, size, 3), np.float32))
    return model


class _ReluCalls(keras.Model):
    """ReLUs as ``tf.nn.relu`` and ``keras.ops.relu`` calls in ``call`` (``relu6`` ones with
    ``capped``; twin: ``relu_calls_twin``)."""

    def __init__(self, classes=CLASSES, capped=False):
        super().__init__(name="relu_calls")
        self.capped = capped
        self.conv1 = layers.Conv2D(4, 3, padding="same", name="conv1")
        self.pool1 = layers.MaxPooling2D(name="pool1")
        self.conv2 = layers.Conv2D(6, 3, padding="same", name="conv2")
        self.gap = layers.GlobalAveragePooling2D(name="gap")
        self.head = layers.Dense(classes, activation="softmax", name="head")

    def call(self, x):
        relu, ops_relu = (
            (tf.nn.relu6, keras.ops.relu6) if self.capped else (tf.nn.relu, keras.ops.relu)
        )
        x = self.pool1(relu(self.conv1(x)))
        return self.head(self.gap(ops_relu(self.conv2(x))))


def relu_calls(size=SIZE, classes=CLASSES, capped=False):
    """A subclassed model whose ReLUs (ReLU6s with ``capped``) are function calls; built by
    one call."""
    model = _ReluCalls(classes, capped)
    model(np.zeros((1, size, size, 3), np.float32))
    return model


def relu_calls_twin(size=SIZE, classes=CLASSES, capped=False):
    """The functional twin of ``relu_calls()``: the same ReLUs as layers."""
    cap = 6.0 if capped else None
    x = keras.Input((size, size, 3))
    y = layers.Conv2D(4, 3, padding="same", name="conv1")(x)
    y = layers.MaxPooling2D(name="pool1")(layers.ReLU(cap, name="relu1")(y))
    y = layers.ReLU(cap, name="relu2")(layers.Conv2D(6, 3, padding="same", name="conv2")(y))
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    return keras.Model(x, layers.Dense(classes, activation="softmax", name="head")(y))


class Block(layers.Layer):
    """A custom layer holding a convolution, with its ReLU as a ``tf.nn.relu`` call."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same", name="conv")

    def call(self, x):
        return tf.nn.relu(self.conv(x))


def with_block(size=SIZE, classes=CLASSES):
    """A functional model with a custom block in place of ``sequential()``'s conv1."""
    x = keras.Input((size, size, 3))
    y = layers.MaxPooling2D(name="pool1")(Block(4, name="block1")(x))
    y = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(y)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    return keras.Model(x, layers.Dense(classes, activation="softmax", name="head")(y))


def twin_of(model, builder=sequential):
    """A model from ``builder`` holding ``model``'s weights (same creation order)."""
    twin = builder()
    twin.set_weights(model.get_weights())
    return twin


def two_heads(size=SIZE, classes=CLASSES, as_dict=False):
    """``sequential()``'s classifier beside a box head: list or dict outputs."""
    x = keras.Input((size, size, 3))
    y = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(x)
    y = layers.MaxPooling2D(name="pool1")(y)
    y = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(y)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    head = layers.Dense(classes, activation="softmax", name="head")(y)
    box = layers.Dense(4, name="box")(y)
    outputs = {"box": box, "head": head} if as_dict else [box, head]
    return keras.Model(x, outputs, name="two_heads")


def image_and_meta(size=SIZE, classes=CLASSES, meta=2):
    """An image beside a metadata vector, joined after global pooling."""
    image = keras.Input((size, size, 3), name="image")
    side = keras.Input((meta,), name="meta")
    y = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(image)
    y = layers.MaxPooling2D(name="pool1")(y)
    y = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(y)
    y = layers.Concatenate(name="join")([layers.GlobalAveragePooling2D(name="gap")(y), side])
    head = layers.Dense(classes, activation="softmax", name="head")(y)
    return keras.Model({"image": image, "meta": side}, head, name="image_and_meta")

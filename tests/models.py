"""Tiny models shared by the tests: every architecture shape the public API must handle."""

import keras
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


def relu_layers(size=SIZE, classes=CLASSES):
    """ReLUs as standalone ``ReLU`` and ``Activation('relu')`` layers, softmax as a layer."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(4, 3, padding="same", name="conv1"),
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(name="pool1"),
            layers.Conv2D(6, 3, padding="same", name="conv2"),
            layers.BatchNormalization(name="bn2"),
            layers.Activation("relu", name="relu2"),
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

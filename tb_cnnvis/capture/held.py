"""Side inputs held at fixed values while a model's image is optimized in input space.

Filter patterns and DeepDream change only the image; a model with other inputs (metadata,
a second modality) needs values for them at every step. ``holding`` sets them for the
duration of a block: ``run_graph`` without ``side=`` then uses them (baked into the graph
when it is traced, so cache keys include ``fingerprint``), and ``inputs.split_images``
accepts image batches alone.

Example:
    >>> with holding(model, {"meta": meta.mean(axis=0, keepdims=True)}):
    ...     run(tf.constant(images))
"""

import contextlib
import hashlib
import threading

import numpy as np
import tensorflow as tf

_HELD = threading.local()


@contextlib.contextmanager
def holding(model, side):
    """While the block runs, ``run_graph`` on ``model`` without ``side=`` uses ``side``.

    For optimizations in input space (filter patterns, DeepDream) whose compiled steps
    see only the image: the model's other inputs are held at fixed values, baked into the
    graph when it is traced (so give the cache key ``fingerprint(side)``).

    Args:
        model: the model.
        side: ``{input name: float32 array}`` with one row (broadcast to every image) or
            as many rows as the batches the block runs; None holds nothing.
    """
    stack = getattr(_HELD, "stack", None)
    if stack is None:
        stack = _HELD.stack = []
    stack.append((model, side))
    try:
        yield
    finally:
        stack.pop()


def held_arrays(model):
    """The one-row side inputs ``holding`` set for ``model`` (numpy), or None."""
    for held_model, side in reversed(getattr(_HELD, "stack", None) or []):
        one_row = side is not None and all(len(value) == 1 for value in side.values())
        if held_model is model and one_row:
            return side
    return None


def held_side(model, batch):
    """The side inputs ``holding`` set for ``model``, as tensors of ``batch`` rows, or None."""
    for held_model, side in reversed(getattr(_HELD, "stack", None) or []):
        if held_model is model and side is not None:
            tensors = {}
            for name, value in side.items():
                value = tf.constant(np.asarray(value, np.float32))
                if value.shape[0] == 1:
                    value = tf.broadcast_to(value, tf.concat([[batch], tf.shape(value)[1:]], 0))
                tensors[name] = value
            return tensors
    return None


def fingerprint(side):
    """A short hash of side-input values (a cache key part), or None for no side inputs."""
    if side is None:
        return None
    digest = hashlib.sha1()
    for name in sorted(side):
        value = np.ascontiguousarray(side[name], np.float32)
        digest.update(name.encode() + str(value.shape).encode() + value.tobytes())
    return digest.hexdigest()[:16]

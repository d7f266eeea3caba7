"""Objective, regularizers, step rules and the redirected ReLU for feature visualization.

- The objective of slot ``i`` is the mean activation of channel ``filters[i]`` of the layer
  for image ``i`` (Erhan et al. 2009, "Visualizing Higher-Layer Features of a Deep Network").
- Regularizers are per-slot penalties on the unit image, subtracted from the objective,
  each with its gradient written out: total variation and L2 decay towards grey (Mahendran & Vedaldi 2015; Yosinski et al. 2015,
  "Understanding Neural Networks Through Deep Visualization").
- Step rules: ``NormalizedAscent`` scales each slot's objective gradient to unit RMS before
  adding the regularizers' gradients, so the step size and regularizer weights mean the same
  for every layer and filter whatever its activation scale; ``Adam`` is the optimizer of
  Lucid's defaults (Olah et al. 2017).
- ``gram_similarity``: Lucid's diversity term between the patterns of one filter.
- ``redirected_relu``: a ReLU whose gradient also flows through units that are off when it
  would push them up, for the images whose ordinary ReLU gradient is zero (Lucid's
  ``redirected_relu_grad``); so a filter whose activation starts at zero still receives a
  gradient.

All gradients here are of quantities being maximized.

Example:
    >>> values = channel_means(activations, filters)           # (B,)
    >>> penalty = TotalVariation(0.05)(images) + L2(0.01)(images)
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tb_cnnvis.algorithms import relu_rules

TINY = float(np.finfo(np.float32).tiny)
"""The smallest normal float32: keeps a division or a log finite where a value is 0."""


def channel_means(activations, filters, window=None):
    """Mean of channel ``filters[i]`` of ``activations[i]`` over positions, shape (B,).

    ``window`` = (top, bottom, left, right) limits the mean to those positions (see
    ``interior_window``).
    """
    if window is not None:
        top, bottom, left, right = window
        activations = activations[:, top:bottom, left:right, :]
    means = tf.reduce_mean(tf.cast(activations, tf.float32), axis=[1, 2])
    return tf.gather(means, filters[:, None], batch_dims=1)[:, 0]


def gram_similarity(activations, groups, copies=1):
    """Each slot's mean cosine similarity of its Gram matrix with the others of its group.

    Lucid's diversity objective (Olah et al. 2017, "Feature Visualization", section
    "Diversity"): slots ``g * n ... g * n + n - 1`` are the ``n`` patterns of one filter;
    penalizing the cosine similarity of their layer's Gram matrices (channel
    co-activations, position-free) pushes them to different styles of the same feature.

    Args:
        activations: (B * copies, h, w, C) the layer's output, ``copies`` transformed
            copies of each slot in a row.
        groups: the number of groups ``B / n``.
        copies: transformed copies per slot (their Gram matrices are averaged).

    Returns:
        (B,) float32 in [-1, 1]: 0 where a group has one member.

    Example:
        >>> gram_similarity(activations, groups=8, copies=1)     # 8 filters x 3 members
        <tf.Tensor: shape=(24,), ...>
    """
    act = tf.cast(activations, tf.float32)
    shape = tf.shape(act)
    flat = tf.reshape(act, [shape[0], -1, act.shape[-1]])
    gram = tf.matmul(flat, flat, transpose_a=True) / tf.cast(tf.shape(flat)[1], tf.float32)
    channels = act.shape[-1]
    gram = tf.reduce_mean(tf.reshape(gram, [-1, copies, channels * channels]), axis=1)
    gram = tf.math.l2_normalize(gram, axis=-1)
    members = gram.shape[0] // groups
    if members < 2:
        return tf.zeros([gram.shape[0]])
    grouped = tf.reshape(gram, [groups, members, channels * channels])
    sims = tf.matmul(grouped, grouped, transpose_b=True)  # (groups, n, n)
    others = (tf.reduce_sum(sims, axis=-1) - tf.linalg.diag_part(sims)) / (members - 1)
    return tf.reshape(others, [-1])


@dataclass(frozen=True)
class TotalVariation:
    """Weighted sum of absolute differences between neighbouring pixels, per slot.

    The gradient is written out (``grad``): differentiating the slices automatically costs
    ten times more than the whole penalty on CPU.

    Example:
        >>> TotalVariation(0.05)(images).shape      # (B,)
    """

    weight: float

    def __call__(self, images):
        """The penalty, shape (B,)."""
        dy = tf.abs(images[:, 1:] - images[:, :-1])
        dx = tf.abs(images[:, :, 1:] - images[:, :, :-1])
        return self.weight * (tf.reduce_sum(dy, [1, 2, 3]) + tf.reduce_sum(dx, [1, 2, 3]))

    def grad(self, images):
        """The penalty's gradient with respect to ``images``."""
        sy = tf.sign(images[:, 1:] - images[:, :-1])
        sx = tf.sign(images[:, :, 1:] - images[:, :, :-1])
        no, before, after = [0, 0], [1, 0], [0, 1]
        total = tf.pad(sy, [no, before, no, no]) - tf.pad(sy, [no, after, no, no])
        total += tf.pad(sx, [no, no, before, no]) - tf.pad(sx, [no, no, after, no])
        return self.weight * total


@dataclass(frozen=True)
class L2:
    """Weighted half squared distance of the pixels from grey (0.5), per slot: an L2 decay.

    Example:
        >>> L2(0.01)(images).shape                   # (B,)
    """

    weight: float

    def __call__(self, images):
        """The penalty, shape (B,)."""
        return 0.5 * self.weight * tf.reduce_sum(tf.square(images - 0.5), [1, 2, 3])

    def grad(self, images):
        """The penalty's gradient with respect to ``images``."""
        return self.weight * (images - 0.5)


def _per_slot_rms(values):
    """Root mean square of each slot of a batch, broadcastable against it."""
    axes = list(range(1, values.shape.rank))
    return tf.sqrt(tf.reduce_mean(tf.square(values), axis=axes, keepdims=True))


@dataclass(frozen=True)
class NormalizedAscent:
    """Gradient ascent with each slot's objective gradient scaled to unit RMS.

    ``params += lr * (g_objective / rms(g_objective) - g_penalty)``.

    Example:
        >>> NormalizedAscent(lr=0.05)
    """

    lr: float = 0.05

    def init(self, params):
        """No optimizer state (an empty tuple)."""
        return ()

    def step(self, params, objective_grad, penalty_grad, state, step):
        """One update; returns ``(params, state)``."""
        direction = objective_grad / (_per_slot_rms(objective_grad) + TINY)
        return params + self.lr * (direction - penalty_grad), state


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba 2015) ascent on ``objective - penalty``, per element.

    ``epsilon`` is relative: it is multiplied by the largest RMS of a slot's gradient seen
    so far, so the steps do not depend on the scale of the layer's activations. (An
    absolute 1e-8 swamps the gradients of deep layers of untrained networks, whose mean
    activations are 1e-12 or less: their patterns did not move.)

    Example:
        >>> Adam(lr=0.05)     # Lucid's default optimizer
    """

    lr: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8

    def init(self, params):
        """First and second moment estimates, zero, and each slot's gradient scale."""
        slots = tf.zeros([tf.shape(params)[0]] + [1] * (params.shape.rank - 1), params.dtype)
        return (tf.zeros_like(params), tf.zeros_like(params), slots)

    def step(self, params, objective_grad, penalty_grad, state, step):
        """One bias-corrected Adam update; returns ``(params, state)``."""
        grad = objective_grad - penalty_grad
        m = self.beta1 * state[0] + (1.0 - self.beta1) * grad
        v = self.beta2 * state[1] + (1.0 - self.beta2) * tf.square(grad)
        scale = tf.maximum(state[2], _per_slot_rms(grad))
        t = tf.cast(step, tf.float32) + 1.0
        m_hat = m / (1.0 - tf.pow(self.beta1, t))
        v_hat = v / (1.0 - tf.pow(self.beta2, t))
        epsilon = self.epsilon * scale + TINY  # TINY: a slot without gradient stays put
        return params + self.lr * m_hat / (tf.sqrt(v_hat) + epsilon), (m, v, scale)


def redirected_relu(x):
    """A ReLU for ``capture.run_graph(relu_fn=...)`` whose gradient also reaches units that are off.

    Forward it is ``max(x, 0)``. Backward, for each image whose ordinary ReLU gradient is
    zero everywhere at this ReLU, the incoming gradient also passes through the units that
    are off where it is positive (where it would push them up); other images get the
    ordinary gradient (Lucid's ``redirected_relu_grad``).

    Example:
        >>> capture.run_graph(model, images, taps=["conv3"], relu_fn=redirected_relu)
    """
    return rescue_relu(tf.constant(True))(x)


def rescue_relu(active):
    """``redirected_relu`` while the scalar bool tensor ``active`` is true, else a plain ReLU.

    Lets one compiled loop hold both phases of an optimization (rescue, then ordinary
    gradients), so the model's graph is traced once instead of twice.
    """
    return lambda x: relu_rules.relu(x, "rescue", active)

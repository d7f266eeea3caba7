"""How specific filter patterns are: does pattern i excite filter i more than the others do?

The check of activation maximization that ``notes/methods.md`` calls for: the image made
for filter ``i`` should excite filter ``i`` more than the image made for any other filter
of the layer does (a pattern that excites every filter of its layer says little about its
own). ``cross_activations`` runs every pattern through the layer and measures every
filter on the units the objective averaged (the interior window, ``fv_canvas``);
``specificity`` is the fraction of live filters whose own pattern wins that column
("diagonal dominance"; Erhan et al. 2009 compare the patterns of different units the
same way).

Example:
    >>> result = cv.filter_patterns(model, "conv3")
    >>> specificity(model, result)
    0.94
"""

import numpy as np
import tensorflow as tf

from tb_cnnvis import capture


def cross_activations(model, result):
    """(F, F) mean activation of filter ``filters[i]`` (column) for pattern ``j`` (row).

    Args:
        model: the model the patterns were made for.
        result: a ``FilterPatterns``.

    Returns:
        float32 (F, F); the diagonal equals ``result.activations``.
    """
    window = result.canvas.window if result.canvas is not None else None
    images = tf.constant(result.images, tf.float32)
    _, taps = capture.run_graph(model, images, taps=[result.layer], stop_at=[result.layer])
    act = tf.cast(taps[result.layer], tf.float32)
    if window is not None:
        top, bottom, left, right = window
        act = act[:, top:bottom, left:right]
    means = tf.reduce_mean(act, axis=[1, 2]).numpy()
    return means[:, result.filters].astype(np.float32)


def specificity(model, result, responses=None):
    """The fraction of live filters whose own pattern excites them most (ties count).

    Args:
        model: the model the patterns were made for.
        result: a ``FilterPatterns`` of at least two filters.
        responses: ``cross_activations(model, result)`` if already computed.

    Returns:
        A float in [0, 1], or NaN when no pattern is live.
    """
    responses = cross_activations(model, result) if responses is None else responses
    own = np.diag(responses)
    others = np.array(
        [np.delete(responses[:, i], i).max() for i in range(len(own))], dtype=np.float64
    )
    live = own > 0
    if not live.any():
        return float("nan")
    return float(np.mean(own[live] >= others[live]))

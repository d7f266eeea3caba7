"""Which task of a distributed training writes the cnnvis summaries.

Under ``tf.distribute`` every task runs the callback; only the chief computes and writes
views, so that the run has each epoch once.

Example:
    >>> is_chief(tf.distribute.get_strategy())
    True
"""

import tensorflow as tf


def is_chief(strategy=None):
    """Whether this task writes: True without a cluster; else task ``chief``, or ``worker`` 0
    when the cluster has no chief.

    Args:
        strategy: a ``tf.distribute.Strategy`` (default: the current one), or a cluster
            resolver.
    """
    strategy = strategy if strategy is not None else tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", strategy)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    if task_type == "chief":
        return True
    try:
        cluster = resolver.cluster_spec().as_dict()
    except (AttributeError, ValueError):
        cluster = {}
    return task_type == "worker" and "chief" not in cluster and (resolver.task_id or 0) == 0

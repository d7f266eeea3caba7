"""Compiled functions built once per (model, key) and reused, that never keep a model alive.

Every algorithm compiles its work into a ``tf.function`` the first time it sees a model
and reuses it afterwards (logging each epoch then traces nothing). The cache maps each model
(weakly) to its functions. A function that held the model strongly would keep it alive for
ever, and every model ever explained with it (``tb-cnnvis log`` over checkpoints would grow
by one model per checkpoint), so ``build`` is given a weak reference to the model and
nothing else, and a ``build`` that closes over the model itself is refused.

Functions are traced without AutoGraph (``NO_AUTOGRAPH``), as Keras 3 traces its own train
and predict steps (``tf.autograph.experimental.do_not_convert`` in its TensorFlow trainer):
a model's ``call`` that works in ``fit`` works here, our own code uses graph control flow
explicitly, and converting the Python of every function a trace runs was most of a trace's
cost (demo CNN, filter patterns of 4 layers at step 0: 5.5 s with AutoGraph, 3.5 s without).

Example:
    >>> run = CACHE.get(model, ("feature_maps", paths), lambda model_ref: _build(model_ref))
    >>> run(tf.constant(images))
"""

import weakref

import tensorflow as tf

NO_AUTOGRAPH = False
"""The ``autograph`` argument of every compiled function (see the module docstring)."""


class _Counted:
    """A Python function that counts its traces.

    A callable object rather than a closure: TensorFlow's "frequent retracing" warning
    groups functions by code object, and every cached function tracing once would trip it.
    """

    def __init__(self, python_fn, counters, key):
        self._python_fn = python_fn
        self._counters = counters
        self._key = key

    def __call__(self, *args, **kwargs):
        self._counters[self._key] += 1
        return self._python_fn(*args, **kwargs)


def _closes_over(function, target, depth=3):
    """True if ``function``'s closure or defaults hold ``target`` (looking into nested
    functions up to ``depth`` levels)."""
    cells = [cell.cell_contents for cell in (getattr(function, "__closure__", None) or ())]
    cells += list(getattr(function, "__defaults__", None) or ())
    for value in cells:
        nested = depth and callable(value) and hasattr(value, "__closure__")
        if value is target or (nested and _closes_over(value, target, depth - 1)):
            return True
    return False


class CompiledCache:
    """``tf.function``s built once per (model, key) and reused; counts traces for tests."""

    def __init__(self):
        self._by_model = weakref.WeakKeyDictionary()
        self.traces = {}

    def get(self, model, key, build):
        """Return the function for ``(model, key)``, making it with ``build`` the first time.

        Args:
            model: the Keras model the function runs.
            key: a hashable key telling this function from the model's others.
            build: called as ``build(model_ref)`` with a ``weakref.ref`` to the model; returns
                the Python function to compile. It reaches the model only through
                ``model_ref()`` (while tracing).

        Returns:
            The ``tf.function`` (with a trace counter, ``self.traces[(id(model), key)]``).

        Raises:
            TypeError: if ``build`` holds the model itself.
        """
        if _closes_over(build, model):
            raise TypeError(
                "A compiled function must reach the model through the weak reference given to "
                "build(model_ref), not hold it: the cache would keep the model alive."
            )
        if model not in self._by_model:
            # A new model may reuse the id of a collected one: forget that one's counters.
            for stale in [k for k in self.traces if k[0] == id(model)]:
                del self.traces[stale]
        functions = self._by_model.setdefault(model, {})
        if key not in functions:
            counter_key = (id(model), key)
            self.traces[counter_key] = 0
            python_fn = build(weakref.ref(model))
            if _closes_over(python_fn, model):
                raise TypeError(
                    "The function built for the cache holds the model; reach it through "
                    "model_ref() instead."
                )
            counted = _Counted(python_fn, self.traces, counter_key)
            functions[key] = tf.function(counted, reduce_retracing=True, autograph=NO_AUTOGRAPH)
        return functions[key]

    def trace_count(self, model, key=None):
        """Traces so far for ``model`` (all keys, or one key)."""
        return sum(
            n
            for (mid, k), n in self.traces.items()
            if mid == id(model) and (key is None or k == key)
        )


CACHE = CompiledCache()
"""The process-wide cache used by the algorithms."""


def total_traces(model):
    """How many times compiled functions for ``model`` were traced (for no-retracing tests)."""
    return CACHE.trace_count(model)

"""Nothing keeps a user's model alive after a call returns: every public function, tested."""

import gc
import weakref

import models
import numpy as np
import pytest

import tb_cnnvis as cv

SIZE = models.SIZE


def _images(count=2):
    return np.random.default_rng(0).random((count, SIZE, SIZE, 3)).astype(np.float32)


def _callback(model, logdir):
    callback = cv.CnnVisCallback(
        logdir, _images(), [0, 1], reference_images=_images(4), filter_steps=2,
        max_filters_per_layer=2,
    )  # fmt: skip
    callback.set_model(model)
    callback.log_step(0)
    callback.close()


CALLS = {
    "conv_layers": lambda model, logdir: cv.conv_layers(model),
    "feature_maps": lambda model, logdir: cv.feature_maps(model, _images(), "conv2"),
    "grad_cam": lambda model, logdir: [
        cv.grad_cam(model, _images(), method=method) for method in ("gradcam", "scorecam")
    ],
    "attribution": lambda model, logdir: [
        cv.attribution(model, _images(), method, **options)
        for method, options in (
            ("smoothgrad", {"samples": 2}),
            ("integrated_gradients", {"steps": 2}),
            ("occlusion", {"patch_size": 8}),
        )
    ],
    "backprop": lambda model, logdir: [
        cv.backprop(model, _images(), "conv2", rule=rule) for rule in ("deconvnet", "guided")
    ],
    "guided_grad_cam": lambda model, logdir: cv.guided_grad_cam(model, _images()),
    "filter_patterns": lambda model, logdir: cv.filter_patterns(model, "conv2", steps=2),
    "deepdream": lambda model, logdir: cv.deepdream(model, _images(), "conv2", steps=2),
    "top_examples": lambda model, logdir: cv.top_examples(model, _images(4), "conv2", k=2),
    "receptive_field": lambda model, logdir: cv.receptive_field(model, "conv2"),
    "faithfulness_scores": lambda model, logdir: cv.faithfulness_scores(
        model, _images(), np.ones((2, SIZE, SIZE), np.float32), steps=2
    ),
    "randomization_check": lambda model, logdir: cv.randomization_check(
        model, _images(), methods=("gradcam",)
    ),
    "CnnVisCallback": _callback,
}
"""One call of each public function that takes a model."""

WITHOUT_A_MODEL = {"FilterPatterns", "InputRange", "pointing_game"}
"""Public names that take no model (classes of results and settings, a pure function)."""


SERVES_THE_MODEL = {"explore"}
"""Public names that hand models to a server on purpose (``explore``: until
``tb_cnnvis.explorer.sources.clear_live()``)."""


def test_every_public_name_is_checked_or_takes_no_model():
    assert set(cv.__all__) == set(CALLS) | WITHOUT_A_MODEL | SERVES_THE_MODEL


BUILDERS = {**models.BUILDERS, "subclassed": models.subclassed, "with_block": models.with_block}


@pytest.mark.parametrize("builder", ["sequential", "nested", "subclassed", "with_block"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_model_is_freed_after_the_call(name, builder, logdir):
    model = BUILDERS[builder]()
    CALLS[name](model, logdir)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, f"{name} keeps the {builder} model alive"


def _traced_graphs():
    """Weak references to every traced graph (``FuncGraph``) alive now."""
    from tensorflow.python.framework import func_graph

    for _ in range(3):  # the first collection's weak-reference callbacks free more
        gc.collect()
    return {id(o): weakref.ref(o) for o in gc.get_objects() if isinstance(o, func_graph.FuncGraph)}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_no_traced_graph_outlives_the_model(name, logdir):
    # tf.custom_gradient registered a gradient per trace in TensorFlow's global registry,
    # which held every projection and filter-pattern graph (and so their captured
    # weights) for the life of the process.
    from tensorflow.python.framework import ops

    import tb_cnnvis.algorithms.relu_rules  # noqa: F401  (its rules register at import)

    before, registered = _traced_graphs(), len(ops._gradient_registry.list())
    model = models.sequential()
    CALLS[name](model, logdir)
    del model
    left = [ref().name for key, ref in _traced_graphs().items() if key not in before and ref()]
    assert left == [] and len(ops._gradient_registry.list()) == registered

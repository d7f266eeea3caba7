"""The default callback on keras.applications families at a tiny size: every default view
is written at every logged epoch, and nothing fails (``benchmarks/bench_zoo.py`` measures
the costs at 96 px)."""

import warnings

import keras
import numpy as np
import pytest

from tb_cnnvis import CnnVisCallback, views
from tb_cnnvis.testing import read_run

FAMILIES = {"MobileNetV2": {"alpha": 0.35}, "VGG16": {}, "EfficientNetB0": {}}
"""Families run at 32 px (MobileNetV2 at its smallest width): ReLUs and depthwise blocks,
plain convolutions, and SiLUs behind Keras's own Rescaling and Normalization layers. Every
other family of ``bench_zoo`` passed the same test on 2026-12-07 (MobileNetV3Small,
EfficientNetV2B0, NASNetMobile, DenseNet121, ResNet50, ResNet50V2, Xception at 71 px,
InceptionV3 at 75 px, ConvNeXtTiny: 10-73 s each, 6 minutes for the twelve), too long
for the suite to hold them all; ``bench_zoo`` runs them."""


def _classifier(name, size=32):
    base = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=(size, size, 3), **FAMILIES[name]
    )
    # A frozen base, as in transfer learning: Keras traces a training step through it in
    # half the time; the head still trains, so every epoch has new weights to show.
    base.trainable = False
    x = keras.Input((size, size, 3))
    y = keras.layers.GlobalAveragePooling2D()(base(x))
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax")(y))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.budget
@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_default_view_writes_at_every_logged_epoch(logdir, name):
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 3, 8)
    callback = CnnVisCallback(logdir, x[:2], y[:2], filter_steps=4, max_filters_per_layer=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _classifier(name).fit(x, y, epochs=2, batch_size=4, callbacks=[callback], verbose=0)
    said = [str(w.message) for w in caught]
    assert [text for text in said if "failed at step" in text] == []
    # A default view that would only repeat another is left out, said at set_model: on
    # EfficientNet (SiLUs, no ReLU) deconvnet would be the plain gradient.
    left_out = {
        kind for kind in views.DEFAULT_VIEWS
        if any(f"the {kind} view is left out of all its default layers" in t for t in said)
    }  # fmt: skip
    assert left_out == ({"deconvnet"} if name == "EfficientNetB0" else set())
    run = read_run(logdir)
    for kind in views.DEFAULT_VIEWS:
        tags = [tag for tag in run if tag.startswith(kind + "/")]
        if kind in left_out:
            assert tags == []
            continue
        assert tags, f"{name}: no {kind} tag"
        # Under the budget a step may keep fewer layers of a view, never none of them.
        steps = sorted({step for tag in tags for step in run[tag]})
        assert steps == ([0, 2] if kind == "filter_patterns" else [0, 1, 2]), kind
        for tag in tags:
            for step, (_facts, pngs) in run[tag].items():
                assert pngs, (tag, step)

"""Every method on every architecture: shapes, float32, finite values, ranges, no retracing.

Attributions are signed (N, H, W) maps: each has values of both signs here.
"""

import models
import numpy as np
import pytest

import tb_cnnvis as cv
from tb_cnnvis import capture


def _feature_maps(model, images, layer):
    return cv.feature_maps(model, images, layer)


def _cam(method):
    return lambda model, images, layer: cv.grad_cam(model, images, layer, method=method)


def _backprop(rule):
    return lambda model, images, layer: cv.backprop(model, images, layer, rule=rule)


def _guided_grad_cam(model, images, layer):
    return cv.guided_grad_cam(model, images, layer)


def _attribution(method, **options):
    return lambda model, images, layer: cv.attribution(model, images, method, **options)


METHODS = {
    "feature_maps": (_feature_maps, "layer"),
    "gradcam": (_cam("gradcam"), "map"),
    "gradcam++": (_cam("gradcam++"), "map"),
    "scorecam": (_cam("scorecam"), "map"),
    "layercam": (_cam("layercam"), "map"),
    "hirescam": (_cam("hirescam"), "map"),
    "xgradcam": (_cam("xgradcam"), "map"),
    "eigencam": (_cam("eigencam"), "map"),
    "gradient": (_backprop("gradient"), "projection"),
    "deconvnet": (_backprop("deconvnet"), "projection"),
    "guided": (_backprop("guided"), "projection"),
    "guided_grad_cam": (_guided_grad_cam, "projection"),
    "smoothgrad": (_attribution("smoothgrad", samples=4), "attribution"),
    "integrated_gradients": (_attribution("integrated_gradients", steps=8), "attribution"),
    "occlusion": (_attribution("occlusion", patch_size=4, stride=2), "attribution"),
}


@pytest.fixture(scope="module")
def built_models():
    """One model per builder, shared by this module's tests (built on first use)."""
    return {}


@pytest.mark.parametrize("builder", sorted(models.BUILDERS))
@pytest.mark.parametrize("method", list(METHODS))
def test_method_contract(method, builder, built_models):
    if builder not in built_models:
        built_models[builder] = models.BUILDERS[builder]()
    model = built_models[builder]
    function, kind = METHODS[method]
    layer = capture.conv_layers(model)[-1]
    images = np.random.default_rng(4).normal(size=(2, models.SIZE, models.SIZE, 3))
    images = images.astype(np.float32)

    result = function(model, images, layer)
    traces = capture.total_traces(model)
    again = function(model, images, layer)

    assert capture.total_traces(model) == traces, "a second call with the same shapes retraced"
    np.testing.assert_allclose(again, result, rtol=1e-5, atol=1e-7)
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    assert np.isfinite(result).all()
    if kind == "layer":
        assert result.shape == (2, *capture.resolve_layer(model, layer).output_shape)
    elif kind == "map":
        assert result.shape == (2, models.SIZE, models.SIZE)
        assert result.min() >= 0.0
        assert np.allclose(result.max(axis=(1, 2)), 1.0)  # no map is all zero here
    elif kind == "attribution":
        assert result.shape == (2, models.SIZE, models.SIZE)
        assert (result.min(axis=(1, 2)) < 0).all() and (result.max(axis=(1, 2)) > 0).all()
    else:
        assert result.shape == (2, models.SIZE, models.SIZE, 3)
        assert (np.abs(result).max(axis=(1, 2, 3)) > 0).all()

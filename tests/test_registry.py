"""The views registry: one entry per kind, and every kind stored as the format says."""

import re

import models
import numpy as np
import pytest

from tb_cnnvis import CnnVisCallback, summary, views
from tb_cnnvis.testing import read_run

FORMAT = summary.__doc__


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Every registered view logged at steps 0 and 1 by the callback, metrics on."""
    logdir = str(tmp_path_factory.mktemp("registry"))
    rng = np.random.default_rng(0)
    images = rng.random((3, models.SIZE, models.SIZE, 3)).astype(np.float32)
    masks = np.zeros((3, models.SIZE, models.SIZE), bool)
    masks[:, 4:12, 4:12] = True
    callback = CnnVisCallback(
        logdir, images, [0, 1, 2], views=views.ALL_VIEWS, reference_images=images,
        probe_masks=masks, filter_steps=2, max_filters_per_layer=2, top_k=2,
    )  # fmt: skip
    callback.set_model(models.sequential())
    callback.log_step(0)
    callback.log_step(1)
    callback.close()
    return read_run(logdir)


def test_every_kind_is_registered_once_with_a_family_label_and_blurb():
    kinds = views.kinds()
    assert len(kinds) == len(set(kinds)) == len(views.catalog())
    for entry in views.catalog():
        assert entry["label"] and entry["blurb"].endswith(".")
        assert views.get(entry["kind"]).family.name == entry["family"]
    with pytest.raises(ValueError, match=r"Unknown kind 'lrp'.*grad_cam"):
        views.get("lrp")


@pytest.mark.parametrize("kind", views.kinds())
def test_each_kind_writes_its_tag_with_the_facts_the_format_describes(kind, logged):
    family = views.get(kind).family
    tags = [tag for tag in logged if tag.split("/")[0] == kind]
    assert tags, f"{kind} wrote no tag"
    for tag in tags:
        assert sorted(logged[tag]) == [0, 1]
        facts, pngs = logged[tag][1]
        assert set(facts) == {*family.facts, "seconds", "images"}, tag
        assert len(pngs) == len(facts["images"]) >= 1


@pytest.mark.parametrize("kind", views.kinds())
def test_the_format_docstring_names_each_kind_and_each_of_its_facts(kind):
    family = views.get(kind).family
    assert f"``{kind}``" in FORMAT
    for key in family.facts:
        assert re.search(rf'"{key}"', FORMAT), f"{kind}: the format does not describe {key!r}"


def test_tab_order_is_family_order_then_registration_order():
    orders = [views.get(kind).family.order for kind in views.kinds()]
    assert orders == sorted(orders)
    assert views.kinds("cam")[0] == "grad_cam" and views.DEFAULT_VIEWS[0] == "feature_maps"


@pytest.mark.parametrize("method", ["layercam", "hirescam", "xgradcam", "eigencam"])
def test_a_cam_method_is_one_map_function_and_one_view(method):
    from tb_cnnvis.algorithms import cam, cam_methods

    assert method in cam.METHODS and method in cam_methods.MAPS
    [view] = [v for v in views.of_family("cam") if v.params["method"] == method]
    assert view.kind == method and view.metric_name == method
    assert ("class-agnostic" in view.blurb) == (method == "eigencam")
    assert bool(view.params.get("class_agnostic")) == (method == "eigencam")


def test_attributions_are_one_view_per_method_at_the_input():
    from tb_cnnvis.algorithms import attribution

    assert views.kinds("attribution") == attribution.METHODS
    for kind in attribution.METHODS:
        family = views.get(kind).family
        assert family.at_input and family.needs_classifier and views.get(kind).metric_name == kind

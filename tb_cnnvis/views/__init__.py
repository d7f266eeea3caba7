"""The views the callback logs, one module per family, and the registry that lists them.

Family modules: ``feature_maps``, ``filter_patterns``, ``deepdream``, ``cams`` (the class
activation maps), ``attributions`` (class attributions at the input: SmoothGrad,
integrated gradients, occlusion), ``projections`` (deconvnet, guided backprop, saliency)
and ``top_examples``. Each declares its kinds with ``registry.register``; ``registry``
holds the lookups, ``explained`` the choice of classes the class-explaining views explain.
This package
imports no TensorFlow at import time (the TensorBoard plugin reads it).

Example:
    >>> from tb_cnnvis import views
    >>> views.get("grad_cam").label
    'Grad-CAM'
"""

from tb_cnnvis.views import (
    attributions,
    cams,
    deepdream,
    explained,
    feature_maps,
    filter_patterns,
    projections,
    top_examples,
)
from tb_cnnvis.views.registry import Family, View, all_views, catalog, get, kinds, of_family

ALL_VIEWS = kinds()
"""Every view the callback can log, in the dashboard's order."""

VIEWS = tuple(view.kind for view in all_views() if view.family.source == "probes")
"""The views computed on the probe images."""

REFERENCE_VIEWS = tuple(view.kind for view in all_views() if view.family.source == "reference")
"""The views computed on the callback's ``reference_images``."""

DEFAULT_VIEWS = tuple(view.kind for view in all_views() if view.default)
"""The views logged unless the callback is told otherwise."""

__all__ = [
    "ALL_VIEWS",
    "DEFAULT_VIEWS",
    "REFERENCE_VIEWS",
    "VIEWS",
    "Family",
    "View",
    "all_views",
    "attributions",
    "cams",
    "catalog",
    "deepdream",
    "explained",
    "feature_maps",
    "filter_patterns",
    "get",
    "kinds",
    "of_family",
    "projections",
    "top_examples",
]

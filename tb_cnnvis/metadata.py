"""Names and summary metadata shared by the writer (``summary``) and the server (``plugin``).

This module must stay light: TensorBoard imports it through the plugin, without TensorFlow.

Every cnnvis tag carries a ``SummaryMetadata`` with ``plugin_data.plugin_name = "cnnvis"``,
``data_class = DATA_CLASS_BLOB_SEQUENCE`` and a JSON ``content`` (UTF-8) holding the tag's
static facts; see ``tag_content`` for the keys. The stored values are described in
``tb_cnnvis/summary.py``.
"""

import json

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "cnnvis"
"""The plugin's name: the URL namespace and the ``plugin_data.plugin_name`` of every tag."""

FORMAT_VERSION = 3
"""Version of the stored format; bumped when a reader would misread older data (2: pixels
in files of the run's plugin directory, ``tb_cnnvis.blobstore``; 3: the facts there too,
the events holding only a reference)."""

RUN_SUBDIR = "cnnvis"
"""The callback writes to ``<log_dir>/cnnvis``, beside Keras's ``train`` and ``validation``."""

PROBES = "probes"
"""The kind (and tag) of the probe images. Every other kind is registered in
``tb_cnnvis.views`` (its family module)."""

TIMING_TAG_PREFIX = "cnnvis_seconds/"
"""Scalar tags (scalars plugin) with the seconds each view took per logged epoch."""

SCALAR_TAG_PREFIX = "cnnvis_metrics/"
"""Scalar tags (scalars plugin) with per-epoch metrics (faithfulness, drift, dead filters)."""


TAG_ESCAPES = {"%": "%25", '"': "%22", "\\": "%5C"}
"""Characters of a layer path written escaped in its tag: TensorBoard's Rust data server
cannot read the blobs of a tag that holds a quote or a backslash (its blob keys are JSON
read without unescaping); a tag's content keeps the layer's true name in ``layer``."""


def tag_name(kind, layer=None):
    """The tag for ``kind`` at ``layer`` (a layer path); ``probes`` has no layer.

    The kind is not checked against the registry here (``summary.content`` does that).
    ``%``, ``"`` and ``\\`` in the layer path are written ``%25``, ``%22``, ``%5C``
    (``TAG_ESCAPES``).

    Example:
        >>> tag_name("grad_cam", 'block "a"')
        'grad_cam/block %22a%22'
    """
    if not isinstance(kind, str) or not kind.replace("_", "").isalnum():
        raise ValueError(f"A tag kind is a name like 'grad_cam'; got {kind!r}.")
    if kind == PROBES:
        return PROBES
    if not layer:
        raise ValueError(f"Kind {kind!r} needs a layer")
    return f"{kind}/{''.join(TAG_ESCAPES.get(char, char) for char in layer)}"


_DECLARED_VIEWS = {}  # kind -> what the dashboard needs to label and draw it


def declare_view(kind, *, family, label, blurb, family_order=100):
    """Declare a view kind for the writers (``tb_cnnvis.views.registry.register`` does).

    The writers take each tag's ``family``, ``label`` and ``blurb`` from here, so that a
    stored tag describes itself and neither they nor the plugin import the views registry.

    Example:
        >>> declare_view("grad_cam", family="cam", label="Grad-CAM", blurb="...", family_order=3)
    """
    _DECLARED_VIEWS.setdefault(
        kind,
        {
            "family": family,
            "label": label,
            "blurb": blurb,
            "_rank": (family_order, len(_DECLARED_VIEWS)),
        },
    )


def declared_kinds(family=None):
    """The declared view kinds (of one family, if ``family`` names one), in tab order."""
    ranked = sorted(_DECLARED_VIEWS.items(), key=lambda item: item[1]["_rank"])
    return tuple(kind for kind, view in ranked if family is None or view["family"] == family)


def view_description(kind):
    """``{"family", "label", "blurb", "view_order"}`` of a declared kind, for its tag content.

    ``view_order`` is the kind's place among the declared views (the dashboard's tab order).

    Raises:
        ValueError: for a kind never declared; the message lists the declared ones.
    """
    view = _DECLARED_VIEWS.get(kind)
    if view is None:
        known = list(declared_kinds())
        hint = "" if known else " (views are declared when tb_cnnvis.views is imported)"
        raise ValueError(f"Unknown kind {kind!r}; the views are {known}{hint}.")
    described = {key: value for key, value in view.items() if not key.startswith("_")}
    return {**described, "view_order": declared_kinds().index(kind)}


def tag_content(kind, layer=None, **facts):
    """The JSON-ready dict stored as a tag's plugin content.

    Always has ``version``, ``kind`` and ``layer`` (None for probes). Layer tags add
    ``layer_index`` (position in model order, for sorting), ``layer_class``,
    ``output_shape`` ([h, w, c], batch dimension dropped); writers may add more
    (``class_names``, ``input_shape``, ``probe_count``, ...).
    """
    content = {"version": FORMAT_VERSION, "kind": kind, "layer": layer}
    content.update(facts)
    return content


def create_summary_metadata(content, description=""):
    """A ``SummaryMetadata`` proto for a cnnvis blob-sequence tag with this content dict."""
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
    )


def parse_content(raw):
    """Parse a tag's plugin content (bytes) back to a dict; raises ValueError if unreadable."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    content = json.loads(raw) if raw else {}
    if not isinstance(content, dict) or "kind" not in content:
        raise ValueError("Not cnnvis plugin content")
    return content

"""The views ``/tags`` lists, read from the stored tags themselves, and the versions read.

Since stored format version 2 every tag's content carries what the dashboard needs to label
and draw it: ``family``, ``label``, ``blurb`` and ``view_order`` (its place among the views
when it was written), so the plugin labels a log from the log, not from today's registry,
and does not import the registry. Version 1 tags carry none of it: for them (only) the
registry of ``tb_cnnvis.views`` is asked, imported on first need.

Example:
    >>> catalog([{"kind": "grad_cam", "family": "cam", "label": "Grad-CAM", "blurb": "...",
    ...           "view_order": 3, "tag": "grad_cam/conv2"}])
    [{'kind': 'grad_cam', 'family': 'cam', 'label': 'Grad-CAM', 'blurb': '...'}]
"""

import functools
import math

from tb_cnnvis import metadata

_DESCRIBED = ("family", "label", "blurb")

SUPPORTED_VERSIONS = (1, 2, metadata.FORMAT_VERSION)
"""The stored-format versions (``"version"`` of a tag's content) this plugin reads: 1 (PNGs
in the event files), 2 (PNGs in pixel files, ``tb_cnnvis.blobstore``) and 3 (the facts in
the pixel files too)."""


def catalog(tags):
    """The views of ``tags`` (``/tags`` entries: content plus ``tag``), in tab order.

    Each kind once, described by its newest-looking self-description (a tag that has
    ``family``, ``label`` and ``blurb``), else by the registry (version 1 tags); kinds that
    neither describes are left out (the dashboard ignores their tags).

    Returns:
        A list of ``{"kind", "family", "label", "blurb"}`` dicts, by ``view_order``, then kind.
    """
    found = {}
    for entry in tags:
        kind = entry.get("kind")
        if kind == metadata.PROBES or not isinstance(kind, str) or kind in found:
            continue
        if all(isinstance(entry.get(key), str) for key in _DESCRIBED):
            order = entry.get("view_order")
            rank = order if isinstance(order, (int, float)) else math.inf
            found[kind] = (rank, {"kind": kind, **{key: entry[key] for key in _DESCRIBED}})
        else:
            legacy = _registered(kind)
            if legacy is not None:
                found[kind] = legacy
    return [view for _, view in sorted(found.values(), key=lambda item: (item[0], item[1]["kind"]))]


def tag_sort_key(entry, ranks):
    """Probes first, then model order (``layer_index``), then view order, then tag name.

    ``ranks`` maps a kind to its place in ``catalog``.
    """
    index = entry.get("layer_index")
    index = index if isinstance(index, (int, float)) else math.inf
    kind_rank = ranks.get(entry.get("kind"), len(ranks))
    return (entry.get("kind") != metadata.PROBES, index, kind_rank, entry["tag"])


def _registered(kind):
    """``(rank, description)`` of ``kind`` from today's registry (for version 1 tags), or None."""
    from tb_cnnvis import views  # only old logs need it: their tags do not describe themselves

    kinds = views.kinds()
    if kind not in kinds:
        return None
    return kinds.index(kind), views.get(kind).describe()


def unsupported_reason(version):
    """Why a tag of this stored-format version cannot be read here, or None if it can.

    Example:
      >>> unsupported_reason(4)
      'Written by tb-cnnvis stored-format version 4; this plugin reads version 1, 2 or 3; upgrade tb-cnnvis.'
    """
    known = type(version) is int  # not a bool, a float or a string
    if known and version in SUPPORTED_VERSIONS:
        return None
    *first, last = (str(v) for v in SUPPORTED_VERSIONS)
    reads = f"{', '.join(first)} or {last}" if first else last
    if not known:
        written = f"Written with an unknown stored-format version ({version!r})"
        return f"{written}; this plugin reads version {reads}; log it again."
    advice = "upgrade tb-cnnvis" if version > max(SUPPORTED_VERSIONS) else "log it again"
    written = f"Written by tb-cnnvis stored-format version {version}"
    return f"{written}; this plugin reads version {reads}; {advice}."


@functools.lru_cache(maxsize=4096)
def _tag_content_cached(raw):
    """Parsed plugin content of a tag, or None (cached by the raw bytes)."""
    try:
        return metadata.parse_content(raw)
    except (UnicodeDecodeError, ValueError):
        return None


def tag_content(raw):
    """A fresh copy of a tag's parsed plugin content, or None if it is not cnnvis content."""
    content = _tag_content_cached(bytes(raw or b""))
    return None if content is None else dict(content)

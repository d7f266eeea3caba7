"""What the writers share: facts made JSON-ready, kind checks, pixels from images.

The writers of ``tb_cnnvis.summary`` and of each view family store a step's facts as JSON
and its images as 8-bit PNGs; these helpers turn what the algorithms return into what is
stored (``summary`` re-exports them for the family modules).

Example:
    >>> jsonable({"max": np.array([1.5, np.nan])})
    {'max': [1.5, None]}
"""

import math

import numpy as np

from tb_cnnvis import imaging, metadata


def jsonable(value):
    """numpy and non-finite floats made JSON-safe (NaN/Inf become null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer, bool, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def int_list(values):
    """A list of Python ints, or None."""
    return None if values is None else [int(v) for v in np.asarray(values).reshape(-1)]


def shape_list(shape):
    """A shape as a list of ints (unknown dimensions as None), or None."""
    return None if shape is None else [None if d is None else int(d) for d in shape]


def float_list(values):
    """A list of Python floats (non-finite kept for ``jsonable`` to null), or None."""
    return None if values is None else [float(v) for v in np.asarray(values).reshape(-1)]


def with_metrics(facts, metrics):
    """``facts`` plus the metric facts, which must not replace any of them."""
    if not metrics:
        return facts
    clash = sorted(set(facts) & set(metrics))
    if clash:
        raise ValueError(f"metrics must not replace the facts {clash}.")
    return {**facts, **metrics}


def check_kind(tag_content, family):
    """Raise if ``tag_content`` is not of a kind of ``family`` (None: the probes tag)."""
    kind = tag_content.get("kind") if isinstance(tag_content, dict) else None
    if family is None:
        expected, ok = [metadata.PROBES], kind == metadata.PROBES
    else:
        from tb_cnnvis import views

        expected = list(views.kinds(family))
        ok = kind in expected
    if not ok:
        raise ValueError(f"This writer takes content of kind {expected}; got {kind!r}.")


def pixels_of(images, what, ndim):
    """uint8 pixels from uint8 images or floats in [0, 1]."""
    images = np.asarray(images)
    if images.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions; got shape {images.shape}.")
    return images if images.dtype == np.uint8 else imaging.to_uint8(images)

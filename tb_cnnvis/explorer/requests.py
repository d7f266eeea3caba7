"""An explore request read from the JSON body of ``POST /explore``, checked field by field.

Everything a page may send is checked here, before any work is queued: the body's size and
shape, the names (run, view, layer) as bounded strings, the numbers as bounded ints, and an
uploaded image as PNG or JPEG bytes within ``MAX_UPLOAD_BYTES`` and ``MAX_UPLOAD_PIXELS``
(read from its header here; it is decoded by the worker, ``decode_image``). A problem is a
``RequestError``: a sentence for a ``4xx`` answer. Parsing imports no TensorFlow.

Example:
    >>> request = parse_body(b'{"run": "cnnvis", "step": 3, "view": "grad_cam", '
    ...                      b'"layer": "conv2", "image": {"probe": 0}, "class_index": 1}')
    >>> request.image
    ('probe', 0)
"""

import base64
import binascii
import hashlib
import json
import struct
from typing import NamedTuple

import numpy as np

MAX_BODY_BYTES = 12 * 2**20
"""The largest request body read (an upload in base64 takes 4/3 of its bytes)."""

MAX_UPLOAD_BYTES = 8 * 2**20
"""The largest uploaded image file."""

MAX_UPLOAD_PIXELS = 4096 * 4096
"""The most pixels an uploaded image may have (checked before it is decoded)."""

MAX_NAME_LENGTH = 1024
MAX_CHANNELS = 64
"""The most channels (filters) one request may ask for."""

TARGETS = {"raise": 1, "lower": -1}
"""``target`` values: a regression head's value raised or lowered."""

LIVE_STEP = -1
"""The step that names a live model handed to ``cv.explore`` without a step."""

_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
_FIELDS = {"run", "step", "view", "layer", "image", "class_index", "target", "channels"}


class RequestError(ValueError):
    """A request that cannot be served as sent; the message says why (a ``4xx`` answer).

    Attributes:
        code: the HTTP status (400 malformed, 404 unknown name, 413 too large, 415 not an
            image).
    """

    def __init__(self, message, code=400):
        super().__init__(message)
        self.code = code


class ExploreRequest(NamedTuple):
    """One checked explore request.

    Attributes:
        run, step, view, layer: what to compute (``layer`` None for views at the input).
        image: ``("probe", index)`` or ``("upload", PNG or JPEG bytes)`` (header checked).
        image_hash: a name of the image (a probe's index, or the upload's SHA-256).
        class_index: the class to explain, or None (the prediction).
        target: ``"raise"`` / ``"lower"`` for a regression head, or None.
        channels: the channels (filters) asked for, or None (the view's default).
    """

    run: str
    step: int
    view: str
    layer: str | None
    image: tuple
    image_hash: str
    class_index: int | None = None
    target: str | None = None
    channels: tuple | None = None

    def options(self):
        """What, besides the snapshot and the image, the result depends on (JSON-ready)."""
        return {
            "view": self.view,
            "layer": self.layer,
            "class_index": self.class_index,
            "target": self.target,
            "channels": None if self.channels is None else list(self.channels),
        }


def parse_body(body):
    """An ``ExploreRequest`` from the raw bytes of a request body.

    Raises:
        RequestError: the body is too large, not a JSON object, or a field is missing,
            unknown or of the wrong kind; an upload is too large or not a PNG or JPEG.
    """
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(f"the body is larger than {MAX_BODY_BYTES} bytes", 413)
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("the body must be a JSON object (UTF-8)") from None
    if not isinstance(data, dict):
        raise RequestError('the body must be a JSON object, e.g. {"run": ..., "step": ...}')
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise RequestError(f"unknown fields {unknown[:5]}; the fields are {sorted(_FIELDS)}")
    image, image_hash = _image(data.get("image"))
    target = data.get("target")
    if target is not None and target not in TARGETS:
        raise RequestError(f"target must be one of {sorted(TARGETS)} or absent")
    layer = data.get("layer")
    return ExploreRequest(
        run=_name(data, "run"),
        step=_int(data.get("step"), "step", LIVE_STEP),
        view=_name(data, "view"),
        layer=None if layer is None else _name(data, "layer"),
        image=image,
        image_hash=image_hash,
        class_index=None
        if data.get("class_index") is None
        else _int(data["class_index"], "class_index", 0),
        target=target,
        channels=_channels(data.get("channels")),
    )


def _name(data, field):
    """A required non-empty string field of bounded length."""
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise RequestError(f"{field} must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise RequestError(f"{field} is longer than {MAX_NAME_LENGTH} characters")
    return value


def _int(value, field, lowest):
    """An int field >= ``lowest`` (not a bool, not a float) below 10**12."""
    if type(value) is not int or not lowest <= value < 10**12:
        raise RequestError(f"{field} must be an integer >= {lowest}; got {str(value)[:40]}")
    return value


def _channels(value):
    """``channels``: None, or a list of distinct ints >= 0, at most ``MAX_CHANNELS``."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_CHANNELS:
        raise RequestError(f"channels must be a list of 1 to {MAX_CHANNELS} channel indices")
    channels = tuple(_int(v, "each channel", 0) for v in value)
    if len(set(channels)) != len(channels):
        raise RequestError("channels must be distinct")
    return channels


def _image(value):
    """``(("probe", i) | ("upload", pixels), hash)`` from the ``image`` field."""
    if not isinstance(value, dict) or len(value) != 1:
        raise RequestError('image must be {"probe": index} or {"png": "<base64 PNG or JPEG>"}')
    if "probe" in value:
        index = _int(value["probe"], "image.probe", 0)
        return ("probe", index), f"probe-{index}"
    encoded = value.get("png")
    if not isinstance(encoded, str):
        raise RequestError('image must be {"probe": index} or {"png": "<base64 PNG or JPEG>"}')
    if "," in encoded[:100] and encoded.startswith("data:"):
        encoded = encoded.split(",", 1)[1]  # a data: URL as the browser makes it
    if len(encoded) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise RequestError(f"the image is larger than {MAX_UPLOAD_BYTES} bytes", 413)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("image.png is not valid base64") from None
    _, width, height = image_size(data)
    if width * height > MAX_UPLOAD_PIXELS or width < 1 or height < 1:
        raise RequestError(
            f"the image has {width}x{height} pixels; at most {MAX_UPLOAD_PIXELS} are taken "
            "(resize it first)",
            413,
        )
    return ("upload", data), hashlib.sha256(data).hexdigest()


def image_size(data):
    """``(kind, width, height)`` of PNG or JPEG bytes, read from the header alone.

    Raises:
        RequestError: 413 for too many bytes, 415 for anything but a PNG or a JPEG, 400 for
            a header that cannot be read.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise RequestError(f"the image is larger than {MAX_UPLOAD_BYTES} bytes", 413)
    kind = next((name for sig, name in _SIGNATURES.items() if data.startswith(sig)), None)
    if kind is None:
        raise RequestError("the image must be a PNG or a JPEG file", 415)
    size = _png_size(data) if kind == "PNG" else _jpeg_size(data)
    if size is None:
        raise RequestError(f"the image cannot be read as a {kind} file (damaged header)")
    return (kind, *size)


def _png_size(data):
    """(width, height) from a PNG's IHDR chunk, or None."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data):
    """(width, height) from a JPEG's first start-of-frame marker, or None."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if offset + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        if length < 2:
            return None
        offset += 2 + length
    return None


def decode_image(data):
    """uint8 RGB pixels (H, W, 3) of PNG or JPEG bytes whose header ``image_size`` checked.

    Decoded by TensorFlow (loaded when exploring anyway), never before the header said the
    image is within ``MAX_UPLOAD_PIXELS``.

    Raises:
        RequestError: 400 for a file that cannot be decoded.
    """
    import tensorflow as tf

    kind, width, height = image_size(data)
    try:
        pixels = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, ValueError):
        raise RequestError(f"the image cannot be read as a {kind} file (damaged?)") from None
    if pixels.shape[:2] != (height, width):
        raise RequestError(f"the {kind} file's header does not match its pixels (damaged?)")
    return np.asarray(pixels, np.uint8)

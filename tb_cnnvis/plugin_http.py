"""The HTTP side of the cnnvis plugin's routes: GET-only handling with JSON errors, and
query parameters read and checked (``tb_cnnvis.plugin``)."""

import logging

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from werkzeug import wrappers

logger = logging.getLogger("tb_cnnvis.plugin")

_ALLOWED_METHODS = ("GET", "HEAD")
_MAX_PARAM_LENGTH = 4096


def handle(environ, start_response, answer):
    """Run ``answer(request, ctx, experiment_id)`` as a GET-only route with JSON errors."""
    request = wrappers.Request(environ)
    if request.method not in _ALLOWED_METHODS:
        response = error_response(request, f"method {request.method} not allowed; use GET", 405)
        response.headers["Allow"] = ", ".join(_ALLOWED_METHODS)
        return response(environ, start_response)
    try:
        result = answer(request, plugin_util.context(environ), plugin_util.experiment_id(environ))
        if not isinstance(result, wrappers.Response):
            result = http_util.Respond(request, result, "application/json")
    except errors.PublicError as error:
        code = error.http_code if 400 <= error.http_code < 500 else 500
        result = error_response(request, str(error), code)
    except Exception:  # An unexpected failure: log it, answer without a stack trace.
        logger.exception("cnnvis: request %s failed", request.full_path)
        result = error_response(request, "internal error; see the TensorBoard log", 500)
    return result(environ, start_response)


def error_response(request, message, code):
    """A JSON ``{"error": message}`` response."""
    return http_util.Respond(request, {"error": message}, "application/json", code=code)


def param(request, name, required=True):
    """A query parameter; raises ``InvalidArgumentError`` if missing (when required) or huge."""
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise errors.InvalidArgumentError(f"missing query parameter {name!r}")
        return None
    if len(value) > _MAX_PARAM_LENGTH:
        raise errors.InvalidArgumentError(
            f"query parameter {name!r} is too long ({len(value)} > {_MAX_PARAM_LENGTH})"
        )
    return value


def int_param(request, name, required=True):
    """A non-negative integer query parameter (``InvalidArgumentError`` otherwise)."""
    value = param(request, name, required)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 12:
        raise errors.InvalidArgumentError(
            f"{name} must be a non-negative integer (as given in /steps), got {value[:40]!r}"
        )
    return int(value)


def names(mapping, limit=30):
    """Sorted keys of ``mapping`` for an error message, shortened past ``limit``."""
    names = sorted(mapping)
    return names if len(names) <= limit else [*names[:limit], f"... ({len(names)} in all)"]

"""The cnnvis TensorBoard plugin: JSON and PNG routes over the data provider, and the frontend.

Every route is described, with example responses, in ``tb_cnnvis/http_api.md``. Tags, steps
and facts are read only through ``context.data_provider``, so the plugin works the same
under the Python loader (``--load_fast=false``) and the Rust data server (the default). The
stored format is in the docstring of ``tb_cnnvis/summary.py``: each step of a tag is a blob
sequence whose first blob refers to the step's JSON facts in a pixel file of the run's
plugin directory, beside its PNGs, which the plugin reads itself (``plugin_steps``, format
version 3); or is the facts, their PNGs in a pixel file (version 2) or in the other blobs
(version 1).

Route handlers are thin: they read the query, call an ``_..._impl`` method (testable without
HTTP), and answer through ``tensorboard.backend.http_util.Respond``. Every route is GET-only
and read-only; errors are ``{"error": message}`` JSON with status 400 or 404.
"""

import functools
import gzip
import logging
import re
import threading
import time
from pathlib import Path

from tensorboard import errors
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin

from tb_cnnvis import metadata, plugin_views
from tb_cnnvis.plugin_data import BlobReader, SizedLruCache
from tb_cnnvis.plugin_http import handle, int_param, names, param
from tb_cnnvis.plugin_scan import StepScan
from tb_cnnvis.plugin_steps import StepIndex
from tb_cnnvis.plugin_views import SUPPORTED_VERSIONS, tag_content, tag_sort_key, unsupported_reason

__all__ = [
    "SUPPORTED_VERSIONS",
    "CnnVisPlugin",
    "frontend_dir",
    "static_files",
    "unsupported_reason",
]

logger = logging.getLogger(__name__)

STATIC_NAME = re.compile(r"[a-z_]+\.(js|css)")
"""The names of the frontend files served (matched whole): lower-case letters and ``_``,
then ``.js`` or ``.css``. Nothing else in the folder, and nothing outside it, is served."""

CONTENT_TYPES = {"js": "text/javascript", "css": "text/css"}
"""The content type of a served frontend file, by extension."""

SERIES_STATE_SECONDS = 1.0
"""How long a series' state (``max_step``, ``max_wall_time``) read for ``/steps`` or listed
by ``/tags`` is taken as current: ``/steps`` follows what ``/tags`` last listed, and a new
epoch that ``/tags`` has not listed yet shows up in ``/steps`` at most this much later
(TensorBoard itself reloads every 5 seconds by default)."""

ANSWERS_CACHE_BYTES = 16 * 1024 * 1024
"""Most bytes of gzip-compressed ``/steps`` answers kept (a 1,000-step series: ~30 kB)."""

BLOB_MAX_AGE_SECONDS = 24 * 3600
"""Browsers may cache a blob this long: a blob URL names one stored, immutable value."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_READ_ALL = 2**31 - 1  # "keep everything" at read time; downsample=0 would return nothing.


def frontend_dir():
    """The folder the frontend files are served from, or None if it cannot be found.

    A regular install carries them as the package data folder ``tb_cnnvis/frontend``; an
    editable install (or a source checkout) has them in the repository's ``frontend/``.

    Returns:
      A ``pathlib.Path`` holding ``index.js``, or None.

    Example:
      >>> frontend_dir().joinpath("index.js").is_file()
      True
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "frontend", package.parent / "frontend"):
        if (candidate / "index.js").is_file():
            return candidate
    return None


def static_files(folder):
    """The frontend files served from ``folder``: each file whose name matches ``STATIC_NAME``.

    Args:
      folder: a ``pathlib.Path`` (usually ``frontend_dir()``), or None.

    Returns:
      A dict ``{name: content type}``, sorted by name; empty if ``folder`` is None.

    Example:
      >>> static_files(frontend_dir())["index.js"]
      'text/javascript'
    """
    if folder is None:
        return {}
    files = {}
    for path in sorted(folder.iterdir()):
        match = STATIC_NAME.fullmatch(path.name)
        if match and path.is_file():
            files[path.name] = CONTENT_TYPES[match.group(1)]
    return files


class CnnVisPlugin(base_plugin.TBPlugin):
    """Serves cnnvis summaries (feature maps, filter patterns, CAMs, projections) to the tab.

    TensorBoard creates it through ``tb_cnnvis.plugin_loader.CnnVisLoader``; tests may create
    it directly from a ``base_plugin.TBContext`` that has a ``data_provider``.

    Example:
      >>> plugin = CnnVisPlugin(base_plugin.TBContext(data_provider=provider))
      >>> plugin._tags_impl(ctx, experiment="")["runs"][0]["run"]
      'cnnvis'
    """

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        """Keep the data provider and the sampling bound; read nothing yet.

        Args:
          context: a ``base_plugin.TBContext``; ``data_provider``, ``sampling_hints``,
            ``logdir`` and (for ``--logdir_spec``) ``multiplexer`` are used.
        """
        self._data_provider = context.data_provider
        hint = (context.sampling_hints or {}).get(self.plugin_name)
        self._downsample = hint if isinstance(hint, int) and hint > 0 else _READ_ALL
        self._frontend_dir = frontend_dir()
        self._static_files = static_files(self._frontend_dir)
        self._answers = SizedLruCache(ANSWERS_CACHE_BYTES)  # gzip-compressed /steps
        self._steps = StepIndex(
            self._data_provider,
            BlobReader(self._data_provider, facts_chars=0),  # StepIndex keeps served steps
            getattr(context, "logdir", None),
            self._downsample,
            getattr(getattr(context, "multiplexer", None), "RunPaths", None),  # --logdir_spec
        )
        self._states = {}  # (experiment, run, tag) -> (series state, when it was read)
        self._scan = StepScan(self._scan_series)  # notes of damage without asking /steps
        self._warned = set()  # (run, tag) pairs whose unsupported version was logged
        self._warned_lock = threading.Lock()

    def get_plugin_apps(self):
        """The routes, relative to ``/data/plugin/cnnvis``: one exact route per frontend file.

        The frontend files are found in the folder when the plugin is created
        (``static_files``); TensorBoard matches routes exactly, so no other path reaches
        ``_serve_static``.
        """
        apps = {
            "/tags": self._serve_tags,
            "/steps": self._serve_steps,
            "/blob": self._serve_blob,
        }
        for name in self._static_files:
            apps["/" + name] = functools.partial(self._serve_static, name)
        from tb_cnnvis.explorer.routes import ExploreRoutes  # explore: tb_cnnvis/explorer/

        apps.update(ExploreRoutes(self._data_provider, self._steps._logdir).apps())
        return apps

    def is_active(self):
        """False: TensorBoard enables the tab when the data provider lists cnnvis data."""
        return False

    def frontend_metadata(self):
        """The ES module TensorBoard loads into the tab's iframe, and the tab's name."""
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name="CNN Vis", disable_reload=False
        )

    # ----------------------------------------------------------------------- logic

    def _tags_impl(self, ctx, experiment):
        """Every run with cnnvis data and its tags with their metadata, and the views of
        those tags in tab order, as the tags describe them (``GET /tags``, ``plugin_views``).

        A tag of a stored-format version this plugin does not read is listed with an
        ``"unsupported"`` sentence (and logged once per run and tag), so that no reader
        draws it as if it were of the current format.
        """
        mapping = self._data_provider.list_blob_sequences(
            ctx, experiment_id=experiment, plugin_name=self.plugin_name
        )
        listed = []
        for run in sorted(mapping):
            tags = []
            for tag, series in mapping[run].items():
                content = tag_content(series.plugin_content)
                if content is None:
                    logger.warning("cnnvis: unreadable metadata for run %r tag %r", run, tag)
                    continue
                extra = {
                    "max_step": series.max_step,
                    "max_wall_time": series.max_wall_time,
                    "series": self._steps.series_id(experiment, run, tag),
                }
                state = (series.max_step, series.max_wall_time)
                self._states[(experiment, run, tag)] = (state, time.monotonic())
                reason = unsupported_reason(content.get("version"))
                if reason is not None:
                    extra["unsupported"] = reason
                    self._warn_once(run, tag, reason)
                tags.append({"tag": tag, **content, **extra})
            if tags:
                listed.append((run, tags))
        self._scan.request(
            ctx,
            experiment,
            [
                (run, tag["tag"], (tag["max_step"], tag["max_wall_time"]))
                for run, tags in listed
                for tag in tags
                if "unsupported" not in tag
            ],
        )
        described = plugin_views.catalog(tag for _, tags in listed for tag in tags)
        ranks = {view["kind"]: rank for rank, view in enumerate(described)}
        runs = []
        for run, tags in listed:
            entry = {"run": run, "tags": sorted(tags, key=lambda t: tag_sort_key(t, ranks))}
            notes = self._steps.notes.of(experiment, run)
            if notes:
                entry["notes"] = notes
            runs.append(entry)
        return {"runs": runs, "views": described}

    def _warn_once(self, run, tag, reason):
        """Log that a tag cannot be read, the first time ``/tags`` meets it."""
        with self._warned_lock:
            if (run, tag) in self._warned:
                return
            self._warned.add((run, tag))
        logger.warning("cnnvis: run %r tag %r is not shown: %s", run, tag, reason)

    def _steps_impl(self, ctx, experiment, run, tag, step=None, read_ahead=True):
        """The JSON text of ``GET /steps``: every stored step of one series, in step order.

        Returns text rather than a dict so that the facts of each step, parsed once and kept
        as compact JSON in a bounded cache, are not parsed and dumped again per request.

        Raises:
          errors.NotFoundError: the run, tag or step has no cnnvis data.
        """
        data = self._data_provider.read_blob_sequences(
            ctx,
            experiment_id=experiment,
            plugin_name=self.plugin_name,
            downsample=self._downsample,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        )
        if tag not in data.get(run, {}):
            self._raise_not_found(ctx, experiment, run, tag)
        series = sorted(data[run][tag], key=lambda datum: datum.step)
        if step is not None:
            series = [datum for datum in series if datum.step == step]
            if not series:
                raise errors.NotFoundError(f"run {run!r} tag {tag!r} has no step {step}")
        return self._steps.steps_json(ctx, experiment, run, tag, series, read_ahead)

    def _steps_gzip(self, ctx, experiment, run, tag, step=None, read_ahead=True):
        """``_steps_impl``'s answer gzip-compressed, kept per state of the series (its
        ``max_step`` and ``max_wall_time``) while every step in it could be served."""
        state = self._series_state(ctx, experiment, run, tag)
        key = state and (experiment, run, tag, step, *state)
        answer = self._answers.get(key) if key else None
        if answer is None:
            noted = len(self._steps.notes.of(experiment, run))
            text = self._steps_impl(ctx, experiment, run, tag, step, read_ahead)
            answer = gzip.compress(text.encode("utf-8"), compresslevel=3, mtime=0)
            if key and noted == len(self._steps.notes.of(experiment, run)) == 0:
                self._answers.put(key, answer)
        return answer

    def _scan_series(self, ctx, experiment, run, tag):
        """Read a series' steps for ``StepScan``, without reading its images ahead."""
        self._steps_gzip(ctx, experiment, run, tag, read_ahead=False)

    def _series_state(self, ctx, experiment, run, tag):
        """``(max_step, max_wall_time)`` of a series (None if it has no data): as ``/tags``
        last listed it, or asked of the provider, at most ``SERIES_STATE_SECONDS`` old (the
        Python loader's listing of a series walks every kept step: milliseconds per
        request at 1,000 epochs)."""
        now = time.monotonic()
        known = self._states.get((experiment, run, tag))
        if known is not None and now - known[1] < SERIES_STATE_SECONDS:
            return known[0]
        listing = self._data_provider.list_blob_sequences(
            ctx,
            experiment_id=experiment,
            plugin_name=self.plugin_name,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        )
        series = listing.get(run, {}).get(tag)
        state = series and (series.max_step, series.max_wall_time)
        self._states[(experiment, run, tag)] = (state, now)
        return state

    def _blob_impl(self, ctx, experiment, series_id, step, index, version=None):
        """The PNG bytes of image ``index`` of ``step`` of a series (``GET /blob``).

        Raises:
          errors.InvalidArgumentError: a malformed series id.
          errors.NotFoundError: no such series, step or image, or the image's file is
            missing or damaged (the sentence says which; ``/tags`` then carries a note).
        """
        return self._steps.image(ctx, experiment, series_id, step, index, version)

    def _static_impl(self, name):
        """The bytes and content type of one frontend file found by ``static_files``.

        Raises:
          errors.NotFoundError: the name was not found in the frontend folder, or the file
            is gone.
        """
        content_type = self._static_files.get(name)
        if content_type is None or not STATIC_NAME.fullmatch(name):
            raise errors.NotFoundError(f"no frontend file {name!r}")
        try:
            return (self._frontend_dir / name).read_bytes(), content_type
        except OSError:
            raise errors.NotFoundError(f"no frontend file {name!r}") from None

    def _raise_not_found(self, ctx, experiment, run, tag):
        """Raise ``NotFoundError`` for ``run``/``tag``, naming the runs or tags that exist."""
        mapping = self._data_provider.list_blob_sequences(
            ctx, experiment_id=experiment, plugin_name=self.plugin_name
        )
        if run not in mapping:
            raise errors.NotFoundError(
                f"no cnnvis data for run {run!r}; runs with cnnvis data: {names(mapping)}"
            )
        raise errors.NotFoundError(
            f"run {run!r} has no cnnvis tag {tag!r}; its tags: {names(mapping[run])}"
        )

    # ----------------------------------------------------------------------- routes

    def _serve_tags(self, environ, start_response):
        """``GET /tags``."""
        return handle(environ, start_response, lambda request, ctx, eid: self._tags_impl(ctx, eid))

    def _serve_steps(self, environ, start_response):
        """``GET /steps?run=R&tag=T[&step=S]`` or ``GET /steps?s=SERIES[&step=S]``."""

        def answer(request, ctx, eid):
            series_id = param(request, "s", required=False)
            if series_id is not None:  # the series' id from /tags: short whatever the names
                run, tag = self._steps.series_of(ctx, eid, series_id)
            else:
                run, tag = param(request, "run"), param(request, "tag")
            step = int_param(request, "step", required=False)
            data = self._steps_gzip(ctx, eid, run, tag, step)
            return http_util.Respond(request, data, "application/json", content_encoding="gzip")

        return handle(environ, start_response, answer)

    def _serve_blob(self, environ, start_response):
        """``GET /blob?s=SERIES&step=S&i=I[&t=version]``."""

        def answer(request, ctx, eid):
            series_id = param(request, "s")
            step = int_param(request, "step")
            index = int_param(request, "i")
            version = param(request, "t", required=False)
            data = self._blob_impl(ctx, eid, series_id, step, index, version)
            content_type = "image/png" if data.startswith(_PNG_SIGNATURE) else None
            content_type = content_type or "application/octet-stream"
            return http_util.Respond(request, data, content_type, expires=BLOB_MAX_AGE_SECONDS)

        return handle(environ, start_response, answer)

    def _serve_static(self, name, environ, start_response):
        """``GET /<name>`` for a frontend file (``static_files``)."""

        def answer(request, ctx, eid):
            data, content_type = self._static_impl(name)
            return http_util.Respond(request, data, content_type)

        return handle(environ, start_response, answer)

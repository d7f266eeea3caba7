"""The plugin's explore routes (``tb_cnnvis/http_api.md``, section "Explore").

- ``POST /explore``: compute a view of any layer of a saved model for a probe or an
  uploaded image; ``200`` with the result, or ``202`` with a ``poll`` URL.
- ``GET /explore?job=ID``: the same answer for a job still running.
- ``GET /explore_image?k=KEY&i=I``: PNG ``i`` of a result.
- ``GET /explore_info?run=R[&step=S]``: the run's steps with a model, its 4-D layers, probes
  and class names; without ``run``: every run with a model and its steps.

POSTs are guarded as TensorBoard's own frontend sends them: a ``X-XSRF-Protected: 1``
header and a JSON content type, which a page of another site cannot send without a CORS
preflight that TensorBoard never grants. Every problem a request can cause is a ``4xx``
with a sentence. TensorFlow and the models are loaded by the first explore request.

Example:
    >>> routes = ExploreRoutes(provider, logdir)
    >>> apps = routes.apps()       # merged into CnnVisPlugin.get_plugin_apps()
"""

import logging
import threading
import urllib.parse

from tensorboard import plugin_util
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_cnnvis.explorer.cache import KEY, ResultCache, result_key
from tb_cnnvis.explorer.jobs import JobQueue, QueueFull
from tb_cnnvis.explorer.requests import MAX_BODY_BYTES, RequestError, parse_body
from tb_cnnvis.explorer.sources import Sources, live_runs

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1.5
"""How long a POST waits for its result before answering ``202``."""


class ExploreRoutes:
    """The explore routes of one plugin instance: sources, one model, a cache, one worker.

    Args:
        data_provider: TensorBoard's data provider (which runs exist).
        logdir: TensorBoard's ``--logdir`` (None: live models only).
        cache: a ``ResultCache`` (default: ``cache.default_folder()``).
    """

    def __init__(self, data_provider, logdir, cache=None):
        self._provider = data_provider
        self.sources = Sources(logdir)
        self.cache = cache or ResultCache()
        self.jobs = JobQueue()
        self._store = None
        self._info = {}
        self._compute_lock = threading.Lock()

    def apps(self):
        """``{route: WSGI app}`` to merge into the plugin's routes."""
        return {
            "/explore": self._serve_explore,
            "/explore_image": self._serve_image,
            "/explore_info": self._serve_info,
        }

    # ------------------------------------------------------------------ logic

    def _known_runs(self, environ):
        """The runs TensorBoard lists for this experiment."""
        ctx, eid = plugin_util.context(environ), plugin_util.experiment_id(environ)
        try:
            return {run.run_name for run in self._provider.list_runs(ctx, experiment_id=eid)}
        except Exception:  # A provider without list_runs: the cnnvis runs.
            return set(
                self._provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name="cnnvis")
            )

    def submit_impl(self, request, known_runs, session=None, batch=None):
        """The answer (status, JSON) to an ``ExploreRequest``: cached, computed or queued."""
        source = self.sources.source(request.run, request.step, known_runs)
        key = result_key(source.identity, request.options(), request.image_hash)
        if self.cache.get(key) is not None:
            return 200, self._answer(key, request.run, request.step)
        meta = self.sources.meta(request.run)

        def run(job):
            with self._compute_lock:
                from tb_cnnvis.explorer import compute

                model = self._model_store().get(source.model)
                job.progress = 0.3
                image = compute.model_image(model, meta, request)
                content, facts, pngs = compute.compute(model, meta, request, image, request.step)
                self.cache.put(key, content, facts, pngs)

        try:
            job = self.jobs.submit(key, run, session, batch)
        except QueueFull as error:
            raise RequestError(str(error), 429) from None
        job.about = job.about or (request.run, request.step)
        return self.poll_impl(self.jobs.wait(job, WAIT_SECONDS).id)

    def poll_impl(self, job_id):
        """``(status, JSON)`` of a job: the result, its failure, or its progress."""
        job = self.jobs.job(job_id)
        if job is None:
            raise RequestError("no explore job with this id (finished long ago?); ask again", 404)
        run, step = job.about or (None, None)
        if job.state == "done":
            entry = self.cache.get(job.key)
            if entry is None:
                raise RequestError("the result was evicted from the cache; ask again", 410)
            return 200, self._answer(job.key, run, step)
        if job.state in ("failed", "cancelled"):
            raise RequestError(job.error, job.code or 422)
        ahead = self.jobs.position(job)
        progress = job.progress if ahead == 0 else 0.05 / ahead
        poll = "explore?" + urllib.parse.urlencode({"job": job.id})
        return 202, {"progress": round(progress, 3), "poll": poll, "queued_before": ahead}

    def _answer(self, key, run, step):
        """The ``200`` JSON of a cached result."""
        entry = self.cache.get(key)
        images = [
            "explore_image?" + urllib.parse.urlencode({"k": key, "i": i})
            for i in range(len(entry["spans"]))
        ]
        return {
            "run": run,
            "step": step,
            "content": entry["content"],
            "facts": entry["facts"],
            "images": images,
        }

    def _model_store(self):
        """The one ``ModelStore`` (made, with TensorFlow, on first use)."""
        if self._store is None:
            from tb_cnnvis.explorer.compute import ModelStore

            self._store = ModelStore()
        return self._store

    def runs_impl(self, known_runs):
        """Every run with a model (a snapshot or a live one) and its steps."""
        runs = []
        for run in sorted(known_runs):
            try:
                steps = self.sources.steps(run, known_runs)
            except RequestError:
                continue
            if steps:
                runs.append({"run": run, "steps": steps, "live": run in live_runs()})
        return {"runs": runs}

    def info_impl(self, run, step, known_runs):
        """The run's steps with a model, and the 4-D layers, probes, classes of one of them."""
        steps = self.sources.steps(run, known_runs)
        if not steps:
            raise RequestError(
                f"run {run!r} has no saved models (log with keep_models=True, or use cv.explore)",
                404,
            )
        step = steps[-1] if step is None else step
        source = self.sources.source(run, step, known_runs)
        if source.identity not in self._info:
            with self._compute_lock:
                from tb_cnnvis import capture, views

                model = self._model_store().get(source.model)
                layers = [
                    {
                        "path": ref.path,
                        "class": type(ref.layer).__name__,
                        "output_shape": [None if v is None else int(v) for v in ref.output_shape],
                    }
                    for ref in capture.select_layers(model, None)
                ]
                input_shape = [None if v is None else int(v) for v in capture.input_shape(model)]
                self._info[source.identity] = {
                    "layers": layers,
                    "input_shape": input_shape,
                    "views": views.catalog(),
                }
        meta = self.sources.meta(run)
        probes = 0 if meta.probes is None else len(meta.probes)
        return {
            "run": run,
            "steps": steps,
            "step": step,
            "probes": probes,
            "class_names": meta.class_names,
            **self._info[source.identity],
        }

    # ------------------------------------------------------------------ routes

    def _serve_explore(self, environ, start_response):
        """``POST /explore`` (a JSON body) or ``GET /explore?job=ID``."""
        request = wrappers.Request(environ)
        try:
            if request.method == "GET":
                job_id = request.args.get("job", "")
                if len(job_id) != 32 or not job_id.isalnum():
                    raise RequestError("job must be the id of a poll URL from POST /explore")
                code, body = self.poll_impl(job_id)
            elif request.method == "POST":
                _check_post(request)
                body_bytes = request.get_data(cache=False)
                explore = parse_body(body_bytes)
                code, body = self.submit_impl(
                    explore,
                    self._known_runs(environ),
                    _header(request, "X-Cnnvis-Session"),
                    _header(request, "X-Cnnvis-Batch"),
                )
            else:
                raise RequestError(f"method {request.method} not allowed; use POST or GET", 405)
        except RequestError as error:
            code, body = error.code, {"error": str(error)}
        except Exception:  # Unexpected: logged, answered without a stack trace.
            logger.exception("cnnvis: explore request failed")
            code, body = 500, {"error": "internal error; see the TensorBoard log"}
        return http_util.Respond(request, body, "application/json", code=code)(
            environ, start_response
        )

    def _serve_image(self, environ, start_response):
        """``GET /explore_image?k=KEY&i=I``."""
        request = wrappers.Request(environ)
        key, index = request.args.get("k", ""), request.args.get("i", "")
        data = None
        if KEY.fullmatch(key) and index.isdigit() and len(index) < 6:
            data = self.cache.png(key, int(index))
        if data is None:
            body = {"error": "no such explore image (evicted from the cache?); ask again"}
            return http_util.Respond(request, body, "application/json", code=404)(
                environ, start_response
            )
        return http_util.Respond(request, data, "image/png", expires=3600)(environ, start_response)

    def _serve_info(self, environ, start_response):
        """``GET /explore_info?run=R[&step=S]``."""
        request = wrappers.Request(environ)
        try:
            run = request.args.get("run", "")
            if len(run) > 1024:
                raise RequestError("run is longer than 1024 characters")
            step = request.args.get("step")
            if step is not None and not (step.lstrip("-").isdigit() and len(step) < 13):
                raise RequestError("step must be an integer")
            known = self._known_runs(environ) | set(live_runs())
            if not run:
                code, body = 200, self.runs_impl(known)
            else:
                code, body = 200, self.info_impl(run, None if step is None else int(step), known)
        except RequestError as error:
            code, body = error.code, {"error": str(error)}
        except Exception as error:  # A model that cannot be loaded: said, not a 500.
            logger.warning("cnnvis: explore_info failed", exc_info=True)
            code, body = (
                422,
                {
                    "error": f"the model cannot be loaded ({type(error).__name__}: "
                    f"{str(error)[:300]})"
                },
            )
        return http_util.Respond(request, body, "application/json", code=code)(
            environ, start_response
        )


def _check_post(request):
    """Refuse a POST that a page of another site could have sent."""
    if request.headers.get("X-XSRF-Protected") != "1":
        raise RequestError("POST /explore needs the header X-XSRF-Protected: 1", 403)
    if request.mimetype != "application/json":
        raise RequestError("POST /explore takes a JSON body (Content-Type: application/json)", 415)
    length = request.content_length
    if length is None or length > MAX_BODY_BYTES:
        raise RequestError(f"the body must have a Content-Length of at most {MAX_BODY_BYTES}", 413)


def _header(request, name):
    """A short header value, or None."""
    value = request.headers.get(name)
    return value[:100] if value else None

"""One compute worker, a bounded queue, stale requests cancelled, a time limit per job.

The plugin's HTTP threads only enqueue (``JobQueue.submit``) and look (``JobQueue.job``);
one worker thread, started with the first job, runs them one at a time, so TensorFlow and
one model are busy at most once. A page names its requests with a session and a batch
(headers ``X-Cnnvis-Session`` and ``X-Cnnvis-Batch``): a new batch from a session cancels
that session's queued jobs of older batches (the page asked for something else; a
filmstrip is one batch). Jobs that wait longer than ``time_limit`` are failed without
running; a running job past it is reported failed, its late result still cached. Finished
jobs are forgotten after ``KEEP_SECONDS`` or beyond ``MAX_JOBS``.

Example:
    >>> queue = JobQueue()
    >>> job = queue.submit("k", run=lambda job: compute(...), session="s", batch="b")
    >>> queue.wait(job, 2.0).state
    'done'
"""

import collections
import logging
import threading
import time
import uuid

logger = logging.getLogger(__name__)

MAX_QUEUED = 32
"""The most jobs waiting at once; more are refused (429)."""

MAX_JOBS = 1000
KEEP_SECONDS = 600.0
DEFAULT_TIME_LIMIT = 120.0
"""Seconds a job may wait and run before it is failed."""


class QueueFull(Exception):
    """The queue holds ``MAX_QUEUED`` jobs."""


class Job:
    """One request's computation: its state (``queued``, ``running``, ``done``,
    ``failed``, ``cancelled``), ``progress`` in 0..1, ``error`` (a sentence and a code)."""

    def __init__(self, key, run, session, batch):
        self.id = uuid.uuid4().hex
        self.key, self.run = key, run
        self.about = None  # what the caller says the job is for (its answer repeats it)
        self.session, self.batch = session, batch
        self.state, self.progress = "queued", 0.0
        self.error, self.code = None, None
        self.created = time.monotonic()
        self.started = self.finished = None
        self.done = threading.Event()

    def finish(self, state, error=None, code=None):
        """Mark the job finished."""
        if self.done.is_set():
            return
        self.state, self.error, self.code = state, error, code
        self.progress = 1.0 if state == "done" else self.progress
        self.finished = time.monotonic()
        self.done.set()


class JobQueue:
    """Jobs run one at a time by one worker thread.

    Args:
        time_limit: seconds a job may take from submission before it is failed.
    """

    def __init__(self, time_limit=DEFAULT_TIME_LIMIT):
        self.time_limit = float(time_limit)
        self._jobs = collections.OrderedDict()  # id -> Job, oldest first
        self._queue = collections.deque()
        self._by_key = {}  # result key -> the job computing it
        self._lock = threading.Condition()
        self._worker = None

    def submit(self, key, run, session=None, batch=None):
        """Queue ``run(job)`` for result ``key`` (or join the job already on it).

        Raises:
            QueueFull: ``MAX_QUEUED`` jobs are waiting.
        """
        with self._lock:
            self._forget_old()
            if session is not None:
                self._cancel_stale(session, batch)
            running = self._by_key.get(key)
            if running is not None and not running.done.is_set():
                return running
            if len(self._queue) >= MAX_QUEUED:
                raise QueueFull(f"{MAX_QUEUED} explore requests are waiting; try again soon")
            job = Job(key, run, session, batch)
            self._jobs[job.id] = job
            self._by_key[key] = job
            self._queue.append(job)
            self._start_worker()
            self._lock.notify()
            return job

    def job(self, job_id):
        """The job of ``job_id`` (its time limit checked), or None."""
        with self._lock:
            job = self._jobs.get(job_id)
        late = job is not None and time.monotonic() - job.created > self.time_limit
        if late and not job.done.is_set():
            job.finish("failed", f"took longer than {self.time_limit:.0f} s", 422)
        return job

    def wait(self, job, seconds):
        """``job`` after at most ``seconds`` of waiting for it to finish."""
        job.done.wait(max(0.0, seconds))
        return self.job(job.id) or job

    def position(self, job):
        """How many jobs run before ``job`` (0 when it is running or done)."""
        with self._lock:
            try:
                return self._queue.index(job) + 1
            except ValueError:
                return 0

    def _cancel_stale(self, session, batch):
        """Cancel the session's queued jobs of other batches."""
        for job in list(self._queue):
            if job.session == session and job.batch != batch:
                self._queue.remove(job)
                job.finish("cancelled", "cancelled: the page asked for something else", 409)

    def _forget_old(self):
        """Drop finished jobs older than ``KEEP_SECONDS`` or beyond ``MAX_JOBS``."""
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            old = job.finished is not None and now - job.finished > KEEP_SECONDS
            if old or (len(self._jobs) > MAX_JOBS and job.done.is_set()):
                del self._jobs[job_id]
                if self._by_key.get(job.key) is job:
                    del self._by_key[job.key]

    def _start_worker(self):
        """Start the worker thread if it is not running."""
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="cnnvis-explore", daemon=True)
            self._worker.start()

    def _work(self):
        """Run queued jobs forever, one at a time."""
        while True:
            with self._lock:
                while not self._queue:
                    self._lock.wait()
                job = self._queue.popleft()
            if time.monotonic() - job.created > self.time_limit:
                job.finish("failed", f"waited longer than {self.time_limit:.0f} s", 422)
                continue
            job.state, job.started, job.progress = "running", time.monotonic(), 0.1
            try:
                job.run(job)
            except Exception as error:  # A failed job is an answer, never the worker's end.
                code = getattr(error, "code", None)
                if isinstance(code, int) and 400 <= code < 500:
                    job.finish("failed", str(error), code)
                elif isinstance(error, ValueError):
                    job.finish("failed", str(error), 400)
                else:
                    logger.warning("cnnvis: explore job failed", exc_info=True)
                    job.finish(
                        "failed",
                        f"the computation failed ({type(error).__name__}: {str(error)[:300]})",
                        422,
                    )
                continue
            job.finish("done")

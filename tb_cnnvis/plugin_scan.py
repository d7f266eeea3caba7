"""Reading every series' steps in the background after ``/tags`` (``tb_cnnvis.plugin``), so
that damaged files are notes of ``/tags`` before anyone opens their series."""

import atexit
import concurrent.futures.thread  # noqa: F401  (registers its shutdown before ours)
import logging
import queue
import threading
import weakref

from tensorboard import errors

logger = logging.getLogger(__name__)


class StepScan:
    """Reads every series' steps in the background after ``/tags``, so that what cannot be
    read (a pixel file missing, short or damaged) is a note before anyone asks for it.

    One daemon thread reads one series at a time through ``read(ctx, experiment, run,
    tag)`` (the plugin's ``/steps``, which keeps what it reads), each series once per state
    (its ``max_step`` and ``max_wall_time``): a series that grows is read again, and only
    its new steps cost anything, so a scan costs at most what opening every series once
    would. A failure is logged and skipped.

    Example:
      >>> scan = StepScan(lambda ctx, experiment, run, tag: plugin._steps_gzip(ctx, ...))
      >>> scan.request(ctx, "", [("cnnvis", "grad_cam/conv2", (14, 1796047749.1))])
    """

    def __init__(self, read):
        self._read = read
        self._scanned = {}  # (experiment, run, tag) -> state read, or queued
        self._queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = None
        self._stopping = False
        _SCANS.add(self)

    def request(self, ctx, experiment, series):
        """Queue each ``(run, tag, state)`` of ``series`` not yet read in that state."""
        with self._lock:
            for run, tag, state in series:
                key = (experiment, run, tag)
                if self._scanned.get(key) != state:
                    self._scanned[key] = state
                    self._queue.put((ctx, key))
            if self._thread is None and not self._queue.empty() and not self._stopping:
                self._thread = threading.Thread(target=self._loop, name="cnnvis-scan", daemon=True)
                self._thread.start()

    def idle(self):
        """Whether nothing is queued or being read (for tests and benchmarks)."""
        return self._queue.unfinished_tasks == 0

    def stop(self, timeout=10.0):
        """Stop reading (at exit: no read may be inside TensorFlow's file layer then)."""
        with self._lock:
            self._stopping, thread = True, self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _loop(self):
        """Read queued series until ``stop``."""
        while True:
            item = self._queue.get()
            if item is None or self._stopping:
                self._queue.task_done()
                return
            ctx, (experiment, run, tag) = item
            try:
                self._read(ctx, experiment, run, tag)
            except errors.NotFoundError:
                pass  # the series went away
            except Exception:  # A broken provider must not kill the thread: log, go on.
                logger.exception("cnnvis: reading the steps of %r %r ahead failed", run, tag)
            finally:
                self._queue.task_done()


_SCANS = weakref.WeakSet()


def _stop_scans():
    """Let every scan finish the series it is reading before the interpreter goes down."""
    for scan in list(_SCANS):
        scan.stop()


# Stop before the thread pools the reads use are shut down: concurrent.futures registers
# its shutdown the same way (imported above, so first), and later registrations run first;
# atexit would be too late.
getattr(threading, "_register_atexit", atexit.register)(_stop_scans)

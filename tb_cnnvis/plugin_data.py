"""Reading cnnvis blobs and pixel files for ``tb_cnnvis.plugin``, fast and within bounds.

Stored data never changes, so what has been read once is kept in LRU caches bounded in
size: the facts of each step (the first blob, as compact JSON text, with the reference to
its pixel file apart; or, stored format version 3, read from the pixel file), the PNGs read
from pixel files (versions 2 and 3, read with ``tf.io.gfile`` and checked against their
CRC-32) and, with a remote data provider, the PNGs
of version 1 blobs. The remote provider is the Rust data server behind gRPC (TensorBoard's
default): there every call costs a round trip of tens of milliseconds however small the
blob, while calls in flight together overlap. So with it, uncached facts are read in
parallel, and when a version 1 series is listed its images are read ahead in the
background, newest step first. The Python loader holds every event in memory already: its
calls are read one by one and nothing more.
"""

import collections
import concurrent.futures
import json
import logging
import posixpath
import queue
import threading
from typing import NamedTuple

from tensorboard import errors
from tensorboard.backend import json_util
from tensorboard.backend.event_processing import data_provider as local_provider

from tb_cnnvis import blobstore

logger = logging.getLogger(__name__)

FACTS_CACHE_CHARS = 64 * 1024 * 1024
"""Most characters of per-step facts (compact JSON text) kept in memory."""

BLOB_CACHE_BYTES = 128 * 1024 * 1024
"""Most bytes of PNGs kept in memory (remote data providers only)."""

PIXEL_CACHE_BYTES = 64 * 1024 * 1024
"""Most bytes of PNGs read from pixel files (format versions 2 and 3) kept in memory."""

PREFETCH_LIMIT = 1024
"""Most images of one series read ahead after ``/steps``, newest step first."""

PREFETCH_THREADS = 4
"""Reads ahead in flight at once (each waits on a gRPC round trip, not on the CPU)."""

_NOT_FOUND = (errors.PublicError, KeyError, IndexError, TypeError, ValueError)


class SizedLruCache:
    """A thread-safe LRU map bounded by the total size of its values (``len`` by default).

    Args:
      max_size: the most characters or bytes kept; least recently used entries go first.
      size_of: the size of a value (default ``len``: characters of a str, bytes of bytes).

    Example:
      >>> cache = SizedLruCache(max_size=1000)
      >>> cache.put(("key", 1.0), '{"a":1}')
      >>> cache.get(("key", 1.0))
      '{"a":1}'
    """

    def __init__(self, max_size, size_of=len):
        self._max_size = max_size
        self._size_of = size_of
        self._size = 0
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._entries)

    def __contains__(self, key):
        with self._lock:
            return key in self._entries

    def get(self, key):
        """The value stored under ``key`` (now most recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key, value):
        """Store ``value`` under ``key``, evicting old entries to stay within the bound."""
        with self._lock:
            old = self._entries.pop(key, None)
            self._size -= self._size_of(old) if old is not None else 0
            if self._size_of(value) > self._max_size:
                return
            self._entries[key] = value
            self._size += self._size_of(value)
            while self._size > self._max_size:
                _, evicted = self._entries.popitem(last=False)
                self._size -= self._size_of(evicted)


class BlobReader:
    """Reads facts and images of cnnvis steps from a data provider, with caches.

    Args:
      data_provider: TensorBoard's ``context.data_provider``.
      facts_chars: bound of the facts cache, in characters.
      blob_bytes: bound of the image cache, in bytes (used for remote providers only).
      pixel_bytes: bound of the cache of PNGs read from pixel files, in bytes.

    Example:
      >>> reader = BlobReader(context.data_provider)
      >>> facts = reader.facts_entries(ctx, series)    # one Facts (text, pixels) per step
      >>> png = reader.blob(ctx, series[0].values[1].blob_key, series[0].wall_time)
    """

    def __init__(
        self,
        data_provider,
        facts_chars=FACTS_CACHE_CHARS,
        blob_bytes=BLOB_CACHE_BYTES,
        pixel_bytes=PIXEL_CACHE_BYTES,
    ):
        self._provider = data_provider
        local = isinstance(data_provider, local_provider.MultiplexerDataProvider)
        self.remote = data_provider is not None and not local
        self._facts = SizedLruCache(facts_chars, size_of=_facts_size)
        self._blobs = SizedLruCache(blob_bytes if self.remote else 0)
        self._pixels = SizedLruCache(pixel_bytes)
        self._file_sizes = SizedLruCache(100_000, size_of=lambda size: 1)
        self._pending = set()
        self._lock = threading.Lock()
        self._readers = None  # thread pool for facts, made on first remote use
        self._queue = queue.LifoQueue()
        self._workers = []

    def facts_entries(self, ctx, series):
        """The facts of each ``BlobSequenceDatum`` of ``series``: one ``Facts`` per step
        (text ``"null"`` where they cannot be read)."""
        keys = [(d.values[0].blob_key, d.wall_time) if d.values else None for d in series]
        missing = [key for key in dict.fromkeys(keys) if key and self._facts.get(key) is None]
        if self.remote and len(missing) > 1:
            entries = list(self.pool().map(self._read_facts, [ctx] * len(missing), missing))
        else:
            entries = [self._read_facts(ctx, key) for key in missing]
        found = {key: entry for key, entry in zip(missing, entries) if entry is not None}
        for key, entry in found.items():
            self._facts.put(key, entry)
        return [(key and (found.get(key) or self._facts.get(key))) or _NO_FACTS for key in keys]

    def facts_texts(self, ctx, series):
        """The facts of each step of ``series`` as JSON text (``"null"`` if unreadable)."""
        return [entry.text for entry in self.facts_entries(ctx, series)]

    def pixel_problem(self, plugin_directory, pixels):
        """Why the pixel file named by a step's ``pixels`` cannot serve it, or None.

        Checks that the file exists and is long enough (one ``stat`` per file, remembered
        once it passes); checksums are checked when an image is read (``pixels``).
        """
        file, spans = pixels.get("file"), pixels.get("spans")
        if not isinstance(file, str) or not blobstore.PIXEL_FILE.fullmatch(file):
            return f"the facts name no pixel file ({str(file)[:80]!r})"
        try:
            end = max((offset + length for offset, length, _ in spans), default=0)
        except (TypeError, ValueError):
            return f"the facts hold no valid spans for {file}"
        path = posixpath.join(plugin_directory, file)
        size = self._file_sizes.get(path)
        if size is None:
            gfile = _gfile()
            try:
                size = gfile.stat(path).length
            except Exception:  # gfile raises NotFoundError or its own errors: no file.
                return f"its pixel file {file} is missing"
            self._file_sizes.put(path, size)
        return None if size >= end else f"its pixel file {file} is truncated"

    def facts_in_file(self, plugin_directory, file, span):
        """The ``Facts`` stored in a span of a pixel file (version 3), uncached: the caller
        keeps what it serves. Its images' spans are in the same file, whatever the facts say.

        Raises:
          blobstore.DamagedPixels: the file is missing, short or damaged.
        """
        raw = blobstore.read_span(_gfile(), plugin_directory, file, span)
        entry = facts_entry(raw)
        if isinstance(entry.pixels, dict):
            entry.pixels["file"] = file
        return entry

    def pixels(self, plugin_directory, file, span):
        """The PNG bytes of one span of a pixel file, checked, through a cache in bytes.

        Raises:
          blobstore.DamagedPixels: the file is missing, short or damaged.
        """
        key = (plugin_directory, file, tuple(span) if isinstance(span, list) else span)
        cached = self._pixels.get(key)
        if cached is not None:
            return cached
        data = blobstore.read_span(_gfile(), plugin_directory, file, span)
        self._pixels.put(key, data)
        return data

    def blob(self, ctx, blob_key, version=None):
        """The bytes of one blob; ``version`` (the step's wall time) keys the cache.

        Raises:
          errors.NotFoundError: no blob has this key (also for malformed keys).
        """
        cached = self._blobs.get((blob_key, version))
        if cached is not None:
            return cached
        try:
            data = bytes(self._read(ctx, blob_key))
        except _NOT_FOUND as error:
            logger.info("cnnvis: blob %r not found: %s", blob_key, error)
            raise errors.NotFoundError("no blob with this key") from None
        if version is not None:
            self._blobs.put((blob_key, version), data)
        return data

    def prefetch(self, ctx, series):
        """Read the images of ``series`` into the cache in the background (remote only).

        The most recent request is served first (a LIFO queue), newest step first; the
        reading threads are daemons, so a pending read-ahead never delays shutdown.
        """
        if not self.remote:
            return
        wanted = [
            (value.blob_key, repr(datum.wall_time))
            for datum in sorted(series, key=lambda datum: datum.step)
            for value in datum.values[1:]
        ][-PREFETCH_LIMIT:]
        with self._lock:
            wanted = [key for key in wanted if key not in self._pending and key not in self._blobs]
            self._pending.update(wanted)
            for key in wanted:
                self._queue.put((ctx, key))
            while wanted and len(self._workers) < PREFETCH_THREADS:
                worker = threading.Thread(target=self._prefetch_loop, name="cnnvis-prefetch")
                worker.daemon = True
                worker.start()
                self._workers.append(worker)

    def _prefetch_loop(self):
        """Read queued images into the cache, forever; a failure only means read on request."""
        while True:
            ctx, key = self._queue.get()
            try:
                self.blob(ctx, *key)
            except errors.NotFoundError:
                pass
            except Exception:  # A broken provider must not kill the thread: log, go on.
                logger.exception("cnnvis: reading ahead blob %r failed", key[0])
            finally:
                with self._lock:
                    self._pending.discard(key)

    def _read_facts(self, ctx, key):
        """The ``Facts`` of one step, or None if its blob cannot be read now."""
        try:
            return facts_entry(self._read(ctx, key[0]))
        except _NOT_FOUND as error:
            logger.info("cnnvis: facts blob %r not found: %s", key[0], error)
            return None

    def _read(self, ctx, blob_key):
        """One ``read_blob`` call."""
        return self._provider.read_blob(ctx, blob_key=blob_key)

    def pool(self):
        """The thread pool that reads facts in parallel, made on first use."""
        with self._lock:
            if self._readers is None:
                self._readers = concurrent.futures.ThreadPoolExecutor(16, "cnnvis-facts")
            return self._readers


class Facts(NamedTuple):
    """A step's facts: compact JSON ``text`` for ``/steps`` (without the pixel reference)
    and ``pixels``, the ``{"file", "spans"}`` reference of a version 2 or 3 step (else
    None); or, for a version 3 event blob, only ``ref``: ``(file, span)`` of the facts in
    a pixel file (``blobstore.facts_reference``; ``text`` is then empty)."""

    text: str
    pixels: dict | None = None
    ref: tuple | None = None


_NO_FACTS = Facts("null")


def _facts_size(entry):
    """The cache size of a ``Facts``: its characters, spans counted as 32 each."""
    spans = (entry.pixels or {}).get("spans")
    return len(entry.text) + 32 * (len(spans) if isinstance(spans, list) else 0) + 64


def _gfile():
    """TensorBoard's ``tf.io.gfile`` (TensorFlow's, or its stub without TensorFlow)."""
    from tensorboard.compat import tf

    return tf.io.gfile


def facts_entry(raw):
    """A facts blob as ``Facts``: compact JSON text (``null`` if unreadable, NaN and inf as
    strings) without its ``"pixels"`` reference, and that reference; or the reference of a
    version 3 event blob to the facts in a pixel file (``Facts.ref``).

    Example:
      >>> facts_entry(b'{"p": 1, "pixels": {"file": "pixels/0-0123456789ab.bin"}}')
      Facts(text='{"p":1}', pixels={'file': 'pixels/0-0123456789ab.bin'})
    """
    try:
        facts = json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        logger.warning("cnnvis: a step's facts blob is not JSON; serving null")
        return _NO_FACTS
    ref = blobstore.facts_reference(facts)
    if ref is not None:
        return Facts("", None, ref)
    pixels = facts.pop("pixels", None) if isinstance(facts, dict) else None
    text = json.dumps(json_util.Cleanse(facts), separators=(",", ":"), allow_nan=False)
    return Facts(text, pixels if isinstance(pixels, dict) else None)


def facts_text(raw):
    """A facts blob as compact JSON text (``null`` if unreadable), NaN and inf as strings.

    Example:
      >>> facts_text(b'{"p": [NaN, 0.5]}')
      '{"p":["NaN",0.5]}'
    """
    return facts_entry(raw).text

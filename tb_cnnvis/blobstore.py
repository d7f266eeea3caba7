"""Pixels and facts in files of the run's own plugin directory: one file per logged step,
made visible whole, and writes that never stop training.

Why: TensorBoard's loaders keep every kept value of every tag in memory, so PNGs inside the
event files make the server's memory grow with the log (tensorflow/tensorboard#5707), and
even a value of a kilobyte of facts costs the Python loader several (each kept value holds
the memory its whole event was parsed into). Here the event files keep only a reference per
tag and step; the PNGs and the facts of every tag of one logged step go into one *pixel
file* ``<run dir>/plugins/cnnvis/pixels/<step>-<id>.bin`` (``PIXEL_DIR``), one after the
other, which the plugin reads itself (stored format version 3; version 2 kept the facts in
the events, version 1 the PNGs too).

A logged step is one transaction (``RunWriter.step``): the writers of ``tb_cnnvis.summary``
only collect what they are given; at the end of the step the pixel file is written under a
temporary name, the events (references, scalars) are written and flushed, and only then is
the pixel file renamed to its final name. A reader serves a step only when its pixel file
exists, so it never sees half a step. Any error on the way (a full disk, a permission, a
remote store failing) drops the step whole with one warning per kind of failure, and the
next step tries again with a new event file. The summary metadata of a tag (its content) is
written with its first value in each event file only, as TensorFlow 1's ``FileWriter`` did
(both of TensorBoard's loaders take a tag's metadata from its first value).

Everything goes through ``tf.io.gfile``, so ``gs://`` and other remote log directories work.

Example:
    >>> writer = RunWriter("logs/cnnvis")
    >>> with writer.step(3):
    ...     summary.write_step(content, 3, facts, images, pngs, seconds=0.1)
    >>> writer.close()
"""

import contextlib
import contextvars
import json
import logging
import posixpath
import re
import uuid
import warnings
import zlib

from tb_cnnvis import metadata

logger = logging.getLogger(__name__)

PIXEL_DIR = "pixels"
"""Pixel files live in ``<run dir>/plugins/cnnvis/pixels/`` (``plugin_dir``)."""

PIXEL_FILE = re.compile(r"pixels/[0-9]{1,12}-[0-9a-f]{12}\.bin")
"""The name of a pixel file relative to the plugin directory (matched whole); a reader
opens nothing else, whatever an event file says."""

_CURRENT = contextvars.ContextVar("cnnvis_pending_step", default=None)


FACTS_KEY = "facts"
"""The one key of a version 3 event blob: ``{"facts": {"file": F, "span": [offset, length,
crc32]}}``, where the step's facts JSON lies in pixel file ``F``."""


def plugin_dir(run_dir):
    """``<run dir>/plugins/cnnvis``, joined with ``/`` (also for ``gs://`` paths)."""
    return posixpath.join(str(run_dir).rstrip("/"), "plugins", metadata.PLUGIN_NAME)


class PendingStep:
    """What the writers gave during one logged step, kept in memory until it is committed.

    Attributes:
        step: the logged step.
        file: the pixel file's name relative to ``plugin_dir`` (``PIXEL_FILE``).
        records: ``(tag, facts JSON bytes, tag content, step)`` per written tag (the facts
            as the pixel file holds them; the event holds their reference, ``layout``).
        scalars: ``(tag, value, step)`` per scalar.
        pngs: the PNG bytes, in file order.
    """

    def __init__(self, step):
        self.step = int(step)
        self.file = f"{PIXEL_DIR}/{self.step}-{uuid.uuid4().hex[:12]}.bin"
        self.records, self.scalars, self.pngs = [], [], []
        self._size = 0

    def add(self, tag, tag_content, step, facts, pngs):
        """Keep one tag's step: ``facts`` gains ``"pixels"`` (the file and each PNG's span)."""
        spans = []
        for png in pngs:
            png = bytes(png)
            spans.append([self._size, len(png), zlib.crc32(png)])
            self.pngs.append(png)
            self._size += len(png)
        if spans:
            facts = {**facts, "pixels": {"file": self.file, "spans": spans}}
        blob = json.dumps(facts, allow_nan=False, sort_keys=True).encode("utf-8")
        self.records.append((tag, blob, tag_content, self.step if step is None else int(step)))

    def layout(self):
        """``(pixel file bytes, event blobs)``: the PNGs then each record's facts, and for
        each record (in order) its event blob, the facts' reference (``FACTS_KEY``)."""
        chunks, offset, blobs = list(self.pngs), self._size, []
        for _, facts, _, _ in self.records:
            span = [offset, len(facts), zlib.crc32(facts)]
            reference = {FACTS_KEY: {"file": self.file, "span": span}}
            blobs.append(json.dumps(reference, sort_keys=True).encode("utf-8"))
            chunks.append(facts)
            offset += len(facts)
        return b"".join(chunks), blobs

    def add_scalar(self, tag, value, step):
        """Keep one scalar of the step."""
        self.scalars.append((tag, float(value), self.step if step is None else int(step)))


def pending_step():
    """The ``PendingStep`` being collected in this context, or None outside ``RunWriter.step``."""
    return _CURRENT.get()


class RunWriter:
    """Writes logged steps to one run directory, each whole or not at all, never raising.

    Args:
        run_dir: the run directory (any ``tf.io.gfile`` path), e.g. ``logs/cnnvis``.

    Example:
        >>> writer = RunWriter("logs/cnnvis")
        >>> with writer.step(0):
        ...     summary.write_probes(content, images, 0)
        >>> writer.committed
        True
    """

    def __init__(self, run_dir):
        self.run_dir = str(run_dir)
        self.committed = None  # whether the last step was written
        self._events = None  # the tf.summary writer, made on first commit
        self._described = set()  # tags whose metadata the current event file holds
        self._warned = set()

    @contextlib.contextmanager
    def step(self, step):
        """Collect the writers' output during the block, then commit it as one step.

        An exception raised inside the block discards the step and propagates; a failure
        while committing is a warning (``committed`` is then False).
        """
        pending = PendingStep(step)
        token = _CURRENT.set(pending)
        try:
            yield pending
        finally:
            _CURRENT.reset(token)
        self.committed = self.commit(pending)

    def commit(self, pending):
        """Write ``pending``: pixel file (temporary name), events, flush, rename.

        Returns:
            True if the step was written, False if it was dropped (and warned about).
        """
        import tensorflow as tf

        final = posixpath.join(plugin_dir(self.run_dir), pending.file)
        temporary = final + ".part"
        where = temporary
        data, blobs = pending.layout()
        try:
            if data:
                tf.io.gfile.makedirs(posixpath.dirname(final))
                with tf.io.gfile.GFile(temporary, "wb") as out:
                    out.write(data)
            where = self.run_dir
            if self._events is None:
                self._events = tf.summary.create_file_writer(self.run_dir)
                self._described = set()
            described = set(self._described)
            with self._events.as_default():
                for (tag, _, tag_content, step), blob in zip(pending.records, blobs):
                    first = tag not in described
                    described.add(tag)
                    tf.summary.write(
                        tag,
                        tensor=tf.constant([blob], dtype=tf.string),
                        step=step,
                        metadata=metadata.create_summary_metadata(tag_content) if first else None,
                    )
                for tag, value, step in pending.scalars:
                    if tag in described:
                        tf.summary.write(tag, tf.constant(value, tf.float32), step=step)
                    else:
                        described.add(tag)
                        tf.summary.scalar(tag, value, step=step)
            self._events.flush()
            self._described = described
            if data:
                where = final
                tf.io.gfile.rename(temporary, final, overwrite=True)
        except Exception as error:  # Any write failure (disk, permission, remote store).
            self._drop(pending, temporary, where, error)
            return False
        return True

    def close(self):
        """Flush and close the event file (a later step opens a new one); never raises."""
        events, self._events = self._events, None
        if events is not None:
            try:
                events.close()
            except Exception as error:  # A failing store must not stop the caller.
                self._warn(self.run_dir, error, "closing")

    def _drop(self, pending, temporary, where, error):
        """Forget a step that could not be written: warn once, remove what is left."""
        self._warn(where, error, f"step {pending.step} was dropped whole;")
        events, self._events = self._events, None  # the next step starts a new event file
        for undo in (lambda: events is not None and events.close(), lambda: _remove(temporary)):
            try:
                undo()
            except Exception:  # Cleaning up after a failure may fail the same way.
                logger.debug("cnnvis: cleaning up after a failed write failed", exc_info=True)

    def _warn(self, where, error, what):
        """One warning per kind of failure (its type and errno, the folder), later ones logged."""
        kind = (type(error).__name__, getattr(error, "errno", None), posixpath.dirname(where))
        message = (
            f"cnnvis: could not write to {where!r} ({type(error).__name__}: {error}); "
            f"{what} training goes on and later steps try again."
        )
        if kind in self._warned:
            logger.info(message)
            return
        self._warned.add(kind)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _remove(path):
    """Remove ``path`` if it exists."""
    import tensorflow as tf

    if tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


class DamagedPixels(Exception):
    """A pixel file, or a span in it, that cannot be read as written; the message says why."""


def facts_reference(facts):
    """``(file, span)`` of a version 3 event blob's parsed JSON (``FACTS_KEY``), else None.

    Example:
        >>> facts_reference({"facts": {"file": "pixels/3-0123456789ab.bin", "span": [9, 2, 7]}})
        ('pixels/3-0123456789ab.bin', [9, 2, 7])
    """
    if not isinstance(facts, dict) or set(facts) != {FACTS_KEY}:
        return None
    reference = facts[FACTS_KEY]
    if not isinstance(reference, dict):
        return None
    return reference.get("file"), reference.get("span")


def read_span(gfile, plugin_directory, file, span):
    """The bytes of one span (a PNG, or facts) of a pixel file, checked against its length
    and CRC-32.

    Args:
        gfile: a ``tf.io.gfile``-like module (``tensorboard.compat.tf.io.gfile``).
        plugin_directory: ``plugin_dir(run dir)``.
        file: the file's name from the facts (must match ``PIXEL_FILE``).
        span: ``[offset, length, crc32]`` from the facts.

    Raises:
        DamagedPixels: the name is not a pixel file's, the file is missing or short, or the
            bytes do not match their checksum.
    """
    if not isinstance(file, str) or not PIXEL_FILE.fullmatch(file):
        raise DamagedPixels(f"the facts name no pixel file ({str(file)[:80]!r})")
    if not (isinstance(span, list) and len(span) == 3 and all(type(v) is int for v in span)):
        raise DamagedPixels(f"the facts hold no valid span for an image in {file}")
    offset, length, crc = span
    path = posixpath.join(plugin_directory, file)
    try:
        with gfile.GFile(path, "rb") as source:
            source.seek(offset)
            data = source.read(length)
    except Exception as error:  # gfile raises its own errors (NotFoundError, ...) or OSError.
        if not gfile.exists(path):
            raise DamagedPixels(f"its pixel file {file} is missing") from None
        if _size(gfile, path) < offset + length:  # gfile cannot seek past the end
            raise DamagedPixels(f"its pixel file {file} is truncated") from None
        raise DamagedPixels(f"its pixel file {file} cannot be read ({error})") from None
    if len(data) != length:
        raise DamagedPixels(f"its pixel file {file} is truncated")
    if zlib.crc32(data) != crc:
        raise DamagedPixels(f"its pixel file {file} is damaged (checksum mismatch)")
    return bytes(data)


def _size(gfile, path):
    """The size of a file in bytes, or -1 if it cannot be told."""
    try:
        return gfile.stat(path).length
    except Exception:  # gfile raises its own errors: the size is unknown.
        return -1

"""The steps of a series as ``/steps`` serves them, and their images for ``/blob``.

``StepIndex`` turns a series read from the data provider into the ``/steps`` JSON and
remembers how to read each image it lists: a blob key (PNGs inside the event files, stored
format version 1) or a span of a pixel file that the plugin reads itself
(``<logdir>/<run>/plugins/cnnvis/pixels/...``, versions 2 and 3, ``tb_cnnvis.blobstore``;
version 3 keeps the facts there too), as
TensorBoard's projector plugin reads its own files. Image URLs name a series by a short
hash (``SERIES_ID_LENGTH`` characters), so they do not grow with run and tag names. A step
that cannot be served (facts unreadable, pixel file missing or short) is left out of
``/steps``, and an image whose bytes fail their checksum is a 404; either becomes a note
(``RunNotes``) that ``/tags`` carries for the run.

Example:
    >>> index = StepIndex(provider, BlobReader(provider), logdir, downsample=1000)
    >>> text = index.steps_json(ctx, "", "cnnvis", "grad_cam/conv2", series)
    >>> png = index.image(ctx, "", series_id, step=3, index=0, version="1796047748.7")
"""

import array
import functools
import hashlib
import json
import os
import posixpath
import re
import threading
import urllib.parse
import zlib
from typing import NamedTuple

from tensorboard import errors
from tensorboard.data import provider

from tb_cnnvis import blobstore, metadata
from tb_cnnvis.plugin_data import SizedLruCache

SERIES_ID_LENGTH = 16
"""Characters of the series id in image URLs (a hash of experiment, run and tag)."""

SERIES_ID = re.compile(f"[0-9a-f]{{{SERIES_ID_LENGTH}}}")
"""A valid series id (matched whole)."""

STEPS_CACHE_CHARS = 32 * 1024 * 1024
"""Most bytes of served steps (their ``/steps`` JSON compressed, image references counted
at 8 or 64 each) kept: since format version 3 this is the plugin's only copy of the facts
of the steps it served (TensorBoard holds a reference per step)."""


class _Refs(NamedTuple):
    """How to read the images of one step, compactly (one per step, not per image):
    ``where`` is None and ``items`` the blob keys (format version 1), or ``where`` is
    ``(plugin directory, pixel file)`` and ``items`` an ``array("q")`` of the spans'
    ``offset, length, crc32`` in a row (versions 2 and 3)."""

    where: tuple | None
    items: object

    def __len__(self):
        return len(self.items) if self.where is None else len(self.items) // 3


class _Step(NamedTuple):
    """One served step: its JSON in ``/steps``, zlib-compressed (``packed``: kept steps cost
    the plugin about a third of their text), and how to read each of its images."""

    packed: bytes
    refs: _Refs

    @classmethod
    def of(cls, text, refs):
        """A ``_Step`` holding ``text`` compressed."""
        return cls(zlib.compress(text.encode("utf-8"), 1), refs)

    @property
    def text(self):
        """Its JSON text in ``/steps``."""
        return zlib.decompress(self.packed).decode("utf-8")

    def size(self):
        """Its size for the cache bound (a version 1 blob key counted as 64 characters)."""
        return len(self.packed) + (64 if self.refs.where is None else 8) * len(self.refs) + 64


class RunNotes:
    """Sentences about what could not be read, per run: ``/tags`` carries them as ``notes``.

    A note is kept per (run, tag, step) and dropped again when that step reads well (a step
    whose pixel file was still being renamed, say). At most ``limit`` notes per run are
    listed, then one sentence counting the rest.

    Example:
      >>> notes = RunNotes()
      >>> notes.set("", "cnnvis", "grad_cam/conv4", 7, "its pixel file pixels/7-....bin is missing")
      >>> notes.of("", "cnnvis")
      ['step 7 of grad_cam/conv4: its pixel file pixels/7-....bin is missing; not shown.']
    """

    def __init__(self, limit=20):
        self._limit = limit
        self._notes = {}  # (experiment, run) -> {(tag, step): sentence}
        self._lock = threading.Lock()

    def set(self, experiment, run, tag, step, problem):
        """Record ``problem`` for a step, or forget the step's note when ``problem`` is None."""
        with self._lock:
            notes = self._notes.setdefault((experiment, run), {})
            if problem is None:
                notes.pop((tag, step), None)
            elif len(notes) < 10_000:
                notes[(tag, step)] = problem

    def get(self, experiment, run, tag, step):
        """The problem recorded for one step, or None."""
        with self._lock:
            return self._notes.get((experiment, run), {}).get((tag, step))

    def of(self, experiment, run):
        """The run's notes as sentences, in step order (empty if none): one per step and
        problem, naming the first tag and counting the others (a step's pixel file holds
        every tag of the step, so a missing file is one note, not one per tag)."""
        with self._lock:
            notes = sorted(self._notes.get((experiment, run), {}).items(), key=_step_first)
        groups = {}
        for (tag, step), problem in notes:
            groups.setdefault((step, problem), []).append(tag)
        sentences = []
        for (step, problem), tags in groups.items():
            who = tags[0] if len(tags) == 1 else f"{tags[0]} and {len(tags) - 1} more tags"
            sentences.append(f"step {step} of {who}: {problem}; not shown.")
        if len(sentences) > self._limit:
            rest = len(sentences) - self._limit + 1
            sentences = [*sentences[: self._limit - 1], f"... and {rest} more steps not shown."]
        return sentences


def _step_first(item):
    """Sort key of a ``((tag, step), problem)`` note: step, then tag."""
    (tag, step), _ = item
    return step, tag


class StepIndex:
    """``/steps`` answers and the image references they hand out, for one plugin.

    Args:
      data_provider: TensorBoard's data provider.
      reader: the plugin's ``plugin_data.BlobReader`` (facts, blobs, pixel files).
      logdir: TensorBoard's ``--logdir`` (None or empty with ``--logdir_spec``).
      downsample: the most steps read per series.
      run_paths: without ``logdir``, a function returning ``{run: directory}`` (the
        Python loader's ``EventMultiplexer.RunPaths``, which ``--logdir_spec`` needs);
        without either, pixel files cannot be found and their steps are notes.
    """

    def __init__(self, data_provider, reader, logdir, downsample, run_paths=None):
        self._provider = data_provider
        self._reader = reader
        self._logdir = logdir or None
        self._run_paths = run_paths
        self._downsample = downsample
        self._series = {}  # series id -> (run, tag), learnt from /tags and /steps
        self._series_lock = threading.Lock()
        self._steps = SizedLruCache(STEPS_CACHE_CHARS, size_of=_Step.size)
        self._plugin_dirs = {}
        self.notes = RunNotes()

    def steps_json(self, ctx, experiment, run, tag, series, read_ahead=True):
        """``/steps`` text for ``series``; remembers each step's image references for
        ``/blob`` and leaves out (with a note for ``/tags``) steps that cannot be served.

        Each served step's JSON and image references are kept (``STEPS_CACHE_CHARS``) under
        its series, step and wall time: a stored step never changes, so an answer is the
        kept steps joined, and only new steps are read. ``read_ahead``: also read the
        images of version 1 steps ahead (remote providers only; not for the scan).
        """
        series_id = self.series_id(experiment, run, tag)
        keys = [(series_id, datum.step, repr(datum.wall_time)) for datum in series]
        found = [self._steps.get(key) for key in keys]
        missing = [(key, datum) for key, datum, step in zip(keys, series, found) if step is None]
        if missing:
            entries = self._reader.facts_entries(ctx, [datum for _, datum in missing])
            in_files = [entry.ref is not None for entry in entries]
            read = functools.partial(self._facts_of, run)
            folder = self._plugin_dir(run) if any(in_files) else None
            if folder and "://" in folder and len(entries) > 1:  # remote: reads overlap
                resolved = list(self._reader.pool().map(read, entries))
            else:
                resolved = [read(entry) for entry in entries]
            fresh = {}
            for (key, datum), (entry, problem), in_file in zip(missing, resolved, in_files):
                if problem is None:
                    refs, problem = self._image_refs(run, datum, entry, checked=in_file)
                self.notes.set(experiment, run, tag, datum.step, problem)
                if problem is None:
                    fresh[key] = _Step.of(_step_json(datum, entry.text, series_id, len(refs)), refs)
                    self._steps.put(key, fresh[key])
            found = [step or fresh.get(key) for key, step in zip(keys, found)]
        if read_ahead:  # (version 1 images, remote providers only)
            self._reader.prefetch(ctx, series)
        head = json.dumps({"run": run, "tag": tag})[:-1]
        return f'{head}, "steps": [{",".join(step.text for step in found if step)}]}}'

    def _facts_of(self, run, entry):
        """``(facts, problem)``: a step's ``Facts``, read from its pixel file for a version 3
        event blob (``entry.ref``), or why they cannot be read."""
        if entry.ref is None:
            return entry, None
        folder = self._plugin_dir(run)
        if folder is None:
            return None, "its pixel file cannot be found: the run's directory is not known"
        try:
            return self._reader.facts_in_file(folder, *entry.ref), None
        except blobstore.DamagedPixels as damage:
            return None, str(damage)

    def _image_refs(self, run, datum, entry, checked=False):
        """``(refs, problem)``: how to read each image of a step, or why it cannot be served.

        ``refs`` is a ``_Refs``: blob keys (PNGs in the event files, format version 1) or
        spans of a pixel file (versions 2 and 3). ``checked``: the facts were read from the
        pixel file (version 3), after its PNGs: it exists and is long enough.
        """
        if entry.text == "null":
            return None, "its facts cannot be read (a damaged event file?)"
        if entry.pixels is None:
            return _Refs(None, tuple(value.blob_key for value in datum.values[1:])), None
        folder = self._plugin_dir(run)
        if folder is None:
            return None, "its pixel file cannot be found: the run's directory is not known"
        problem = None if checked else self._reader.pixel_problem(folder, entry.pixels)
        if problem is not None:
            return None, problem
        try:
            spans = array.array("q", [int(v) for span in entry.pixels["spans"] for v in span])
        except (TypeError, ValueError, OverflowError):
            return None, "the facts hold no valid spans for its pixel file"
        return _Refs((folder, entry.pixels["file"]), spans), None

    def _plugin_dir(self, run):
        """``<run dir>/plugins/cnnvis``: the run's directory is ``<logdir>/<run>``, or (with
        ``--logdir_spec``) the loader's; None if it cannot be told."""
        folder = self._plugin_dirs.get(run)
        if folder is None:  # one string per run, shared by the references of its steps
            if self._logdir:
                join = posixpath.join if "://" in self._logdir else os.path.join
                run_dir = join(self._logdir, run)
            else:
                run_dir = self._run_paths and self._run_paths().get(run)
                if not run_dir:
                    return None
            folder = self._plugin_dirs[run] = blobstore.plugin_dir(run_dir)
        return folder

    def series_id(self, experiment, run, tag):
        """A short id of ``(experiment, run, tag)`` for URLs, remembered for ``/blob`` and
        ``/steps?s=``."""
        digest = hashlib.sha256(json.dumps([experiment, run, tag]).encode("utf-8"))
        series_id = digest.hexdigest()[:SERIES_ID_LENGTH]
        with self._series_lock:
            self._series[series_id] = (run, tag)
        return series_id

    def image(self, ctx, experiment, series_id, step, index, version=None):
        """The PNG bytes of image ``index`` of ``step`` of a series (``GET /blob``).

        Raises:
          errors.InvalidArgumentError: a malformed series id.
          errors.NotFoundError: no such series, step or image, or the image's file is
            missing or damaged (the sentence says which; ``/tags`` then carries a note).
        """
        if not SERIES_ID.fullmatch(series_id):
            raise errors.InvalidArgumentError(
                f"s must be the {SERIES_ID_LENGTH}-character series id of an image URL from /steps"
            )
        known = self._steps.get((series_id, step, version))
        refs = known.refs if known else self._lookup_refs(ctx, experiment, series_id, step, version)
        if index >= len(refs):
            raise errors.NotFoundError(
                f"step {step} of this series has {len(refs)} images; there is no image {index}"
            )
        if refs.where is None:
            return self._reader.blob(ctx, refs.items[index], version)
        try:
            span = list(refs.items[3 * index : 3 * index + 3])
            return self._reader.pixels(*refs.where, span)
        except blobstore.DamagedPixels as damage:
            run, tag = self._series.get(series_id, ("?", "?"))
            self.notes.set(experiment, run, tag, step, str(damage))
            raise errors.NotFoundError(f"step {step} of {tag}: {damage}") from None

    def series_of(self, ctx, experiment, series_id):
        """``(run, tag)`` of a series id (``series_id``), learnt anew from the provider's
        listing if this server has not handed it out yet.

        Raises:
          errors.InvalidArgumentError: a malformed series id.
          errors.NotFoundError: no cnnvis series has this id.
        """
        if not SERIES_ID.fullmatch(series_id):
            raise errors.InvalidArgumentError(
                f"s must be the {SERIES_ID_LENGTH}-character series id of a URL or tag from "
                "/tags or /steps"
            )
        with self._series_lock:
            known = self._series.get(series_id)
        if known is None:  # learn every series id of the experiment
            listing = self._provider.list_blob_sequences(
                ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME
            )
            for run, tags in listing.items():
                for tag in tags:
                    self.series_id(experiment, run, tag)
            with self._series_lock:
                known = self._series.get(series_id)
        if known is None:
            raise errors.NotFoundError("no cnnvis series has this id (s); reload the page")
        return known

    def _lookup_refs(self, ctx, experiment, series_id, step, version):
        """The image references of one step found anew (``/blob`` before its ``/steps``)."""
        run, tag = self.series_of(ctx, experiment, series_id)
        data = self._provider.read_blob_sequences(
            ctx,
            experiment_id=experiment,
            plugin_name=metadata.PLUGIN_NAME,
            downsample=self._downsample,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        )
        series = [d for d in data.get(run, {}).get(tag, ()) if d.step == step]
        self.steps_json(ctx, experiment, run, tag, series)
        current = [repr(datum.wall_time) for datum in series]
        known = self._steps.get(
            (series_id, step, current[0] if version is None and current else version)
        )
        if known is None:
            problem = self.notes.get(experiment, run, tag, step)
            if problem is not None:
                raise errors.NotFoundError(f"step {step} of {tag}: {problem}")
            if current:  # the step was written again since the URL was given
                raise errors.NotFoundError(
                    f"step {step} of {tag} was rewritten (t={current[0]}, not {version}); reload"
                )
            raise errors.NotFoundError(f"{tag} of run {run!r} has no step {step}")
        return known.refs


def _step_json(datum, facts, series_id, image_count):
    """One step of ``/steps`` as JSON text: step, wall time, image URLs and facts."""
    # The wall time in the URL makes each URL name one immutable value, even if a restarted
    # training rewrites a step; the series id keeps URLs short whatever the names.
    # Every part but the wall time is hex or digits: only that one is quoted (once).
    version = urllib.parse.quote(repr(datum.wall_time))
    step = int(datum.step)
    images = ",".join(
        f'"blob?s={series_id}&step={step}&i={i}&t={version}"' for i in range(image_count)
    )
    head = f'{{"step": {step}, "wall_time": {json.dumps(datum.wall_time)}, "images": [{images}]'
    return f'{head}, "facts": {facts}}}'

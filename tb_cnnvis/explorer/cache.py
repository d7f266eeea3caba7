"""Explore results on disk, in the plugin's own cache folder, bounded in bytes.

A result is named by a key: the SHA-256 of the snapshot's identity (its path, size and
modification time, or a live model's id), the request's options and the image's hash.
It is two files, ``<key>.bin`` (the PNGs one after the other) and ``<key>.json`` (the tag
content, the facts and each PNG's span), the JSON renamed into place last, so a reader sees
a whole result or none. When the folder holds more than ``max_bytes``, the results used
least recently go. Nothing is written outside the folder: file names are keys, checked.

The folder is ``$TB_CNNVIS_CACHE`` if set, else ``<temp dir>/tb-cnnvis-<user>/explore``.

Example:
    >>> cache = ResultCache()
    >>> key = result_key("run/step-3.keras:1234:5678", request.options(), request.image_hash)
    >>> cache.put(key, content, facts, pngs)
    >>> cache.png(key, 0)[:4]
    b'\\x89PNG'
"""

import contextlib
import getpass
import hashlib
import json
import os
import re
import tempfile
import threading
import uuid

KEY = re.compile(r"[0-9a-f]{64}")
"""A result key (matched whole)."""

DEFAULT_MAX_BYTES = 512 * 2**20
"""The most bytes the cache folder holds by default."""


def default_folder():
    """``$TB_CNNVIS_CACHE``, else ``<temp dir>/tb-cnnvis-<user>/explore``."""
    folder = os.environ.get("TB_CNNVIS_CACHE")
    if folder:
        return folder
    try:
        user = re.sub(r"[^A-Za-z0-9_-]", "_", getpass.getuser())
    except (KeyError, OSError):
        user = "user"
    return os.path.join(tempfile.gettempdir(), f"tb-cnnvis-{user}", "explore")


def result_key(snapshot_id, options, image_hash):
    """The key of one result (64 hex characters)."""
    text = json.dumps([snapshot_id, options, image_hash], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultCache:
    """Results on disk, least recently used first out past ``max_bytes``.

    Args:
        folder: where results are kept (created when first written).
        max_bytes: the most bytes kept.
    """

    def __init__(self, folder=None, max_bytes=DEFAULT_MAX_BYTES):
        self.folder = os.path.abspath(folder or default_folder())
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()

    def _path(self, key, suffix):
        """The file of ``key`` (a checked key) with ``suffix``."""
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise ValueError("not a result key")
        return os.path.join(self.folder, key + suffix)

    def get(self, key):
        """``{"content", "facts", "spans"}`` of a stored result, or None."""
        path = self._path(key, ".json")
        try:
            with open(path, encoding="utf-8") as source:
                entry = json.load(source)
            os.utime(path)  # used now: the last to go
        except (OSError, ValueError):
            return None
        return entry

    def png(self, key, index):
        """The bytes of PNG ``index`` of a stored result, or None."""
        entry = self.get(key)
        if entry is None or not 0 <= index < len(entry["spans"]):
            return None
        offset, length = entry["spans"][index]
        try:
            with open(self._path(key, ".bin"), "rb") as source:
                source.seek(offset)
                data = source.read(length)
        except OSError:
            return None
        return data if len(data) == length else None

    def put(self, key, content, facts, pngs):
        """Store a result (then trim the folder to ``max_bytes``)."""
        spans, offset = [], 0
        for png in pngs:
            spans.append([offset, len(png)])
            offset += len(png)
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        suffix = f".{uuid.uuid4().hex[:8]}.part"
        bin_path, json_path = self._path(key, ".bin"), self._path(key, ".json")
        with open(bin_path + suffix, "wb") as out:
            out.write(b"".join(pngs))
        os.replace(bin_path + suffix, bin_path)
        entry = {"content": content, "facts": facts, "spans": spans}
        with open(json_path + suffix, "w", encoding="utf-8") as out:
            json.dump(entry, out, allow_nan=False)
        os.replace(json_path + suffix, json_path)
        self.trim()

    def trim(self):
        """Remove the least recently used results until the folder fits ``max_bytes``."""
        with self._lock:
            try:
                names = os.listdir(self.folder)
            except OSError:
                return
            results = {}
            for name in names:
                key = name.split(".", 1)[0]
                if not KEY.fullmatch(key):
                    continue
                try:
                    stat = os.stat(os.path.join(self.folder, name))
                except OSError:
                    continue
                used, size = results.get(key, (0.0, 0))
                results[key] = (max(used, stat.st_mtime), size + stat.st_size)
            total = sum(size for _, size in results.values())
            for key, (_, size) in sorted(results.items(), key=lambda item: item[1][0]):
                if total <= self.max_bytes:
                    break
                for suffix in (".json", ".bin"):
                    with contextlib.suppress(OSError):
                        os.remove(self._path(key, suffix))
                total -= size

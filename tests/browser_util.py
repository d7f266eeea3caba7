"""Helpers for the browser tests and benchmark: a real TensorBoard and a headless Chromium.

``tensorboard_server`` starts the ``tensorboard`` command of this environment (so the plugin
is found through its entry point, as a user's TensorBoard finds it) on a free port and
yields its URL; ``chromium`` launches Debian's Chromium through Playwright;
``open_dashboard`` opens TensorBoard's page on the cnnvis tab and returns the plugin's frame.

Example:
    >>> with tensorboard_server(logdir) as url, chromium() as browser:
    ...     page = browser.new_page(viewport={"width": 1280, "height": 800})
    ...     frame = open_dashboard(page, url)
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium; Playwright's own browser download is not used."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_URL = re.compile(r"(http://127\.0\.0\.1:\d+/)")


def tensorboard_command():
    """The ``tensorboard`` executable beside this Python (the venv's), as an argv prefix."""
    script = Path(sys.executable).with_name("tensorboard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tensorboard.main"]


@contextlib.contextmanager
def tensorboard_server(logdir, *, reload_interval=1, timeout=60, extra_args=()):
    """Run ``tensorboard --logdir LOGDIR --host 127.0.0.1 --port 0`` and yield its base URL.

    Args:
        logdir: the log directory to serve.
        reload_interval: seconds between TensorBoard's scans of the log directory.
        timeout: seconds to wait for the URL on stderr.
        extra_args: more command-line flags.

    Yields:
        The base URL, e.g. ``"http://127.0.0.1:41234/"``.

    Raises:
        RuntimeError: if TensorBoard exits or prints no URL in time (with its output).
    """
    argv = [
        *tensorboard_command(),
        "--logdir",
        str(logdir),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--reload_interval",
        str(reload_interval),
        *extra_args,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    lines = []
    found = threading.Event()
    url = []

    def read():
        for line in process.stderr:
            lines.append(line)
            match = _URL.search(line)
            if match and not url:
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not found.wait(timeout):
            raise RuntimeError(
                f"TensorBoard printed no URL within {timeout}s; exit code {process.poll()}; "
                f"output:\n{''.join(lines)}"
            )
        yield url[0]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)  # the pipe is at its end once the process is gone
        process.stderr.close()


def wait_for_runs(url, runs, timeout=60, settle=0.5):
    """Poll ``/data/plugin/cnnvis/tags`` until it lists every run in ``runs``; return it.

    TensorBoard loads event files in the background, so the answer must also stay the same
    for ``settle`` seconds (no tag still arriving).
    """
    deadline = time.monotonic() + timeout
    answer = previous = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}data/plugin/cnnvis/tags", timeout=10) as response:
                answer = json.loads(response.read())
            listed = set(runs) <= {entry["run"] for entry in answer["runs"]}
            if listed and answer == previous:
                return answer
            previous = answer
        except (urllib.error.URLError, ValueError, KeyError):
            previous = None
        time.sleep(settle)
    raise RuntimeError(f"TensorBoard did not list runs {sorted(runs)} in {timeout}s: {answer}")


@contextlib.contextmanager
def chromium():
    """Launch headless Chromium (``/usr/bin/chromium``) through Playwright; yield the browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


VIEWPORT = {"width": 1280, "height": 800}


def watched_page(browser, *, dialogs=False, **context_options):
    """A page in a fresh browser context, and the problems it reports as they come.

    Args:
        browser: a browser from ``chromium()``.
        dialogs: also count (and dismiss) ``alert``/``confirm`` dialogs as problems.
        context_options: more ``browser.new_context`` options (``accept_downloads=True``).

    Returns:
        ``(context, page, problems)``: ``problems`` collects ``"console: ..."`` errors,
        ``"pageerror: ..."`` exceptions and, with ``dialogs``, ``"dialog: ..."``.
    """
    context = browser.new_context(viewport=VIEWPORT, **context_options)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    if dialogs:
        page.on("dialog", lambda d: problems.append(f"dialog: {d.message}") or d.dismiss())
    return context, page, problems


def open_dashboard(page, url, timeout=30_000):
    """Open TensorBoard at ``url`` on the cnnvis tab; return the plugin iframe's ``Frame``.

    Waits until the dashboard reports a state (``body[data-state]``) in the iframe.
    """
    target = f"{url}#cnnvis"
    if page.url == target:
        page.reload()  # goto() to the same URL and hash would not load anything
    else:
        page.goto(target)
    page.wait_for_selector("iframe", state="attached", timeout=timeout)
    frame = None
    deadline = time.monotonic() + timeout / 1000
    while frame is None and time.monotonic() < deadline:
        frame = next((f for f in page.frames if "plugin_entry.html" in f.url), None)
        if frame is None:
            page.wait_for_timeout(50)
    if frame is None:
        raise RuntimeError(f"No cnnvis iframe; frames: {[f.url for f in page.frames]}")
    frame.wait_for_selector("body[data-state]", timeout=timeout)
    return frame

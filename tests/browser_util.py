"""Helpers for the browser tests and benchmark: a real TensorBoard and a headless Chromium.

``tensorboard_server`` starts the ``tensorboard`` command of this environment (so the plugin
is found through its entry point, as a user's TensorBoard finds it) on a free port and
yields its URL; ``chromium`` launches Debian's Chromium through Playwright;
``open_dashboard`` opens TensorBoard's page on the cnnvis tab and returns the plugin's frame;
``SharedPage`` keeps one TensorBoard page for the tests of a module and gives each test a
fresh dashboard in it (TensorBoard's own page costs seconds to load; the plugin's frame does not).

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
from types import SimpleNamespace

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


PLUGIN_ENTRY = "data/plugin_entry.html?name=cnnvis"
"""The URL (relative to TensorBoard's) of the frame TensorBoard opens for the cnnvis tab."""


class SharedPage:
    """One browser context and TensorBoard page, used in turn by the tests of a module.

    Loading TensorBoard's own page takes about 3 s on two cores; the dashboard in its
    ``plugin_entry.html`` frame about 0.4 s. Each test gets what a fresh page would give it:
    the dashboard's frame loaded anew (a new document, bootstrapped by TensorBoard again),
    the dashboard's saved state (``sessionStorage``) empty, its own problem and request lists,
    no routes or listeners left from the test before, the viewport at ``VIEWPORT``.
    TensorBoard's page itself is loaded again only when a test changed it (a class on its
    body, as the dark theme does) or lost it.

    Args:
        browser: a browser from ``chromium()``.
        url: TensorBoard's base URL.
        context_options: more ``browser.new_context`` options (``accept_downloads=True``).

    Example:
        >>> shared = SharedPage(browser, url)
        >>> page, problems, requests = shared.begin(dialogs=True)
        >>> frame = shared.open()
        >>> shared.end()
        >>> shared.close()
    """

    def __init__(self, browser, url, **context_options):
        self.url = url
        self.context = browser.new_context(viewport=VIEWPORT, **context_options)
        self.page = self.context.new_page()
        self._listeners = []
        self._shell = None  # TensorBoard's body classes once loaded, None before
        self._frame = None  # the plugin's frame in TensorBoard's page

    def begin(self, *, dialogs=False):
        """Start a test; return ``(page, problems, requests)``, both lists empty.

        ``problems`` collects console errors and page errors (and dialogs with ``dialogs``,
        dismissed), ``requests`` the URLs the page requests, as ``watched_page`` does.
        """
        page = self.page
        if self._shell is not None and self._plugin_frame() is not None:
            self._plugin_frame().goto("about:blank")  # the old dashboard can save nothing more
            page.evaluate("window.sessionStorage.clear()")
            if self._body_classes() != self._shell:
                self._shell = None  # the test before changed TensorBoard's page
        else:
            self._shell = None
        if page.viewport_size != VIEWPORT:
            page.set_viewport_size(VIEWPORT)
        problems, requests = [], []

        def listen(event, handler):
            page.on(event, handler)
            self._listeners.append((event, handler))

        listen("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        listen("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        listen("request", lambda r: requests.append(r.url))
        if dialogs:
            listen("dialog", lambda d: problems.append(f"dialog: {d.message}") or d.dismiss())
        return page, problems, requests

    def open(self, timeout=30_000):
        """Show the dashboard anew; return its frame once it reports a state.

        The first time (or after a test changed TensorBoard's page) this loads TensorBoard's
        page on the cnnvis tab (``open_dashboard``); otherwise it loads only the plugin's frame
        again, which TensorBoard bootstraps as it does a new one.
        """
        frame = self._plugin_frame()
        if self._shell is None or frame is None:
            self._shell = None
            self._frame = open_dashboard(self.page, self.url, timeout=timeout)
            self._shell = self._body_classes()
            return self._frame
        frame.goto(self.url + PLUGIN_ENTRY, timeout=timeout)
        frame.wait_for_selector("body[data-state]", timeout=timeout)
        return frame

    def end(self):
        """End a test: remove its listeners and routes."""
        for event, handler in self._listeners:
            self.page.remove_listener(event, handler)
        self._listeners.clear()
        self.page.unroute_all(behavior="ignoreErrors")

    def close(self):
        """Close the context (and its page)."""
        self.context.close()

    @contextlib.contextmanager
    def tab(self, *, dialogs=True):
        """One test's turn: ``.page``, ``.problems``, ``.requests``, ``.url`` and ``.open()``
        (the dashboard loaded anew, also kept as ``.frame``); ended when the block ends."""
        page, problems, requests = self.begin(dialogs=dialogs)
        state = SimpleNamespace(page=page, problems=problems, requests=requests, url=self.url)
        state.open = lambda: setattr(state, "frame", self.open()) or state.frame
        try:
            yield state
        finally:
            self.end()

    def _plugin_frame(self):
        """The frame TensorBoard made for the cnnvis tab, or None."""
        frame = self._frame
        return frame if frame is not None and not frame.is_detached() else None

    def _body_classes(self):
        """TensorBoard's ``body`` classes, sorted (the dark theme is one)."""
        return sorted(self.page.evaluate("[...document.body.classList]"))


def module_page(browser, url, **context_options):
    """The body of a module fixture: a ``SharedPage`` for the module, closed after it."""
    shared = SharedPage(browser, url, **context_options)
    try:
        yield shared
    finally:
        shared.close()

"""What a long logged step shows while it runs: one progress bar per view, or one line.

Logging a step is quick on a small CNN, but step 0 of a real-size network (every filter
pattern, every projection traced for the first time) can take minutes. Once a step has
run for ``DELAY_SECONDS``, ``StepProgress`` shows each view as it goes: on a terminal a
Keras-style bar redrawn in place (``cnnvis step 0 · filter_patterns 3/5 ━━━━━━━━────── 41s``),
elsewhere (a log file, a notebook cell that does not redraw) one line per view when it
ends. During ``on_epoch_end`` Keras's own bar has not finished its line yet: the first
output then starts on a new line, and the last ends one, so Keras's closing line follows.

Example:
    >>> progress = StepProgress(step=0, mid_line=False)
    >>> progress.start("filter_patterns", total=5)
    >>> progress.advance("filter_patterns", 1)
    >>> progress.finish("filter_patterns")
"""

import sys
import time

DELAY_SECONDS = 2.0
"""A step shows its progress once it has run this long (quick steps show nothing)."""

BAR_WIDTH = 20


class StepProgress:
    """Shows the views of one logged step as they run (see the module docstring).

    Args:
        step: the step being logged.
        mid_line: whether the cursor is in the middle of Keras's epoch line.
        stream: where to write (default ``sys.stdout``); redrawn bars only on a terminal.
        delay: seconds after which the step starts showing its progress.
    """

    def __init__(self, step, mid_line=False, stream=None, delay=DELAY_SECONDS):
        self.step = step
        self.mid_line = mid_line
        self.stream = stream if stream is not None else sys.stdout
        self.delay = delay
        self.began = time.perf_counter()
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.wrote = False
        self._view = None

    def start(self, kind, total):
        """A view begins, with ``total`` layers to compute."""
        self._view = {
            "kind": kind,
            "total": max(int(total), 1),
            "done": 0,
            "began": time.perf_counter(),
        }
        self._draw()

    def advance(self, kind, done):
        """``done`` layers of the view are computed."""
        if self._view is not None and self._view["kind"] == kind:
            self._view["done"] = int(done)
            self._draw()

    def finish(self, kind):
        """The view is done: its bar (or line) is completed."""
        view, self._view = self._view, None
        if view is None or not self._showing():
            return
        view["done"] = view["total"]
        self._write(self._text(view) + "\n", redraw=self.live)

    def _showing(self):
        return self.wrote or time.perf_counter() - self.began >= self.delay

    def _draw(self):
        """Redraw the current view's bar (terminals only), once the step is slow enough."""
        if self.live and self._view is not None and self._showing():
            self._write(self._text(self._view), redraw=True)

    def _text(self, view):
        done, total = view["done"], view["total"]
        filled = round(BAR_WIDTH * done / total)
        bar = "━" * filled + "─" * (BAR_WIDTH - filled)
        seconds = time.perf_counter() - view["began"]
        return f"cnnvis step {self.step} · {view['kind']} {done}/{total} {bar} {seconds:.0f}s"

    def _write(self, text, redraw):
        first = "\n" if not self.wrote and self.mid_line else ""
        self.wrote = True
        self.stream.write(first + ("\r" if redraw else "") + text)
        self.stream.flush()


def defaults_text(resolved):
    """ "; layers: <view> <paths> (<why>), ..." for the views on default layers, or ""."""
    parts = [
        f"{kind} {', '.join(ref.path for ref in resolved.layers[kind]) or 'none'} ({reason})"
        for kind, reason in resolved.defaults.items()
    ]
    return f"; default layers: {'; '.join(parts)}" if parts else ""


def step_line(step, seconds, step_plan=None, first_of_run=None):
    """The verbose line of a logged step: each view's seconds and the total; the layers the
    budget left out for time (``step_plan``); with ``first_of_run`` (the plan), each view's
    estimate and the default layers.

    Example:
        >>> step_line(3, {"feature_maps": 0.2, "grad_cam": 0.1})
        'cnnvis step 3: feature_maps 0.20s, grad_cam 0.10s (total 0.30s)'
    """
    spent = ", ".join(f"{view} {s:.2f}s" for view, s in seconds.items())
    line = f"cnnvis step {step}: {spent} (total {sum(seconds.values()):.2f}s)"
    if step_plan is not None and step_plan.skipped:
        left = "; ".join(f"{kind} {', '.join(paths)}" for kind, paths in step_plan.skipped.items())
        line += f"; out of time at this step, left out: {left}"
    if first_of_run is not None:
        line += (step_plan.describe() if step_plan else "") + defaults_text(first_of_run)
    return line

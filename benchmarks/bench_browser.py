"""Benchmark: the dashboard's speed in a real browser, in a real TensorBoard tab.

Measured inside the page with ``performance.now()`` (the dashboard records its own timings
in ``window.cnnvis.timings``), on the demo's log directory (``demo/logs``) when it holds
cnnvis data, else on a synthetic run (``tb_cnnvis.testing.write_synthetic_run``: 3 layers,
8 probes of 64x64, 10 epochs):

1. First paint of the tab: from the start of the plugin iframe's navigation to the first
   view fully drawn (every visible card), in a fresh browser context (cold HTTP cache), over
   several page loads; also from the start of TensorBoard's own page. Target: < 1 s.
2. Epoch switch: for each view, from the key press to every visible card redrawn, walking
   forward through every epoch (the next epoch is prefetched while idle, as in use) and back
   (everything cached). Target: < 150 ms.
3. Requests for one view at one epoch (the newest), and for going back to an epoch seen.
4. The layer list of a deep network: a run of 153 layers (``tests/deep_runs.py``: most in a
   nested MobileNetV2-like model, five resolution stages), served by a TensorBoard of its own.
   Building the list for the run, bringing it in step after a layer change, and one
   keystroke in the filter box (typing ``block_13_expand`` and deleting it again), each with
   the style and layout it causes (a forced layout after the handler). Target: < 50 ms.

Usage::

    python -m benchmarks.bench_browser [--logdir DIR] [--loads 5] [--screenshots DIR]

``--screenshots`` also saves one screenshot per view (``demo_<view>.png``), the detail panel
of a Grad-CAM probe, of a filter pattern and of a filter's top examples, and two views in
the dark theme, at 1280x800: the candidates for the README.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from tests.browser_util import chromium, open_dashboard, tensorboard_server, wait_for_runs

ROOT = Path(__file__).resolve().parents[1]
DEMO_LOGS = ROOT / "demo" / "logs"
VIEWPORT = {"width": 1280, "height": 800}
VIEWS = ("grad_cam", "feature_maps", "filter_patterns", "deconvnet", "top_examples")


def _row(metric, value, unit, target=None):
    """One result row."""
    return {"bench": "browser", "metric": metric, "value": round(value, 1), "unit": unit,
            "target": target}  # fmt: skip


def _logdir(requested, workdir):
    """The log directory to measure: the one asked for, the demo's, or a synthetic one."""
    if requested:
        return Path(requested), "given"
    if any(DEMO_LOGS.glob("**/cnnvis/events.out.tfevents.*")):
        return DEMO_LOGS, "demo"
    from tb_cnnvis.testing import write_synthetic_run

    path = Path(workdir) / "logs"
    write_synthetic_run(str(path), epochs=10, layers=3, probes=8, size=64, nested=False)
    return path, "synthetic"


def settle(frame):
    """Wait until the dashboard has no rebuild or paint in flight."""
    frame.evaluate("window.cnnvis.settled()")


def press(frame, key):
    """A key press on the page (not in a form control), then wait for the redraw."""
    frame.evaluate("document.activeElement && document.activeElement.blur(); window.focus()")
    frame.page.keyboard.press(key)
    settle(frame)


def first_paints(browser, url, loads):
    """(iframe-relative, page-relative) first-paint times in ms over ``loads`` fresh loads."""
    inner, outer = [], []
    for _ in range(loads):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        frame = open_dashboard(page, url)
        frame.wait_for_function("window.cnnvis && window.cnnvis.timings.firstPaint !== null")
        first = frame.evaluate("window.cnnvis.timings.firstPaint")
        origin = frame.evaluate("performance.timeOrigin")
        inner.append(first)
        outer.append(origin + first - page.evaluate("performance.timeOrigin"))
        context.close()
    return inner, outer


def open_view(frame, kind):
    """Click a view's family tab, then its method (the dashboard moves to a layer that has it)."""
    tab = frame.locator(f'.tab[data-kinds~="{kind}"]')
    if tab.count() == 0:
        return False
    tab.click()
    settle(frame)
    method = frame.locator(f'.method[data-kind="{kind}"]')
    if method.count() and method.get_attribute("aria-selected") != "true":
        method.click()
        settle(frame)
    return True


def epoch_switches(page, frame, kinds):
    """Per view: (forward ms list, backward ms list, blob requests at one epoch, revisit)."""
    results = {}
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    for kind in kinds:
        press(frame, "End")
        requests.clear()
        if not open_view(frame, kind):
            continue
        frame.wait_for_timeout(300)  # the idle prefetch, if any
        one_view = sum("/cnnvis/blob" in u for u in requests)
        epochs = frame.evaluate("window.cnnvis.epochs.length")
        press(frame, "Home")
        start = len(frame.evaluate("window.cnnvis.timings.switches"))
        for _ in range(epochs - 1):
            press(frame, "ArrowRight")
        middle = len(frame.evaluate("window.cnnvis.timings.switches"))
        requests.clear()
        for _ in range(epochs - 1):
            press(frame, "ArrowLeft")
        revisit = sum("/cnnvis/" in u for u in requests)
        switches = [s["ms"] for s in frame.evaluate("window.cnnvis.timings.switches")]
        results[kind] = (switches[start:middle], switches[middle:], one_view, revisit)
    return results


def choose_layer(frame, position):
    """Click the ``position``-th layer that has the current view, if there is one after it."""
    layers = frame.locator(".layer:not(.missing)")
    if layers.count() > position + 1:
        layers.nth(position).click()
        settle(frame)


def open_detail(page, frame, card, path):
    """Open a card's detail, wait until it is drawn, save a screenshot and close it."""
    frame.locator(".card").nth(card).click()
    frame.locator("dialog.detail").wait_for()
    settle(frame)
    frame.wait_for_timeout(300)
    page.screenshot(path=str(path))
    frame.get_by_role("button", name="Close").click()


def screenshots(page, frame, folder):
    """One screenshot per view at the newest epoch, plus details and the dark theme."""
    folder.mkdir(parents=True, exist_ok=True)
    press(frame, "End")
    # A deeper layer where the first says little: conv2 for maps and patterns, conv3 for
    # top examples (larger receptive fields).
    deeper = {"feature_maps": 1, "filter_patterns": 1, "top_examples": 2}
    kinds = ("feature_maps", "filter_patterns", "grad_cam", "guided_backprop", "deconvnet",
             "top_examples")  # fmt: skip
    for kind in kinds:
        if open_view(frame, kind):
            if kind in deeper:
                choose_layer(frame, deeper[kind])
            page.screenshot(path=str(folder / f"demo_{kind}.png"))
            if kind == "top_examples":
                open_detail(page, frame, 1, folder / "demo_detail_top_examples.png")
    if open_view(frame, "filter_patterns"):
        choose_layer(frame, 2)
        open_detail(page, frame, 1, folder / "demo_detail_filter.png")
    if open_view(frame, "grad_cam"):
        open_detail(page, frame, 1, folder / "demo_detail_grad_cam.png")
    page.evaluate("document.body.classList.add('dark-mode')")
    frame.wait_for_function("document.documentElement.dataset.theme === 'dark'")
    for kind in ("grad_cam", "filter_patterns"):
        if open_view(frame, kind):
            page.screenshot(path=str(folder / f"demo_dark_{kind}.png"))


LAYER_LIST_JS = """async (query) => {
  const app = window.cnnvis;
  const list = app.controls.layers;
  const run = app.runs.find((r) => r.name === app.state.run);
  const sidebar = document.querySelector('.sidebar');
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const timed = (work) => {
    const start = performance.now();
    work();
    void sidebar.offsetHeight;  // the style and layout the change causes
    return performance.now() - start;
  };
  const builds = [], syncs = [], keys = [];
  for (let i = 0; i < 8; i++) {
    builds.push(timed(() => { list.signature = null; list.sync(run); }));
    await frame();
    syncs.push(timed(() => list.sync(run)));
    await frame();
  }
  const input = document.getElementById('cv-layer-filter');
  const typed = [...query].map((_, i) => query.slice(0, i + 1));
  const deleted = typed.slice(0, -1).reverse();
  for (const value of [...typed, ...deleted, '']) {
    keys.push(timed(() => { input.value = value; input.dispatchEvent(new Event('input')); }));
    await frame();
  }
  return {layers: run.layers.length, builds, syncs, keys};
}"""


def layer_list(browser, workdir):
    """Build, sync and filter times (ms lists) of the layer list of a 153-layer run."""
    from tests.deep_runs import write_deep_run

    logdir = Path(workdir) / "deep_logs"
    write_deep_run(logdir / "deep" / "cnnvis")
    with tensorboard_server(logdir) as url:
        wait_for_runs(url, ["deep/cnnvis"])
        context = browser.new_context(viewport=VIEWPORT)
        frame = open_dashboard(context.new_page(), url)
        frame.wait_for_function("document.body.dataset.state === 'ready'")
        settle(frame)
        result = frame.evaluate(LAYER_LIST_JS, "block_13_expand")
        context.close()
    return result


def main(argv=None):
    """Run the benchmark and print a table; returns the rows (dicts).

    Args:
      argv: command-line arguments (``--logdir``, ``--loads``, ``--screenshots``).

    Returns:
      A list of ``{"bench", "metric", "value", "unit", "target"}`` dicts.

    Example:
      >>> rows = main(["--loads", "3"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", help="log directory (default: demo/logs, else synthetic)")
    parser.add_argument("--loads", type=int, default=5, help="page loads for the first paint")
    parser.add_argument("--screenshots", help="also save README screenshots to this folder")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_browser_") as workdir:
        logdir, source = _logdir(args.logdir, workdir)
        with tensorboard_server(logdir) as url, chromium() as browser:
            runs = [r["run"] for r in wait_for_runs(url, [])["runs"]]
            while not runs:
                runs = [r["run"] for r in wait_for_runs(url, [], settle=1.0)["runs"]]
            inner, outer = first_paints(browser, url, args.loads)
            rows.append(_row("first paint, tab (median)", statistics.median(inner), "ms", 1000))
            rows.append(_row("first paint, tab (worst)", max(inner), "ms", 1000))
            rows.append(_row("first paint from TensorBoard page start (median)",
                             statistics.median(outer), "ms"))  # fmt: skip
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            frame = open_dashboard(page, url)
            settle(frame)
            for kind, (forward, back, one_view, revisit) in epoch_switches(
                page, frame, VIEWS
            ).items():
                if forward:
                    rows.append(_row(f"epoch switch {kind}, new (median)",
                                     statistics.median(forward), "ms", 150))  # fmt: skip
                    rows.append(_row(f"epoch switch {kind}, new (worst)", max(forward), "ms", 150))
                if back:
                    rows.append(_row(f"epoch switch {kind}, seen (median)",
                                     statistics.median(back), "ms", 150))  # fmt: skip
                rows.append(_row(f"image requests, {kind} at one epoch", one_view, "requests"))
                rows.append(_row(f"requests going back over seen epochs, {kind}", revisit,
                                 "requests", 0.5))  # fmt: skip
            if args.screenshots:
                screenshots(page, frame, Path(args.screenshots))
            context.close()
            deep = layer_list(browser, workdir)
            n = deep["layers"]
            for label, times in (("build", deep["builds"]), ("sync after a layer change",
                                 deep["syncs"]), ("filter keystroke", deep["keys"])):  # fmt: skip
                rows.append(_row(f"layer list of {n} layers: {label} (median)",
                                 statistics.median(times), "ms", 50))  # fmt: skip
                rows.append(
                    _row(f"layer list of {n} layers: {label} (worst)", max(times), "ms", 50)
                )
    print(f"browser benchmark on {source} log directory {logdir} ({', '.join(runs)})")
    for row in rows:
        target = "" if row["target"] is None else f"  (target < {row['target']:g})"
        verdict = "" if row["target"] is None else (
            "  ok" if row["value"] < row["target"] else "  MISSED")  # fmt: skip
        print(f"  {row['metric']:<52} {row['value']:>9.1f} {row['unit']}{target}{verdict}")
    return rows


if __name__ == "__main__":
    main()

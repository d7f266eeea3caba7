"""The README's filter-pattern screenshots: the three presets on the trained demo model.

Logs ``filter_patterns`` of the demo's saved model (``demo/logs/model.keras``, written by
``python -m demo.run``) once per preset with ``tb-cnnvis log``, on the demo's probe images
and held-out reference images (MaCo's spectrum, the data-seeded restarts), then serves the
three runs with a real ``tensorboard`` and saves one screenshot per preset and layer from
headless Chromium:

    python -m benchmarks.preset_screenshots [--model demo/logs/model.keras] [--out docs/screenshots]

Writes ``patterns_<preset>_conv3.png`` and, for MaCo, ``patterns_maco_conv3_alpha.png``
(its transparency applied, when the dashboard offers it). Not part of ``make bench``: it
measures nothing; it is how the pictures in the README were made.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bench_browser import VIEWPORT, open_view, settle
from tests.browser_util import chromium, open_dashboard, tensorboard_server, wait_for_runs

PRESETS = ("fast", "quality", "maco")
LAYERS = ("conv3",)  # an 18x18 px field: large enough to read, small enough to crop


def probe_files(folder):
    """Write the demo's probe and reference images (held-out shapes) as .npy files."""
    from demo.shapes import make_shapes
    from demo.train import pick_probes

    images, labels = make_shapes(600, seed=7)[:2]
    probes = pick_probes(labels, 8)
    reference = np.setdiff1d(np.arange(len(images)), probes)[:256]
    paths = {}
    for name, rows in (("probes", probes), ("reference", reference)):
        paths[name] = Path(folder) / f"{name}.npy"
        np.save(paths[name], images[rows].astype(np.float32))
    np.save(Path(folder) / "labels.npy", labels[probes])
    return paths


def log_presets(model, folder, epoch):
    """One ``tb-cnnvis log`` run per preset under ``folder/<preset>``, at step ``epoch``."""
    paths = probe_files(folder)
    for preset in PRESETS:
        command = [sys.executable, "-m", "tb_cnnvis.cli", "log", "--model", str(model),
                   "--images", str(paths["probes"]), "--labels", str(Path(folder) / "labels.npy"),
                   "--reference", str(paths["reference"]), "--logdir", str(Path(folder) / preset),
                   "--views", "filter_patterns", "--filter-preset", preset, "--step", str(epoch),
                   "--quiet"]  # fmt: skip
        subprocess.run(command, check=True)


def _clip(frame):
    """The page region from the options row to the last card, across the main column."""
    main = frame.locator(".main").bounding_box()
    top = frame.locator(".options").bounding_box()["y"]
    last = frame.locator(".card").last.bounding_box()
    bottom = last["y"] + last["height"] + 16
    return {"x": main["x"], "y": top, "width": main["width"], "height": bottom - top}


def shoot(url, out):
    """Screenshot the patterns of every preset and layer; returns the files written."""
    written = []
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        frame = open_dashboard(page, url)
        settle(frame)
        for preset in PRESETS:
            frame.evaluate(f"window.cnnvis.set({{run: '{preset}/cnnvis'}}, true)")
            settle(frame)
            open_view(frame, "filter_patterns")
            for layer in LAYERS:
                frame.locator(f'.layer[data-layer="{layer}"]').first.click()
                settle(frame)
                frame.wait_for_timeout(300)
                written.append(out / f"patterns_{preset}_{layer}.png")
                page.screenshot(path=str(written[-1]), clip=_clip(frame))
                alpha = frame.locator("label", has_text="transparency")
                if alpha.count():
                    alpha.first.click()
                    settle(frame)
                    written.append(out / f"patterns_{preset}_{layer}_alpha.png")
                    page.screenshot(path=str(written[-1]), clip=_clip(frame))
                    alpha.first.click()
                    settle(frame)
        context.close()
    return written


def main(argv=None):
    """Log, serve and shoot; prints the files written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo/logs/model.keras")
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--epoch", type=int, default=15, help="the model's epoch (demo: 15)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="presets_") as folder:
        log_presets(args.model, folder, args.epoch)
        with tensorboard_server(folder) as url:
            wait_for_runs(url, [f"{preset}/cnnvis" for preset in PRESETS])
            for path in shoot(url, out):
                print(path)


if __name__ == "__main__":
    main()

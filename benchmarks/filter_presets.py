"""The filter-pattern presets compared, and the cost of receptive-field canvases.

Part of ``bench_filters`` (``make bench``):

- ``preset_case``: per preset (``fast``, ``quality``, ``maco``) at its default steps and
  canvas, on 8 filters (the callback's ``max_filters_per_layer``): specificity (the
  share of live filters whose own pattern excites them more than any other filter's
  pattern does, over the interior units; ``fv_specificity``), seconds after the first
  call, and mean activation reached per second. Reference images (held-out demo images)
  give MaCo its spectrum and the data-seeded restarts.
- ``choose_default``: the preset with the best mean specificity among those within the
  callback's time budget (``BUDGET_SECONDS`` per demo layer).
- ``mobilenet_rows``: ``keras.applications.MobileNetV2`` (weights=None, 224 px): seconds
  for 8 filters of an early, a middle and a late layer on the whole input (before) and on
  the receptive-field canvas (after).

Example:
    >>> found = {"demo conv3": preset_case("demo 64px", model, "conv3", unit, images, rows, False)}
    >>> choose_default(found)
    ('fast', 'mean specificity ...')
"""

import time

import keras
import numpy as np

from benchmarks.common import row
from tb_cnnvis.algorithms.filters import filter_patterns
from tb_cnnvis.input_range import InputRange


def best_time(function, repeats):
    """``(seconds, result)``: the fastest of ``repeats`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


BUDGET_SECONDS = 1.0
"""The callback's time budget for one layer's patterns (8 filters, after the first call) on
the demo, 2 cores: its 4 layers then cost at most 4 s per logged step, under 10 % of the
10 epochs between two logs at the default ``filters_every_n_epochs``."""


def preset_case(case, model, layer, input_range, reference, rows, quick):
    """Per preset at its default steps and canvas: specificity (the interior diagonal
    dominance of ``fv_specificity``) over the first 16 filters (8 ties too often),
    seconds for 8 filters after the first call (the callback's default), and the mean
    activation reached per second."""
    from tb_cnnvis.algorithms.fv_presets import PRESETS
    from tb_cnnvis.algorithms.fv_specificity import specificity

    count = model.get_layer(layer).filters
    found = {}
    for name in PRESETS:
        steps = 128 if quick and name == "quality" else None

        def run(filters, name=name, steps=steps):
            return filter_patterns(
                model, layer, filters, preset=name, steps=steps, input_range=input_range,
                reference_images=reference,
            )  # fmt: skip

        result = run(list(range(min(16, count))))
        spec = specificity(model, result)
        eight = list(range(min(8, count)))
        run(eight)
        seconds, timed = best_time(lambda eight=eight, run=run: run(eight), 1 if quick else 2)
        act = float(np.mean(timed.activations))
        found[name] = (spec, seconds, act)
        label = f"{case} {layer}, preset {name} ({result.steps} steps, canvas {result.canvas.size})"
        note = (
            f"{len(result.filters)} filters; dead {result.dead.tolist()}; "
            f"data-seeded {result.seeded.tolist()}"
        )
        rows.append(row("filters", f"{label}: specificity", spec, "share", ">= 0.9", note))
        budget = f"<= {BUDGET_SECONDS}" if case.startswith("demo") else None
        rows.append(row("filters", f"{label}: seconds, 8 filters", seconds, "s", budget, ""))
        rows.append(
            row(
                "filters",
                f"{label}: activation per second",
                act / seconds,
                "1/s",
                None,
                f"act {act:.3f}",
            )
        )
    return found


def choose_default(found):
    """The preset with the best mean specificity among those whose demo layers fit the
    budget (ties: more activation per second); ``(name, reason)``.

    Args:
        found: ``{case: {preset: (specificity, seconds, activation)}}``.
    """
    presets = sorted({name for per_case in found.values() for name in per_case})
    demo = [per_case for case, per_case in found.items() if case.startswith("demo")]
    fits = [p for p in presets if all(c[p][1] <= BUDGET_SECONDS for c in demo)] or presets

    def score(name):
        specs = [c[name][0] for c in found.values() if np.isfinite(c[name][0])]
        speed = np.mean([c[name][2] / c[name][1] for c in found.values()])
        return (round(float(np.mean(specs)), 2) if specs else 0.0, float(speed))

    best = max(fits, key=score)
    scores = ", ".join(f"{p} {score(p)[0]:.2f}" for p in presets)
    slow = [p for p in presets if p not in fits]
    reason = f"mean specificity {scores}; over the {BUDGET_SECONDS} s budget: {slow or 'none'}"
    return best, reason


def mobilenet_rows(rows, quick):
    """MobileNetV2 at 224 px (weights=None): seconds for 8 filters (fast preset), on the
    whole input (before the receptive-field canvas) and on the canvas (after)."""
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    unit = InputRange.named("tf")
    chosen = ["block_2_expand", "block_5_expand"] + ([] if quick else ["block_15_expand"])
    for where, layer in zip(("early", "middle", "late"), chosen):
        timed = {}
        for label, size in (("before", (224, 224)), ("after", None)):

            def run(size=size, layer=layer):
                return filter_patterns(model, layer, range(8), input_range=unit, size=size)

            start = time.perf_counter()
            result = run()
            first = time.perf_counter() - start
            timed[label] = (best_time(run, 1)[0], first, result.canvas.size)
        (before, first_before, _), (after, first_after, canvas) = timed["before"], timed["after"]
        rows.append(
            row(
                "filters",
                f"MobileNetV2 224px {where} {layer} (8 filters, fast): seconds before / after",
                before / after,
                "x",
                None,
                f"224 px {before:.2f} s (first {first_before:.1f} s); canvas {canvas} "
                f"{after:.2f} s (first {first_after:.1f} s)",
            )
        )


def demo_images(quick):
    """Held-out demo images (the callback's reference images): spectrum and seeding."""
    from demo.shapes import make_shapes

    return make_shapes(64 if quick else 200, seed=1)[0]

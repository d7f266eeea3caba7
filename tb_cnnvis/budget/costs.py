"""What views cost: each layer's share of the model, each view's work, measured seconds.

Work is counted in forward passes of one probe image through the whole model; a layer's
share of that pass comes from the multiply-adds up to it (``prefix_shares``). ``Costs``
turns work into seconds with a forward pass timed on the probes at ``set_model``, and
corrects each view's estimates with what it really took once it has run.

Example:
    >>> costs = Costs(plan)
    >>> costs.seconds(plan, "filter_patterns", Settings(filters=4))
    (3.2, 1.1)
"""

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tb_cnnvis import capture, views

ASSUMED_BATCH = 32
"""The training batch assumed before the first training step is timed (Keras's default)."""

DELETION_LADDER = (16, 8, 4, 0)
"""The deletion curves' points, minus one, from the default down; 0: no curves at the step
(their compiled forward is a whole-model trace the step cannot afford)."""

# Traces, in traces of the whole model's forward pass (the one ``make_plan`` timed), times
# each layer's share of the model's layers (``prefix_layer_shares``). Measured with
# ``time.process_time`` on MobileNetV2, EfficientNetB0 (96 px) and a fully-convolutional
# model (2 cores, December 2026): a filter-pattern loop 6.9-7.4 (the ascent's gradient,
# the while loop, the first run's graph optimization) plus about 0.5-0.8 s whatever the
# layer; an input gradient (attributions) 1.4-2.1; a projection 2.3-3.4; deletion curves
# 1.8-2.3. A CAM's gradient is taken from where its layer returns (the tape holds only the
# rest of the model): 0.9-1.4 at the last convolution of MobileNetV2/V3Small,
# EfficientNetB0, ResNet50, DenseNet121 and the fully-convolutional model.
FILTER_TRACES = 7.0
LOOP_TRACE_SECONDS = 0.6
CAM_TRACES = 1.1
INPUT_GRADIENT_TRACES = 2.0
PROJECTION_TRACES = 3.0
DELETION_TRACES = 1.0  # the model's logits function, traced once for any batch

STEP_PER_FORWARD = 1.0
"""Before the first training step, a training step is estimated as this many forward
passes of its batch (``ASSUMED_BATCH`` images, at the seconds timed at ``set_model``).
Measured with ``benchmarks.bench_zoo``'s networks at 96 px (2 cores, December 2026), a
training step took 1.0-1.5 forward passes of its batch on MobileNetV3Small (five runs)
and the fully-convolutional model (1.1-1.9), 1.6-2.6 on MobileNetV2, 2.8 on
EfficientNetB0, 3.5-5.3 on DenseNet121, VGG16, ResNet50 and ResNet50V2 (the textbook 3
sits in the middle): the forward pass of 8 probes, scaled to 32 images, counts a small
network's per-call overhead four times. The low end is taken: step 0 then stays within its
allowance on every one of them, and the heavy networks get a tighter step 0 than they
could afford (their measured step takes over from the first training batch on)."""

# Forward passes of one probe image per unit of a view's settings: gradient methods
# cost a forward and a backward pass (3 forwards); per family, what scales the work.
GRADIENT_PASSES = 3.0
_ATTRIBUTION_PASSES = {
    "smoothgrad": 25 * GRADIENT_PASSES,
    "integrated_gradients": 64 * GRADIENT_PASSES,
}


class TrainingClock:
    """The user's training step time (median of recent batches) and epoch training time."""

    def __init__(self):
        self.intervals, self.epoch_seconds = [], None
        self._last = self._epoch_began = None

    def batch_end(self):
        """Called at ``on_train_batch_end``: the time since the previous batch ended."""
        now = time.perf_counter()
        if self._last is not None:
            self.intervals = [*self.intervals[-63:], now - self._last]
        self._last = now

    def epoch_begin(self):
        """Called at ``on_epoch_begin`` (the first batch of an epoch is not timed)."""
        self._last, self._epoch_began = None, time.perf_counter()

    def epoch_end(self):
        """Called at ``on_epoch_end``, before logging: the epoch's training time."""
        if self._epoch_began is not None:
            self.epoch_seconds = time.perf_counter() - self._epoch_began
        self._last = None

    @property
    def step_seconds(self):
        """The median training step, or None before two batches were timed."""
        return float(np.median(self.intervals)) if self.intervals else None


def prefix_shares(model, image_size=None):
    """``{layer path: share of the model's multiply-adds up to and including it}``.

    A layer's multiply-adds: its weight matrices' entries times its output positions,
    plus its output size (element-wise work). A model that takes any size is measured at
    ``image_size`` (the probes' (height, width): one trace records its shapes); without
    it, shapes that are not known give each layer the same share.
    """
    refs = capture.layer_refs(model)
    shapes = {ref.path: ref.output_shape for ref in refs}
    if image_size is not None and any(s and None in tuple(s) for s in shapes.values()):
        shapes.update(_shapes_at(model, tuple(int(d) for d in image_size)))
    costs = []
    for ref in refs:
        shape = shapes.get(ref.path)
        if capture.sublayers(ref.layer) or shape is None:
            costs.append(0.0)
            continue
        if any(d is None for d in shape):
            costs.append(1.0)
            continue
        positions = float(np.prod(shape[:-1])) if len(shape) > 1 else 1.0
        weights = sum(float(np.prod(w.shape)) for w in ref.layer.weights if len(w.shape) >= 2)
        costs.append(positions * weights + float(np.prod(shape)))
    return _cumulative(refs, costs)


def _shapes_at(model, image_size):
    """``{path: output shape without the batch}`` of one call on images of ``image_size``."""

    def read(record):
        return {c.path: tuple(c.outputs[0].shape)[1:] for c in record.calls if c.outputs}

    return capture.trace_calls(model, read, image_size=image_size)


def prefix_layer_shares(model):
    """``{layer path: share of the model's layers up to and including it}``: what a trace
    of the model up to that layer costs, as a share of a trace of the whole model.

    Tracing builds the graph op by op in Python, so its cost follows the number of layers
    run, not their multiply-adds: ConvNeXtTiny's first stage holds a fifth of its layers
    and a twentieth of its work at 64 px.
    """
    refs = capture.layer_refs(model)
    return _cumulative(refs, [0.0 if capture.sublayers(ref.layer) else 1.0 for ref in refs])


def _cumulative(refs, costs):
    """``{path: share of the summed costs up to and including it}`` (at least 1e-3)."""
    total = np.cumsum(costs) if costs else np.zeros(1)
    top = float(total[-1]) or 1.0
    return {ref.path: max(float(t) / top, 1e-3) for ref, t in zip(refs, total)}


class Shares(NamedTuple):
    """Per layer path, the share of a whole pass of the model that one up to it costs.

    Attributes:
        compute: of the compute (``prefix_shares``).
        trace: of a trace (``prefix_layer_shares``).
    """

    compute: dict
    trace: dict

    @classmethod
    def of(cls, model, image_size=None):
        """Both shares of ``model`` (at ``image_size``, for a model that takes any size)."""
        return cls(prefix_shares(model, image_size), prefix_layer_shares(model))


@dataclass
class Settings:
    """One view's settings at one step (``None``: the user's own)."""

    filters: int | None = None
    steps: int | None = None
    probes: int | None = None
    layers: int | tuple | None = None  # how many (evenly spaced) or which (indices)

    def reduced(self):
        """True if any setting was reduced."""
        return any(v is not None for v in (self.filters, self.steps, self.probes, self.layers))


def spread(refs, count):
    """``count`` of ``refs`` evenly spaced from the first to the last (all if None); a
    tuple of indices picks those."""
    if isinstance(count, tuple):
        return [refs[i] for i in count]
    if count is None or count >= len(refs):
        return list(refs)
    if count <= 1:
        return list(refs[-1:])
    picks = sorted({round(i * (len(refs) - 1) / (count - 1)) for i in range(count)})
    return [refs[i] for i in picks]


def layer_count(layers, total):
    """How many of ``total`` layers a ``Settings.layers`` keeps."""
    if layers is None:
        return total
    return len(layers) if isinstance(layers, tuple) else min(int(layers), total)


def fewer_layers(count):
    """The ``Settings.layers`` below ``count`` layers, from the most: halved down to 2
    (evenly spaced, the deepest kept), then the shallowest layer alone, the cheapest to
    trace (the deepest alone costs a trace of nearly the whole model, as 2 layers do)."""
    halves = []
    while count > 2:
        count //= 2
        halves.append(max(count, 2))
    return [*dict.fromkeys(halves), (0,)]


def _classes(plan):
    """Maps per probe of the class-explaining views."""
    chosen = plan.options.cam_classes
    return chosen if isinstance(chosen, int) else len(chosen)


def work(plan, kind, settings, shares, deletion_steps=DELETION_LADDER[0]):
    """``(compute, traces)`` of one view at one step, in forward passes of one probe image
    through the whole model: its compute (with its deletion curves, if it has a metric),
    and what its compiled functions' first traces add (a trace of the whole forward: 1)."""
    compute, deletion, traces = _work(plan, kind, settings, shares, deletion_steps)
    return compute + deletion, traces


def deletion_work(plan, kind, settings, deletion_steps):
    """The part of ``work`` spent on the view's deletion curves (a metric)."""
    return _work(plan, kind, settings, Shares({}, {}), deletion_steps)[1]


def _work(plan, kind, settings, shares, deletion_steps):
    """``(compute, deletion, traces)``: see ``work``."""
    view = views.get(kind)
    family, refs = view.family.name, spread(plan.layers.get(kind, []), settings.layers)
    probes = settings.probes or len(plan.probes.images)
    share = [shares.compute.get(ref.path, 1.0) for ref in refs]
    traced = [shares.trace.get(ref.path, 1.0) for ref in refs]
    gradients = PROJECTION_TRACES * sum(traced)  # a gradient's trace per layer
    if family == "feature_maps":
        return probes * max(share, default=0.0), 0.0, max(traced, default=0.0)
    if family == "filter_patterns":
        options = plan.options.filter_options
        steps = settings.steps or options["steps"] or preset_steps(options["preset"])
        filters = settings.filters or plan.options.max_filters_per_layer
        per = [min(filters, int(ref.output_shape[-1])) * options["diversity"] for ref in refs]
        return (
            steps * GRADIENT_PASSES * float(np.dot(per, share)),
            0.0,
            FILTER_TRACES * sum(traced),
        )
    if family == "deepdream":
        steps = settings.steps or plan.options.deepdream_steps
        return probes * steps * 1.8 * GRADIENT_PASSES * sum(share), 0.0, FILTER_TRACES * sum(traced)
    if family == "projection":
        return probes * GRADIENT_PASSES * sum(share), 0.0, gradients
    if family == "top_examples":
        filters = settings.filters or plan.options.max_filters_per_layer
        count = len(next(iter(_rows(plan.options.reference_images))))
        return (
            count * sum(share) + filters * plan.options.top_k * GRADIENT_PASSES * sum(share),
            0.0,
            gradients,
        )
    maps = probes * (_classes(plan) if family in ("cam", "attribution") else 1)
    deletion = 0.0  # the deletion curves' own traces: see Costs.seconds
    if view.metric_name and plan.options.metrics and deletion_steps:
        deletion = maps * (deletion_steps + 1) * 2
    method = view.params.get("method")
    if method == "scorecam":
        channels = sum(min(int(r.output_shape[-1]), settings.filters or 1 << 30) for r in refs)
        return maps * channels / 4, deletion, CAM_TRACES * len(refs) + 1
    if method == "eigencam":
        return probes * sum(share), deletion, sum(traced)
    if method == "occlusion":
        return maps * 64, deletion, 1
    passes = _ATTRIBUTION_PASSES.get(method, GRADIENT_PASSES)
    layers = max(len(refs), 1)  # a class score is a whole forward, then back to the layer
    traces = INPUT_GRADIENT_TRACES if family == "attribution" else CAM_TRACES
    return maps * passes * layers, deletion, traces * layers


def _rows(images):
    """The arrays of ``images`` (an array, or a dict of them)."""
    return images.values() if isinstance(images, dict) else [images]


def preset_steps(preset):
    """The default steps of a filter preset (a name or a ``Preset``)."""
    from tb_cnnvis.algorithms.fv_presets import check_preset

    return check_preset(preset).steps


class Costs:
    """What one forward pass and one trace cost on this model, and per view how far the
    estimates were off (``ratio``: measured seconds over estimated, from its last run)."""

    def __init__(self, plan):
        from tb_cnnvis.algorithms import feature_maps

        self.shares = Shares.of(plan.model, plan.probes.images.shape[1:3])
        paths = list(plan.walked) or [capture.select_layers(plan.model, None)[-1].path]
        again = []  # the forward pass make_plan traced, run again: the fastest of a few
        while not again or (len(again) < FORWARD_RUNS and sum(again) < FORWARD_SECONDS):
            began = time.perf_counter()
            feature_maps.layer_outputs(
                plan.model, plan.probes.inputs, paths, image_input=plan.options.image_input
            )
            again.append(time.perf_counter() - began)
        again = min(again)
        deepest = max(max(self.shares.compute.get(path, 1.0) for path in paths), 0.05)
        self.forward = again / len(plan.probes.images) / deepest  # one image, whole model
        deepest = max(max(self.shares.trace.get(path, 1.0) for path in paths), 0.05)
        self.trace = max(plan.first_forward - again, 0.0) / deepest  # the whole model
        self.ratio, self.traced, self.measured = {}, set(), set()
        self.curves_traced = False  # the deletion curves' logits function
        if [ref.path for ref in plan.layers.get("feature_maps", ())] == list(plan.walked):
            # make_plan's forward pass traced the feature maps' own function
            self.traced.add(("feature_maps", _key("feature_maps", Settings())))

    def curves_trace(self):
        """Seconds the deletion curves' first trace adds (0 once it is traced)."""
        return 0.0 if self.curves_traced else DELETION_TRACES * self.trace

    def seconds(self, plan, kind, settings, deletion_steps=DELETION_LADDER[0]):
        """``(compute, traces)``: estimated seconds of ``kind`` with ``settings``, and of
        its first traces while it has not run with these settings (else 0)."""
        compute, traces = work(plan, kind, settings, self.shares, deletion_steps)
        compute *= self.forward * self.ratio.get(kind, 1.0)
        if _has_curves(plan, kind, deletion_steps):
            compute += self.curves_trace()
        if (kind, _key(kind, settings)) in self.traced:
            return compute, 0.0
        loops = 0
        if views.get(kind).family.name in ("filter_patterns", "deepdream"):
            loops = len(spread(plan.layers.get(kind, []), settings.layers))
        return compute, traces * self.trace + loops * LOOP_TRACE_SECONDS

    def observe(self, plan, kind, settings, seconds, deletion_steps):
        """Correct the estimates of ``kind`` with the ``seconds`` it really took."""
        compute, _ = work(plan, kind, settings, self.shares, deletion_steps)
        if compute <= 0 or self.forward <= 0:
            return
        if _has_curves(plan, kind, deletion_steps) and not self.curves_traced:
            seconds -= self.curves_trace()  # the curves' function was traced at this run
            self.curves_traced = True
        if (kind, _key(kind, settings)) not in self.traced:
            # Traced at this run: the seconds hold the traces too. Less their estimate, the
            # rest is the compute, within FIRST_RATIO (the traces' estimate can miss).
            traces = self.seconds(plan, kind, settings, deletion_steps)[1]
            self.traced.add((kind, _key(kind, settings)))
            spent = (seconds - traces) / (compute * self.forward)
            ratio = float(np.clip(spent, 1.0 / FIRST_RATIO, FIRST_RATIO))
        else:
            self.measured.add(kind)
            ratio = float(np.clip(seconds / (compute * self.forward), 0.05, 20.0))
        self.ratio[kind] = ratio


def _has_curves(plan, kind, deletion_steps):
    """True for a view with deletion curves (a metric) at ``deletion_steps`` (0: none at
    the step). They run through the model's logits function, traced once for any batch
    (``faithfulness``): another number of points or probes is no new trace."""
    return bool(views.get(kind).metric_name and plan.options.metrics and deletion_steps)


FORWARD_RUNS, FORWARD_SECONDS = 3, 1.0
"""The probes' forward pass is timed up to this many times while they take under this many
seconds, and the fastest is kept: one run of a small network's 10 ms pass varied by 1.6x
(MobileNetV3Small, 2 cores), and the step estimated from it with it."""

FIRST_RATIO = 4.0
"""How far a view's first run (its traces included) may move its compute estimate."""


def _key(kind, settings):
    """What of ``settings`` changes a compiled function's shapes (or which are traced):
    feature maps are computed for every probe whatever they write (``Settings.probes``)."""
    probes = None if views.get(kind).family.name == "feature_maps" else settings.probes
    return (settings.filters, probes, settings.layers)


def weights_fingerprint(model):
    """A cheap fingerprint of every weight of ``model`` (two sums per variable): equal
    fingerprints mean the views would compute the same results again."""
    import tensorflow as tf

    return tuple(
        (float(tf.reduce_sum(w.value)), float(tf.reduce_sum(tf.abs(w.value))))
        for w in model.weights
    )

"""How a logged step is fitted to its allowance: planned with the reduction ladder
(``rungs``), then kept near it while the step runs (``StepPlan``).

``Budgeter.plan`` estimates the due views (``costs``: compute and first traces) and takes
the rungs in order until the estimate fits ``PLANNED_SHARE`` of the allowance; the
``StepPlan`` it returns applies the reduced settings to each view's plan, cuts layers when
the step runs short of time, and says what was reduced, in facts and notes.

Example:
    >>> budgeter = Budgeter(Budget(), plan)
    >>> step_plan = budgeter.plan(plan, ["filter_patterns"], first=True)
    >>> step_plan.settings["filter_patterns"]
    Settings(filters=4, steps=None, probes=None)
"""

import time

from tb_cnnvis import views
from tb_cnnvis.budget.costs import (
    ASSUMED_BATCH,
    DELETION_LADDER,
    STEP_PER_FORWARD,
    Costs,
    Settings,
    TrainingClock,
    deletion_work,
    fewer_layers,
    layer_count,
    spread,
    weights_fingerprint,
    work,
)
from tb_cnnvis.budget.rungs import (
    DREAM_STEPS_FLOOR,
    FILTERS_FLOOR,
    LAYER_FAMILIES,
    PROBES_FLOOR,
    RUNGS,
    SCORE_CAM_FLOOR,
    STEPS_FLOOR,
    is_score_cam,
)

PLANNED_SHARE = 0.8
"""The share of a step's allowance the estimates are planned to: they leave out writing
(PNG encoding, files) and miss by a third on a network not seen (VGG16 at 96 px: 61 s
for an estimated 44 s, all of it deletion curves)."""


class StepPlan:
    """What ``Budgeter.plan`` decided for one logged step.

    Attributes:
        settings: ``{kind: Settings}`` of the due views.
        estimates: ``{kind: seconds}`` with those settings.
        allowance: the seconds the step may take.
        deletion_steps: the deletion curves' points, minus one (``deletion_for`` may
            bring back curves the plan left out, while the step runs).
    """

    def __init__(self, plan, settings, estimates, allowance, deletion_steps, seconds=None):
        self._plan, self.settings, self.estimates = plan, settings, estimates
        self.allowance, self.deletion_steps = allowance, deletion_steps
        self.deadline = time.perf_counter() + allowance
        self.cut = {}  # {kind: layers}: cut at this step only, when time ran short
        self.skipped = {}  # {kind: [paths]}: left out while the view ran, time spent
        self._estimate = seconds  # (kind, Settings, deletion steps) -> seconds, or None
        self._curves_decided = False

    def plan_for(self, plan, kind):
        """``plan`` with ``kind``'s reduced settings applied (fewer filters, steps, probes),
        and, when the views before it took longer than estimated, fewer layers at this step
        (``cut_layers``)."""
        self.cut_layers(kind)
        chosen = self.settings.get(kind)
        if chosen is None or not chosen.reduced():
            return plan
        options, family = plan.options, views.get(kind).family.name
        if chosen.filters and is_score_cam(kind):
            options = options._replace(score_cam_channels=chosen.filters)
        elif chosen.filters:
            options = options._replace(max_filters_per_layer=chosen.filters)
        if chosen.steps and family == "filter_patterns":
            options = options._replace(
                filter_options={**options.filter_options, "steps": chosen.steps}
            )
        if chosen.steps and family == "deepdream":
            options = options._replace(deepdream_steps=chosen.steps)
        probes, subject = plan.probes, plan.subject
        if chosen.probes and family == "feature_maps":
            options = options._replace(stored_probes=chosen.probes)
        elif chosen.probes:
            probes = _first_probes(probes, chosen.probes)
            subject = subject if subject is None else subject.first(chosen.probes)
        layers = {**plan.layers, kind: spread(plan.layers[kind], chosen.layers)}
        return plan._replace(options=options, probes=probes, layers=layers, subject=subject)

    def cut_layers(self, kind):
        """Fit ``kind`` into the time this step has left, keeping the later views' estimates
        free: the views that compile a function per layer lose layers at this step only,
        evenly spaced while that fits, else the shallowest layer alone (the cheapest to
        trace). Estimates miss (a first trace can take twice what was planned); this keeps
        a step near its allowance all the same."""
        if self._estimate is None or views.get(kind).family.name not in LAYER_FAMILIES:
            return
        left = self._limit(kind) - time.perf_counter()
        planned = self.settings[kind]
        total = len(self._plan.layers[kind])
        if layer_count(planned.layers, total) <= 1 or self._seconds(kind, planned) <= left:
            return
        for layers in fewer_layers(layer_count(planned.layers, total)):
            chosen = Settings(**{**vars(planned), "layers": layers})
            if self._seconds(kind, chosen) <= left:
                break
        self.cut[kind] = layer_count(chosen.layers, total)
        self.settings[kind] = chosen

    def _seconds(self, kind, chosen, deletion_steps=None):
        """Estimated seconds of ``kind`` with ``chosen`` (and the step's deletion curves)."""
        steps = self.deletion_steps if deletion_steps is None else deletion_steps
        return self._estimate(kind, chosen, steps)

    def deletion_for(self, kind):
        """The deletion curves' points, minus one, for ``kind`` (called as it starts).

        A step planned without curves gets their fewest points back, once, at its first
        view with a metric, when the views before took less than estimated and the step,
        with the curves' trace and work, still fits ``PLANNED_SHARE`` of it: the allowance
        before training rests on a step estimate that is low on purpose (a mid-sized
        network's step 0 would otherwise go without curves at a fifth of its allowance).
        """
        if self.deletion_steps or self._curves_decided or self._estimate is None:
            return self.deletion_steps
        if not views.get(kind).metric_name:
            return self.deletion_steps
        self._curves_decided = True
        rest = list(self.estimates)[list(self.estimates).index(kind) :]
        fewest = min(d for d in DELETION_LADDER if d)
        extra = sum(
            self._seconds(k, self.settings[k], fewest) - self._seconds(k, self.settings[k], 0)
            for k in rest
        )
        # The planner's own test, with the seconds spent so far for the views done.
        spent = self.allowance - (self.deadline - time.perf_counter())
        if spent + sum(self.estimates[k] for k in rest) + extra <= PLANNED_SHARE * self.allowance:
            self.deletion_steps = fewest
        return self.deletion_steps

    def within_time(self, kind, refs):
        """Yield ``refs`` (a view's layers, shallowest first) while the step has time for
        the next one, keeping the later views' estimates free; the first is always yielded.
        The layers left out are in ``skipped`` (the verbose line says them)."""
        if self._estimate is None or views.get(kind).family.name not in LAYER_FAMILIES:
            return refs  # one pass over every layer (feature maps) or a single layer
        return self._while_time_left(kind, refs)

    def _while_time_left(self, kind, refs):
        """The generator of ``within_time``."""
        limit = self._limit(kind)
        paths = [ref.path for ref in self._plan.layers[kind]]
        planned = self.settings[kind]
        for done, ref in enumerate(refs):
            one = Settings(**{**vars(planned), "layers": (paths.index(ref.path),)})
            if done and time.perf_counter() + self._seconds(kind, one) > limit:
                self.skipped[kind] = [later_ref.path for later_ref in refs[done:]]
                return
            yield ref

    def _limit(self, kind):
        """When ``kind`` must be done: the deadline less the estimates of the views after it."""
        later = list(self.estimates)[list(self.estimates).index(kind) + 1 :]
        return self.deadline - sum(self.estimates[k] for k in later)

    def facts(self, kind, ref):
        """``{"budget": {...}, "notes": [...]}`` for one layer of ``kind`` (empty if nothing
        was reduced): what was reduced, and a sentence saying it."""
        plan, chosen = self._plan, self.settings.get(kind, Settings())
        view = views.get(kind)
        reduced, parts = {}, []
        if chosen.filters:
            channels = int(ref.output_shape[-1])
            score_cam = is_score_cam(kind)
            shown = channels if score_cam else min(plan.options.max_filters_per_layer, channels)
            if chosen.filters < shown:
                reduced["channels" if score_cam else "filters"] = chosen.filters
                unit = "channels (most varying)" if score_cam else "filters"
                parts.append(f"{chosen.filters} of {channels} {unit}")
        if chosen.steps:
            reduced["steps"] = chosen.steps
            unit = "steps per octave" if view.family.name == "deepdream" else "steps"
            parts.append(f"{chosen.steps} {unit}")
        if chosen.probes:
            reduced["probes"] = chosen.probes
            parts.append(f"{chosen.probes} of {len(plan.probes.images)} probes")
        total = len(plan.layers.get(kind, []))
        if chosen.layers and layer_count(chosen.layers, total) < total:
            reduced["layers"] = layer_count(chosen.layers, total)
            when = " at this step" if kind in self.cut else ""
            parts.append(f"{reduced['layers']} of {total} layers{when}")
        if view.metric_name and self.deletion_steps < DELETION_LADDER[0]:
            reduced["deletion_steps"] = self.deletion_steps
            parts.append(_curves(self.deletion_steps))
        if not parts:
            return {}
        return {"budget": reduced, "notes": [", ".join(parts) + ": within the budget"]}

    def describe(self):
        """ "budget 12.0s: feature_maps ~0.3s, filter_patterns ~8.1s (4 filters), ..."."""
        parts = []
        for kind, seconds in self.estimates.items():
            chosen = self.settings.get(kind, Settings())
            said = [
                f"{value} {name}"
                for name, value in (("channels" if is_score_cam(kind) else "filters",
                                     chosen.filters), ("steps", chosen.steps),
                                    ("probes", chosen.probes),
                                    ("layers", chosen.layers and layer_count(chosen.layers, 1 << 30)))
                if value
            ]  # fmt: skip
            parts.append(f"{kind} ~{seconds:.1f}s" + (f" ({', '.join(said)})" if said else ""))
        if self.deletion_steps < DELETION_LADDER[0]:
            parts.append(_curves(self.deletion_steps))
        return f"; budget {self.allowance:.1f}s, estimates: {', '.join(parts)}"


def _curves(deletion_steps):
    """What a step's deletion curves were reduced to, in words."""
    if not deletion_steps:
        return "no deletion curves at this step"
    return f"deletion curves of {deletion_steps + 1} points"


def _first_probes(probes, count):
    """The first ``count`` probes (images, display, labels, masks, side inputs)."""
    rows = slice(0, int(count))
    cut = lambda value: None if value is None else value[rows]  # noqa: E731
    side = None if probes.side is None else {k: v[rows] for k, v in probes.side.items()}
    return probes._replace(
        images=probes.images[rows],
        display=probes.display[rows],
        labels=cut(probes.labels),
        masks=cut(probes.masks),
        side=side,
    )


class Budgeter:
    """The callback's budget: its clock, its cost estimates, each view's last settings.

    Args:
        budget: a ``Budget``.
        plan: the callback's ``plan.Plan`` (``set_model``): the costs are measured on it.
    """

    def __init__(self, budget, plan):
        self.budget, self.clock, self.costs = budget, TrainingClock(), Costs(plan)
        self._last, self._computed = {}, {}  # {kind: Settings it last ran with}
        self._seen = None  # the fingerprint not_yet_computed just took
        self.overhead = 0.0  # seconds of the last logged step spent outside the views

    def step_seconds(self):
        """The measured training step, or before any: ``STEP_PER_FORWARD`` forward passes
        of a batch of ``ASSUMED_BATCH`` probe images."""
        measured = self.clock.step_seconds
        return (
            measured
            if measured is not None
            else STEP_PER_FORWARD * self.costs.forward * ASSUMED_BATCH
        )

    def allowance(self, first):
        """Seconds the next logged step may take (``first``: step 0)."""
        return self.budget.allowance(first, self.step_seconds(), self.clock.epoch_seconds)

    def not_yet_computed(self, model, due):
        """The views among ``due`` not computed on ``model``'s current weights yet (a view
        is never computed twice on the same weights during ``fit``)."""
        seen = weights_fingerprint(model)
        left = [kind for kind in due if self._computed.get(kind) != seen]
        self._seen = seen if left else None  # plan() comes next, for these weights only
        return left

    def plan(self, plan, due, first, metrics=None):
        """A ``StepPlan`` for ``due`` that fits the allowance, reduced in the module's order.

        Each step starts from the user's settings and takes the rungs in order while the
        estimate (compute and the first traces of shapes not traced yet) is over the
        allowance; a rung that would cost more than it saves (a new shape's trace at an
        ordinary step) is not taken. So a reduction holds while the allowance needs it, and
        a view grows back when a later step's allowance (5 % of a long epoch) affords it.
        A view not measured yet at an ordinary step runs as it last ran: its estimate is a
        prior, and its shapes are traced. ``metrics`` (an ``EpochMetrics``) gets the step's
        deletion-curve setting.
        """
        seen, self._seen = self._seen or weights_fingerprint(plan.model), None
        self._computed.update(dict.fromkeys(due, seen))
        # What a logged step costs besides its views (planning, writing, flushing), as
        # measured on the last one: on a small network it is a share of the allowance.
        allowance = max(self.allowance(first) - (0.0 if first else self.overhead), 0.0)
        fixed = [k for k in due if not first and k in self._last and k not in self.costs.measured]
        settings = {
            kind: Settings(**vars(self._last[kind] if kind in fixed else Settings()))
            for kind in due
        }
        state = {"deletion": DELETION_LADDER[0]}

        def cost(kind):
            return self.costs.seconds(plan, kind, settings[kind], state["deletion"])

        def total():
            return sum(sum(cost(kind)) for kind in due)

        open_ = [kind for kind in due if kind not in fixed]
        for rung in RUNGS:
            while (before := total()) > PLANNED_SHARE * allowance:
                saved = {k: Settings(**vars(v)) for k, v in settings.items()}, dict(state)
                if not rung(plan, open_, settings, state, cost):
                    break
                if total() >= before:  # costs more than it saves: undo, next rung
                    settings.update(saved[0])
                    state.update(saved[1])
                    break
        self._last.update({kind: Settings(**vars(settings[kind])) for kind in due})
        estimates = {kind: sum(cost(kind)) for kind in due}
        if metrics is not None:
            metrics.deletion_steps = state["deletion"]
        return StepPlan(
            plan, settings, estimates, allowance, state["deletion"],
            lambda kind, chosen, steps: sum(self.costs.seconds(plan, kind, chosen, steps)),
        )  # fmt: skip

    def warnings(self, plan, kinds):
        """Sentences for the views among ``kinds`` that do not fit an ordinary logged step
        even fully reduced (said at ``set_model``, with their estimated cost)."""
        allowance = self.allowance(first=False)
        said = []
        for kind in kinds:
            least = Settings(
                SCORE_CAM_FLOOR if is_score_cam(kind) else FILTERS_FLOOR, None, PROBES_FLOOR
            )
            family = views.get(kind).family.name
            least.steps = {"filter_patterns": STEPS_FLOOR, "deepdream": DREAM_STEPS_FLOOR}.get(
                family
            )
            compute, _ = work(plan, kind, least, self.costs.shares, DELETION_LADDER[-1])
            seconds = compute * self.costs.forward
            if seconds > allowance:
                said.append(
                    f"the {kind} view is estimated at ~{seconds:.1f}s per logged step even "
                    f"reduced ({least.probes} probes, its fewest filters and steps), over the "
                    f"budget's ~{allowance:.1f}s ({self.budget.steps:g} training steps of "
                    f"~{self.step_seconds():.2f}s): it will make logged epochs slower. Log it "
                    "less often, or pass a larger Budget."
                )
        return said

    def observe(self, plan, step_plan, seconds, total=None):
        """Correct the estimates with what each view of ``step_plan`` really took, and the
        step's overhead with ``total`` (the whole logged step's seconds, when given)."""
        if total is not None:
            self.overhead = max(total - sum(seconds.values()), 0.0)
        deletion = {
            kind: deletion_work(plan, kind, chosen, step_plan.deletion_steps)
            for kind, chosen in step_plan.settings.items()
        }
        total = sum(deletion.values())
        for kind, chosen in step_plan.settings.items():
            if kind not in seconds:
                continue
            spent = seconds[kind]
            if total > 0:
                spent += seconds.get("metrics", 0.0) * deletion[kind] / total
            self.costs.observe(plan, kind, chosen, spent, step_plan.deletion_steps)

"""How a logged step is fitted to its allowance: the reduction ladder, kept reductions.

``Budgeter.plan`` estimates the due views (``costs``) and reduces them in the order the
package docstring states until their compute fits what the first traces leave of the
allowance; the ``StepPlan`` it returns applies the reduced settings to each view's plan
and says what was reduced, in facts and notes.

Example:
    >>> budgeter = Budgeter(Budget(), plan)
    >>> step_plan = budgeter.plan(plan, ["filter_patterns"], first=True)
    >>> step_plan.settings["filter_patterns"]
    Settings(filters=4, steps=None, probes=None)
"""

from tb_cnnvis import views
from tb_cnnvis.budget.costs import (
    ASSUMED_BATCH,
    DELETION_LADDER,
    GRADIENT_PASSES,
    Costs,
    Settings,
    TrainingClock,
    deletion_work,
    preset_steps,
    spread,
    weights_fingerprint,
    work,
)

COMPUTE_SHARE = 0.3
"""The least share of a step's allowance left to the views' compute when traces take more."""

FILTERS_FLOOR, STEPS_FLOOR, DREAM_STEPS_FLOOR, PROBES_FLOOR = 2, 8, 3, 2
"""The least filters per layer, filter-pattern steps, DeepDream steps and probes."""


class StepPlan:
    """What ``Budgeter.plan`` decided for one logged step.

    Attributes:
        settings: ``{kind: Settings}`` of the due views.
        estimates: ``{kind: seconds}`` with those settings.
        allowance: the seconds the step may take.
        deletion_steps: the deletion curves' points, minus one.
    """

    def __init__(self, plan, settings, estimates, allowance, deletion_steps):
        self._plan, self.settings, self.estimates = plan, settings, estimates
        self.allowance, self.deletion_steps = allowance, deletion_steps

    def plan_for(self, plan, kind):
        """``plan`` with ``kind``'s reduced settings applied (fewer filters, steps, probes)."""
        chosen = self.settings.get(kind)
        if chosen is None or not chosen.reduced():
            return plan
        options, family = plan.options, views.get(kind).family.name
        if chosen.filters:
            options = options._replace(max_filters_per_layer=chosen.filters)
        if chosen.steps and family == "filter_patterns":
            options = options._replace(
                filter_options={**options.filter_options, "steps": chosen.steps}
            )
        if chosen.steps and family == "deepdream":
            options = options._replace(deepdream_steps=chosen.steps)
        probes, subject = plan.probes, plan.subject
        if chosen.probes:
            probes = _first_probes(probes, chosen.probes)
            subject = subject if subject is None else subject.first(chosen.probes)
        layers = {**plan.layers, kind: spread(plan.layers[kind], chosen.layers)}
        return plan._replace(options=options, probes=probes, layers=layers, subject=subject)

    def facts(self, kind, ref):
        """``{"budget": {...}, "notes": [...]}`` for one layer of ``kind`` (empty if nothing
        was reduced): what was reduced, and a sentence saying it."""
        plan, chosen = self._plan, self.settings.get(kind, Settings())
        view = views.get(kind)
        reduced, parts = {}, []
        if chosen.filters:
            shown = min(plan.options.max_filters_per_layer, int(ref.output_shape[-1]))
            if chosen.filters < shown:
                reduced["filters"] = chosen.filters
                parts.append(f"{chosen.filters} of {int(ref.output_shape[-1])} filters")
        if chosen.steps:
            reduced["steps"] = chosen.steps
            unit = "steps per octave" if view.family.name == "deepdream" else "steps"
            parts.append(f"{chosen.steps} {unit}")
        if chosen.probes:
            reduced["probes"] = chosen.probes
            parts.append(f"{chosen.probes} of {len(plan.probes.images)} probes")
        if chosen.layers and chosen.layers < len(plan.layers.get(kind, [])):
            reduced["layers"] = chosen.layers
            parts.append(f"{chosen.layers} of {len(plan.layers[kind])} layers")
        if view.metric_name and self.deletion_steps < DELETION_LADDER[0]:
            reduced["deletion_steps"] = self.deletion_steps
            parts.append(f"deletion curves of {self.deletion_steps + 1} points")
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
                for name, value in (("filters", chosen.filters), ("steps", chosen.steps),
                                    ("probes", chosen.probes), ("layers", chosen.layers))
                if value
            ]  # fmt: skip
            parts.append(f"{kind} ~{seconds:.1f}s" + (f" ({', '.join(said)})" if said else ""))
        if self.deletion_steps < DELETION_LADDER[0]:
            parts.append(f"deletion curves of {self.deletion_steps + 1} points")
        return f"; budget {self.allowance:.1f}s, estimates: {', '.join(parts)}"


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


_PROBE_FAMILIES = ("cam", "attribution", "projection", "deepdream")
_LAYER_FAMILIES = ("filter_patterns", "deepdream", "projection")
LAYERS_FLOOR = 2
"""The fewest layers the last rung leaves a view."""


class Budgeter:
    """The callback's budget: its clock, its cost estimates and what it kept reduced.

    Args:
        budget: a ``Budget``.
        plan: the callback's ``plan.Plan`` (``set_model``): the costs are measured on it.
    """

    def __init__(self, budget, plan):
        self.budget, self.clock, self.costs = budget, TrainingClock(), Costs(plan)
        self._kept, self._deletion, self._computed = {}, DELETION_LADDER[0], {}

    def step_seconds(self):
        """The measured training step, or before any: ``3 x`` a forward of a batch of
        ``ASSUMED_BATCH`` probe images."""
        measured = self.clock.step_seconds
        return (
            measured
            if measured is not None
            else GRADIENT_PASSES * self.costs.forward * ASSUMED_BATCH
        )

    def allowance(self, first):
        """Seconds the next logged step may take (``first``: step 0)."""
        return self.budget.allowance(first, self.step_seconds(), self.clock.epoch_seconds)

    def not_yet_computed(self, model, due):
        """The views among ``due`` not computed on ``model``'s current weights yet (a view
        is never computed twice on the same weights during ``fit``)."""
        seen = weights_fingerprint(model)
        return [kind for kind in due if self._computed.get(kind) != seen]

    def plan(self, plan, due, first, metrics=None):
        """A ``StepPlan`` for ``due`` that fits the allowance, reduced in the module's order.

        The first traces cannot be reduced: the views' compute gets what they leave of the
        allowance (at least ``COMPUTE_SHARE`` of it). Reductions are kept for later steps,
        never undone (each change of shapes would cost new traces). ``metrics`` (an
        ``EpochMetrics``) gets the step's deletion-curve setting.
        """
        self._computed.update(dict.fromkeys(due, weights_fingerprint(plan.model)))
        allowance = self.allowance(first)
        settings = {kind: Settings(**vars(self._kept.get(kind, Settings()))) for kind in due}
        state = {"deletion": self._deletion}

        def cost(kind):
            return self.costs.seconds(plan, kind, settings[kind], state["deletion"])

        # Views not measured yet at an ordinary step keep their settings once: their
        # estimate is a prior, and running them as at step 0 needs no new trace.
        open_ = [k for k in due if first or k in self.costs.measured]
        traces = sum(cost(kind)[1] for kind in due)
        spare = max(allowance - traces, COMPUTE_SHARE * allowance)
        for rung in (_fewer_filters, _fewer_steps, _fewer_probes, _cheaper_metrics):
            while sum(cost(k)[0] for k in due) > spare and rung(plan, open_, settings, state, cost):
                pass
        while sum(sum(cost(k)) for k in due) > allowance and _fewer_layers(
            plan, open_, settings, state, cost
        ):
            pass
        self._kept.update(settings)
        self._deletion = state["deletion"]
        estimates = {kind: sum(cost(kind)) for kind in due}
        if metrics is not None:
            metrics.deletion_steps = state["deletion"]
        return StepPlan(plan, settings, estimates, allowance, state["deletion"])

    def warnings(self, plan, kinds):
        """Sentences for the views among ``kinds`` that do not fit an ordinary logged step
        even fully reduced (said at ``set_model``, with their estimated cost)."""
        allowance = self.allowance(first=False)
        said = []
        for kind in kinds:
            least = Settings(FILTERS_FLOOR, None, PROBES_FLOOR)
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

    def observe(self, plan, step_plan, seconds):
        """Correct the estimates with what each view of ``step_plan`` really took."""
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


def _fewer_filters(plan, due, settings, state, costs):
    """Halve the filters of the filter views (down to ``FILTERS_FLOOR``); False if none can."""
    changed = False
    for kind in due:
        if views.get(kind).family.name in ("filter_patterns", "top_examples"):
            now = settings[kind].filters or plan.options.max_filters_per_layer
            if now > FILTERS_FLOOR:
                settings[kind].filters, changed = max(FILTERS_FLOOR, now // 2), True
    return changed


def _fewer_steps(plan, due, settings, state, costs):
    """Halve the optimization steps of filter patterns and DeepDream; False if none can."""
    changed = False
    for kind in due:
        family = views.get(kind).family.name
        if family == "filter_patterns":
            options = plan.options.filter_options
            now = settings[kind].steps or options["steps"] or preset_steps(options["preset"])
            floor = STEPS_FLOOR
        elif family == "deepdream":
            now, floor = settings[kind].steps or plan.options.deepdream_steps, DREAM_STEPS_FLOOR
        else:
            continue
        if now > floor:
            settings[kind].steps, changed = max(floor, now // 2), True
    return changed


def _fewer_probes(plan, due, settings, state, costs):
    """Halve the probes of the costliest view that has more than ``PROBES_FLOOR``."""
    count = len(plan.probes.images)
    open_ = [
        kind
        for kind in due
        if views.get(kind).family.name in _PROBE_FAMILIES
        and (settings[kind].probes or count) > PROBES_FLOOR
    ]
    if not open_:
        return False
    costliest = max(open_, key=lambda kind: costs(kind)[0])
    settings[costliest].probes = max(PROBES_FLOOR, (settings[costliest].probes or count) // 2)
    return True


def _fewer_layers(plan, due, settings, state, costs):
    """Halve the layers of the costliest view that compiles a function per layer (filter
    patterns, DeepDream, projections), down to ``LAYERS_FLOOR``, evenly spaced."""
    open_ = [
        kind
        for kind in due
        if views.get(kind).family.name in _LAYER_FAMILIES
        and (settings[kind].layers or len(plan.layers[kind])) > LAYERS_FLOOR
    ]
    if not open_:
        return False
    costliest = max(open_, key=lambda kind: sum(costs(kind)))
    now = settings[costliest].layers or len(plan.layers[costliest])
    settings[costliest].layers = max(LAYERS_FLOOR, now // 2)
    return True


def _cheaper_metrics(plan, due, settings, state, costs):
    """The next deletion-curve setting of ``DELETION_LADDER``; False at its end."""
    later = [d for d in DELETION_LADDER if d < state["deletion"]]
    if not later:
        return False
    state["deletion"] = later[0]
    return True

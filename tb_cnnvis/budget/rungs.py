"""The reduction ladder: each rung makes the due views cheaper by one notch, in the order
the package docstring states (``RUNGS``), down to its floor.

Each rung is ``rung(plan, due, settings, state, costs) -> bool``: it changes ``settings``
(``{kind: Settings}``) or ``state["deletion"]`` for the views among ``due`` and says
whether it could; ``costs(kind)`` gives ``(compute, traces)`` seconds at the current
settings (``Budgeter.plan`` undoes a rung that costs more than it saves).

Example:
    >>> _fewer_filters(plan, ["filter_patterns"], settings, state, costs)
    True
"""

from tb_cnnvis import views
from tb_cnnvis.budget.costs import DELETION_LADDER, fewer_layers, layer_count, preset_steps

FILTERS_FLOOR, STEPS_FLOOR, DREAM_STEPS_FLOOR, PROBES_FLOOR = 2, 8, 3, 2
"""The least filters per layer, filter-pattern steps, DeepDream steps and probes."""

SCORE_CAM_FLOOR = 32
"""The fewest channels Score-CAM keeps (those whose activations vary most: tf-keras-vis's
"Faster Score-CAM"); fewer leave most of an object unmasked by any channel."""

PROBE_FAMILIES = ("cam", "attribution", "projection", "deepdream", "feature_maps")
"""The views whose probes a rung halves (feature maps: the probes written; every probe is
still computed, for the dead-filter and sparsity metrics and the compiled shape)."""
LAYER_FAMILIES = ("filter_patterns", "deepdream", "projection")


def _fewer_filters(plan, due, settings, state, costs):
    """Halve the filters of the filter views (down to ``FILTERS_FLOOR``) and the channels
    Score-CAM masks the input with (its most varying ones, down to ``SCORE_CAM_FLOOR``);
    False if none can."""
    changed = False
    for kind in due:
        if views.get(kind).family.name in ("filter_patterns", "top_examples"):
            now, floor = settings[kind].filters or plan.options.max_filters_per_layer, FILTERS_FLOOR
        elif is_score_cam(kind):
            widest = max((int(ref.output_shape[-1]) for ref in plan.layers[kind]), default=0)
            now, floor = settings[kind].filters or widest, SCORE_CAM_FLOOR
        else:
            continue
        if now > floor:
            settings[kind].filters, changed = max(floor, now // 2), True
    return changed


def is_score_cam(kind):
    """True for Score-CAM, whose cost is a forward pass per channel."""
    return views.get(kind).params.get("method") == "scorecam"


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
        if views.get(kind).family.name in PROBE_FAMILIES
        and (settings[kind].probes or count) > PROBES_FLOOR
    ]
    if not open_:
        return False
    costliest = max(open_, key=lambda kind: costs(kind)[0])
    settings[costliest].probes = max(PROBES_FLOOR, (settings[costliest].probes or count) // 2)
    return True


def _fewer_layers(plan, due, settings, state, costs):
    """Halve the layers of the costliest view that compiles a function per layer (filter
    patterns, DeepDream, projections), evenly spaced down to 2, then its shallowest layer
    alone (the cheapest to trace: ``costs.fewer_layers``)."""
    open_ = [
        kind
        for kind in due
        if views.get(kind).family.name in LAYER_FAMILIES
        and layer_count(settings[kind].layers, len(plan.layers[kind])) > 1
    ]
    if not open_:
        return False
    costliest = max(open_, key=lambda kind: sum(costs(kind)))
    now = layer_count(settings[costliest].layers, len(plan.layers[costliest]))
    settings[costliest].layers = fewer_layers(now)[0]
    return True


def _cheaper_metrics(plan, due, settings, state, costs):
    """The deletion curves' next number of points in ``DELETION_LADDER`` (17, 9, 5);
    False at the fewest."""
    later = [d for d in DELETION_LADDER if 0 < d < state["deletion"]]
    if not later:
        return False
    state["deletion"] = later[0]
    return True


def _no_curves(plan, due, settings, state, costs):
    """No deletion curves at this step (``DELETION_LADDER``'s last, 0): the last rung,
    for a step whose fewest settings do not fit with the curves' compiled forward (a trace
    of the whole model, as on a small network's step 0); False if none already."""
    if not state["deletion"]:
        return False
    state["deletion"] = 0
    return True


RUNGS = (_fewer_filters, _fewer_steps, _fewer_probes, _cheaper_metrics, _fewer_layers, _no_curves)
"""The reductions, in the order the package docstring states."""

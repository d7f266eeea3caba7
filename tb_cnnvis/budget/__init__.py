"""The cost budget: what each logged step may cost, in the user's own training steps.

The callback times the user's training step (``on_train_batch_end``) and each epoch's
training time (``TrainingClock``). Before each logged step, ``Budgeter.plan`` estimates
what every due view will cost and, starting from the user's own settings, while the sum
does not fit 80 % of the step's allowance (``planner.PLANNED_SHARE``: the estimates leave
out writing and can miss), reduces the views in this order, one rung at a time:

1. fewer filters (filter patterns, top examples): halved, down to 2 per layer; Score-CAM's
   channels (its most varying ones), halved down to 32;
2. fewer optimization steps (filter patterns: down to 8; DeepDream: down to 3 per octave);
3. fewer probes for the costliest views (class maps, attributions, projections,
   DeepDream; feature maps write fewer but compute every probe), halved down to 2,
   costliest view first;
4. cheaper metric settings (the deletion curves: 17 points, then 9, then 5);
5. fewer layers for the views that compile a function per layer (filter patterns,
   DeepDream, projections), evenly spaced down to 2, then the shallowest alone (the
   cheapest to trace);
6. no deletion curves at this step (their compiled forward is a trace of the whole model:
   a small network's step 0 cannot afford it); they come back at the first step that does.

A rung that would cost more than it saves is not taken: at an ordinary step a new batch
shape means a new trace, so a view keeps the shapes it was traced with until a step's
allowance affords more (then it grows back). While the step runs, a view that compiles a
function per layer and finds less time left than estimated (the views before it took
longer) keeps fewer layers at that step only, evenly spaced, or its shallowest layer alone
(``StepPlan.cut_layers``): estimates miss, the allowance holds all the same.

Allowances (``Budget``): step 0 (the untrained network, with every first trace) within
``first_steps`` training steps; an ordinary logged step within ``steps`` training steps
or ``fraction`` of the epoch's training time, whichever is larger; and, when given, never
less than ``min_seconds`` (none by default: the allowances are the user's own training
steps on any network; a floor keeps a tiny network's views fuller at more than that).
Before the first training step the step time is estimated from a timed forward pass of
the probes (``costs.STEP_PER_FORWARD`` forwards, at Keras's default batch of 32 images:
the low end of what the zoo measured, so step 0 holds on any network; each pass timed
up to 3 times, the fastest kept).

Estimates (``costs``): each view's compute in forward passes of one probe image through
the whole model, from each layer's share of the model's multiply-adds up to it
(``prefix_shares``), times the seconds one such pass took; its first traces, per shape
not traced yet, in traces of the whole model's forward pass (timed at ``set_model``)
times each layer's share of the model's layers (``prefix_layer_shares``: tracing follows
the ops built, not their work), with factors per family measured on three networks
(``costs.FILTER_TRACES`` ...). Once a view has run, its measured seconds correct its next
estimate (``Costs``). Every reduction is in the step's facts (``budget``) and ``notes``,
and the first verbose line gives each view's estimate.

Example:
    >>> cb = CnnVisCallback("logs", x_val[:8], y_val[:8], budget=Budget(first_steps=60))
    >>> cb = CnnVisCallback("logs", x_val[:8], y_val[:8], budget=None)   # no budget
"""

from dataclasses import dataclass

from tb_cnnvis.budget.costs import (
    ASSUMED_BATCH,
    DELETION_LADDER,
    Costs,
    Settings,
    Shares,
    TrainingClock,
    prefix_layer_shares,
    prefix_shares,
    weights_fingerprint,
    work,
)
from tb_cnnvis.budget.planner import Budgeter, StepPlan

__all__ = [
    "ASSUMED_BATCH",
    "DEFAULT_BUDGET",
    "DELETION_LADDER",
    "Budget",
    "Budgeter",
    "Costs",
    "Settings",
    "Shares",
    "StepPlan",
    "TrainingClock",
    "check_budget",
    "prefix_layer_shares",
    "prefix_shares",
    "weights_fingerprint",
    "work",
]


@dataclass(frozen=True)
class Budget:
    """What a logged step may cost, in training steps of the user's model.

    Attributes:
        first_steps: step 0 (first traces included) within this many training steps.
        steps: an ordinary logged step within this many training steps ...
        fraction: ... or this fraction of the epoch's training time, whichever is larger.
        min_seconds: (step 0, ordinary step) allowances never below these seconds
            (none by default).

    Example:
        >>> Budget(first_steps=60, steps=5).allowance(first=True, step_seconds=0.5)
        30.0
        >>> Budget(min_seconds=(10, 1)).allowance(first=True, step_seconds=0.1)
        10.0
    """

    first_steps: float = 30.0
    steps: float = 3.0
    fraction: float = 0.05
    min_seconds: tuple = (0.0, 0.0)

    def allowance(self, first, step_seconds, epoch_seconds=None):
        """Seconds a logged step may take (``first``: step 0)."""
        if first:
            return max(self.first_steps * step_seconds, self.min_seconds[0])
        spare = self.fraction * epoch_seconds if epoch_seconds else 0.0
        return max(self.steps * step_seconds, spare, self.min_seconds[1])


def check_budget(budget):
    """``budget`` if it is a ``Budget`` or None (no budget); a ValueError otherwise."""
    if budget is None or isinstance(budget, Budget):
        return budget
    raise ValueError(f"budget must be a tb_cnnvis.budget.Budget or None; got {budget!r}.")


DEFAULT_BUDGET = Budget()
"""The budget of a callback that is given none."""

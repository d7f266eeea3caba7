"""The cost budget: what each logged step may cost, in the user's own training steps.

The callback times the user's training step (``on_train_batch_end``) and each epoch's
training time (``TrainingClock``). Before each logged step, ``Budgeter.plan`` estimates
what every due view will cost and, when the sum does not fit the step's allowance,
reduces the views in this order, one rung at a time, until it fits:

1. fewer filters (filter patterns, top examples): halved, down to 2 per layer;
2. fewer optimization steps (filter patterns: down to 8; DeepDream: down to 3 per octave);
3. fewer probes for the costliest views (class maps, attributions, projections,
   DeepDream), halved down to 2, costliest view first;
4. cheaper metric settings (the deletion curves: 16 points, then 8, then 4).

Allowances (``Budget``): step 0 (the untrained network, with every first trace) within
``first_steps`` training steps; an ordinary logged step within ``steps`` training steps
or ``fraction`` of the epoch's training time, whichever is larger; never less than
``min_seconds`` (a step of a few seconds is not worth reducing). Before the first
training step the step time is estimated from a timed forward pass of the probes
(``3 x`` a forward, at Keras's default batch of 32 images).

Estimates (``costs.work``): each view's work, in forward passes of one probe image through
the whole model, from each layer's share of the model's multiply-adds up to it
(``prefix_shares``), times the seconds one such pass took, plus a trace per compiled
function at the first step; once a view has run, its measured seconds correct its next
estimate (``Costs``). Reductions are kept from one logged step to the next (each change
of a batch shape costs a new trace); every reduction is in the step's facts (``budget``)
and ``notes``, and the first verbose line gives each view's estimate.

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
    TrainingClock,
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
    "StepPlan",
    "TrainingClock",
    "check_budget",
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
        min_seconds: (step 0, ordinary step) allowances never below these seconds.

    Example:
        >>> Budget(first_steps=60, steps=5).allowance(first=True, step_seconds=0.5)
        30.0
    """

    first_steps: float = 30.0
    steps: float = 3.0
    fraction: float = 0.05
    min_seconds: tuple = (30.0, 5.0)

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

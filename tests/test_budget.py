"""The cost budget: allowances in training steps, reductions in a stated order, said."""

import models
import numpy as np
import pytest

from tb_cnnvis import CnnVisCallback, budget
from tb_cnnvis.testing import read_run

RNG = np.random.default_rng(0)
X, Y = RNG.random((8, 16, 16, 3), dtype=np.float32), RNG.integers(0, 3, 8)
NOTHING = budget.Budget(first_steps=0, steps=0, fraction=0, min_seconds=(0.0, 0.0))


def test_allowances_are_training_steps_or_a_share_of_the_epoch_never_under_the_floor():
    rule = budget.Budget()
    assert rule.allowance(first=True, step_seconds=2.0) == 60.0
    assert rule.allowance(first=True, step_seconds=0.01) == 30.0  # the floor
    assert rule.allowance(first=False, step_seconds=3.0, epoch_seconds=100.0) == 9.0
    assert rule.allowance(first=False, step_seconds=1.0, epoch_seconds=200.0) == 10.0
    assert rule.allowance(first=False, step_seconds=0.01, epoch_seconds=1.0) == 5.0
    clock = budget.TrainingClock()
    clock.epoch_begin()
    assert clock.step_seconds is None
    for _ in range(3):
        clock.batch_end()
    assert clock.step_seconds is not None and len(clock.intervals) == 2


def test_prefix_shares_grow_with_depth_and_reach_one():
    shares = budget.prefix_shares(models.sequential())
    assert shares["conv1"] < shares["conv2"] <= shares["head"] == 1.0


def test_a_step_over_the_budget_is_reduced_in_order_and_every_reduction_is_said(logdir):
    views = ["filter_patterns", "grad_cam", "deconvnet"]
    cb = CnnVisCallback(
        logdir, X[:4], Y[:4], views=views, max_filters_per_layer=4, filter_steps=16,
        budget=NOTHING, verbose=1,
    )  # fmt: skip
    with pytest.warns(RuntimeWarning, match=r"estimated at ~[0-9.]+s per logged step"):
        cb.set_model(models.sequential())
    cb.log_step(0)
    cb.close()
    run = read_run(logdir)
    facts, pngs = run["filter_patterns/conv2"][0]
    assert facts["filters"] == [0, 1] and facts["budget"] == {"filters": 2, "steps": 8}
    assert facts["notes"] == ["2 of 6 filters, 8 steps: within the budget"]
    facts, pngs = run["grad_cam/conv2"][0]
    assert facts["budget"] == {"probes": 2, "deletion_steps": 4} and len(pngs) == 2
    assert facts["notes"] == ["2 of 4 probes, deletion curves of 5 points: within the budget"]
    assert len(facts["deletion_auc"]) == 2
    facts, pngs = run["deconvnet/conv1"][0]
    assert facts["budget"] == {"probes": 2} and len(pngs) == 2


def test_no_budget_reduces_nothing(logdir):
    cb = CnnVisCallback(logdir, X[:4], Y[:4], views=["grad_cam"], budget=None)
    cb.set_model(models.sequential())
    cb.log_step(0)
    cb.close()
    facts, pngs = read_run(logdir)["grad_cam/conv2"][0]
    assert "budget" not in facts and "notes" not in facts and len(pngs) == 4


def test_the_first_verbose_line_gives_each_views_estimate(logdir, capsys):
    cb = CnnVisCallback(logdir, X[:2], Y[:2], views=["feature_maps", "grad_cam"], verbose=1)
    cb.set_model(models.sequential())
    cb.log_step(0)
    cb.close()
    line = capsys.readouterr().out
    assert "; budget 30.0s, estimates: feature_maps ~" in line and "grad_cam ~" in line


def test_views_are_not_computed_again_on_the_same_weights(logdir):
    model = models.sequential()
    model.trainable = False  # fit changes no weight: step 1 would repeat step 0
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = CnnVisCallback(logdir, X[:2], Y[:2], views=["feature_maps", "grad_cam"])
    model.fit(X, Y, epochs=2, batch_size=4, callbacks=[cb], verbose=0)
    run = read_run(logdir)
    assert sorted(run["feature_maps/conv2"]) == sorted(run["grad_cam/conv2"]) == [0]

"""The cost budget: allowances in training steps, reductions in a stated order, said."""

import re

import models
import numpy as np
import pytest

from tb_cnnvis import CnnVisCallback, budget
from tb_cnnvis.testing import read_run

RNG = np.random.default_rng(0)
X, Y = RNG.random((8, 16, 16, 3), dtype=np.float32), RNG.integers(0, 3, 8)
pytestmark = pytest.mark.budget

NOTHING = budget.Budget(first_steps=0, steps=0, fraction=0, min_seconds=(0.0, 0.0))


def test_allowances_are_training_steps_or_a_share_of_the_epoch_never_under_a_floor_given():
    rule = budget.Budget()
    assert rule.allowance(first=True, step_seconds=2.0) == 60.0
    assert rule.allowance(first=True, step_seconds=0.1) == pytest.approx(3.0)  # no floor
    assert rule.allowance(first=False, step_seconds=3.0, epoch_seconds=100.0) == 9.0
    assert rule.allowance(first=False, step_seconds=1.0, epoch_seconds=200.0) == 10.0
    assert rule.allowance(first=False, step_seconds=0.01, epoch_seconds=1.0) == 0.05
    floored = budget.Budget(min_seconds=(10.0, 1.0))
    assert floored.allowance(first=True, step_seconds=0.1) == 10.0
    assert floored.allowance(first=False, step_seconds=0.01, epoch_seconds=1.0) == 1.0
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
    # No time at all: the views that compile a function per layer keep their shallowest
    # layer (the cheapest to trace), the last rung but one; then no deletion curves.
    assert "filter_patterns/conv2" not in run and "deconvnet/conv2" not in run
    facts, pngs = run["filter_patterns/conv1"][0]
    assert facts["filters"] == [0, 1]
    assert facts["budget"] == {"filters": 2, "steps": 8, "layers": 1}
    assert facts["notes"] == ["2 of 4 filters, 8 steps, 1 of 2 layers: within the budget"]
    facts, pngs = run["grad_cam/conv2"][0]
    assert facts["budget"] == {"probes": 2, "deletion_steps": 0} and len(pngs) == 2
    assert facts["notes"] == ["2 of 4 probes, no deletion curves at this step: within the budget"]
    assert facts["deletion_auc"] is None  # the last metric rung: its forward is not traced
    facts, pngs = run["deconvnet/conv1"][0]
    assert facts["budget"] == {"probes": 2, "layers": 1} and len(pngs) == 2


def test_layers_cut_for_time_are_cut_at_that_step_only():
    model = models.sequential()
    cb = CnnVisCallback("unused", X[:2], Y[:2], views=["filter_patterns", "feature_maps"])
    cb.set_model(model)
    plan = cb._plan
    budgeter = budget.Budgeter(budget.Budget(min_seconds=(30.0, 3.0)), plan)
    step_plan = budgeter.plan(plan, ["filter_patterns", "feature_maps"], first=True)
    assert (
        step_plan.plan_for(plan, "filter_patterns").layers["filter_patterns"]
        == (plan.layers["filter_patterns"])
    )  # 30 s are plenty for this model: nothing cut
    step_plan.deadline -= 1e6  # as if the views before had taken all the time
    cut = step_plan.plan_for(plan, "filter_patterns")
    assert [ref.path for ref in cut.layers["filter_patterns"]] == ["conv1"]
    assert step_plan.cut == {"filter_patterns": 1}
    later = budgeter.plan(plan, ["filter_patterns"], first=False)
    assert later.settings["filter_patterns"].layers is None  # not kept for later steps
    # Before a training batch was timed, a step is one forward pass of a batch of 32 (the
    # low end of the zoo's measurements); then the measured median.
    assert budgeter.step_seconds() == pytest.approx(32 * budgeter.costs.forward)
    budgeter.clock.intervals = [0.2, 0.4, 0.3]
    assert budgeter.step_seconds() == 0.3


def test_traces_are_estimated_by_layers_run_not_by_multiply_adds():
    shares = budget.prefix_layer_shares(models.sequential())
    assert shares == {
        "conv1": 0.2, "pool1": 0.4, "conv2": 0.6, "gap": 0.8, "head": 1.0
    }  # fmt: skip
    work = budget.prefix_shares(models.sequential())
    assert work["conv1"] > 0.5 > shares["conv1"]  # most multiply-adds are at full resolution


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
    planned = 30 * cb._budgeter.step_seconds()  # before training: estimated from a forward
    cb.log_step(0)
    cb.close()
    line = capsys.readouterr().out
    found = re.search(r"; budget ([0-9.]+)s, estimates: feature_maps ~[0-9.]+s, grad_cam ~", line)
    assert found and float(found.group(1)) == pytest.approx(planned, abs=0.051)


def test_views_are_not_computed_again_on_the_same_weights(logdir):
    model = models.sequential()
    model.trainable = False  # fit changes no weight: step 1 would repeat step 0
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = CnnVisCallback(logdir, X[:2], Y[:2], views=["feature_maps", "grad_cam"])
    model.fit(X, Y, epochs=2, batch_size=4, callbacks=[cb], verbose=0)
    run = read_run(logdir)
    assert sorted(run["feature_maps/conv2"]) == sorted(run["grad_cam/conv2"]) == [0]


def test_score_cam_keeps_its_most_varying_channels_when_over_the_budget(logdir):
    import keras

    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="wide"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    cb = CnnVisCallback(logdir, X[:4], Y[:4], views=["score_cam"], budget=NOTHING)
    with pytest.warns(RuntimeWarning, match="score_cam view is estimated"):
        cb.set_model(model)
    step_plan = cb._budgeter.plan(cb._plan, ["score_cam"], first=True)
    assert step_plan.plan_for(cb._plan, "score_cam").options.score_cam_channels == 32
    cb.log_step(0)
    cb.close()
    facts, pngs = read_run(logdir)["score_cam/wide"][0]
    assert facts["budget"] == {"channels": 32, "probes": 2, "deletion_steps": 0}
    assert facts["notes"] == [
        "32 of 64 channels (most varying), 2 of 4 probes, no deletion curves at this step: "
        "within the budget"
    ]
    assert len(pngs) == 2


def test_reductions_hold_while_needed_and_grow_back_when_the_allowance_affords_them():
    cb = CnnVisCallback("unused", X[:4], Y[:4], views=["filter_patterns", "grad_cam"])
    cb.set_model(models.sequential())
    plan, due = cb._plan, ["filter_patterns", "grad_cam"]
    budgeter = budget.Budgeter(NOTHING, plan)
    tight = budgeter.plan(plan, due, first=True)
    assert tight.settings["filter_patterns"].filters == 2
    assert tight.settings["grad_cam"].probes == 2
    budgeter.costs.observe(plan, "grad_cam", tight.settings["grad_cam"], 0.5, 4)
    budgeter.costs.observe(plan, "grad_cam", tight.settings["grad_cam"], 0.5, 4)  # measured
    # An ordinary step with no time either: back down to the 2 probes already traced.
    again = budgeter.plan(plan, due, first=False)
    assert again.settings["grad_cam"].probes == 2
    budgeter.budget = budget.Budget(min_seconds=(1e6, 1e6))  # a long epoch's 5 %
    roomy = budgeter.plan(plan, due, first=False)
    assert not roomy.settings["grad_cam"].reduced()
    assert roomy.settings["filter_patterns"].filters == 2  # not measured yet: as it last ran


def test_a_view_stops_before_a_layer_the_step_has_no_time_left_for():
    from tb_cnnvis.progress import step_line

    cb = CnnVisCallback("unused", X[:2], Y[:2], views=["deconvnet", "grad_cam"])
    cb.set_model(models.sequential())
    plan = cb._plan
    step_plan = budget.Budgeter(budget.Budget(), plan).plan(plan, ["deconvnet"], first=True)
    refs = plan.layers["deconvnet"]
    assert [ref.path for ref in step_plan.within_time("deconvnet", refs)] == ["conv1", "conv2"]
    step_plan.deadline -= 1e6
    assert [ref.path for ref in step_plan.within_time("deconvnet", refs)] == ["conv1"]
    assert step_plan.skipped == {"deconvnet": ["conv2"]}
    assert step_line(0, {"deconvnet": 0.5}, step_plan) == (
        "cnnvis step 0: deconvnet 0.50s (total 0.50s); out of time at this step, left out: "
        "deconvnet conv2"
    )


def test_a_model_that_takes_any_size_is_measured_at_the_probes_size():
    import keras

    x = keras.Input((None, None, 3))
    y = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    model = keras.Model(x, keras.layers.Dense(10, name="head")(y))
    shares = budget.prefix_shares(model, image_size=(32, 32))
    conv = 32 * 32 * (3 * 3 * 3 * 8) + 32 * 32 * 8  # multiply-adds and outputs
    head = 8 * 10 + 10
    assert shares["conv"] == pytest.approx(conv / (conv + 8 + head))
    assert budget.prefix_shares(model)["conv"] < 0.1  # unknown shapes: the head looked dearest


def test_a_first_run_corrects_the_compute_estimate_by_what_its_traces_leave():
    cb = CnnVisCallback("unused", X[:2], Y[:2], views=["deconvnet"])
    cb.set_model(models.sequential())
    plan, chosen = cb._plan, budget.Settings()
    costs = budget.Costs(plan)
    compute, traces = costs.seconds(plan, "deconvnet", chosen)
    costs.observe(plan, "deconvnet", chosen, traces + 3 * compute, 16)
    assert costs.ratio["deconvnet"] == pytest.approx(3.0)
    assert costs.seconds(plan, "deconvnet", chosen) == pytest.approx((3 * compute, 0.0))
    other = budget.Settings(probes=1)
    compute, traces = costs.seconds(plan, "deconvnet", other)  # at the ratio of 3
    costs.observe(plan, "deconvnet", other, traces + 100 * compute, 16)
    assert costs.ratio["deconvnet"] == pytest.approx(4.0)  # 300x is capped at FIRST_RATIO


def test_deletion_curves_are_charged_one_trace_for_the_model_whatever_their_points():
    # They run through the model's logits function, traced once for any batch: the first
    # curves pay that trace, other points or probes later pay none.
    cb = CnnVisCallback("unused", X[:2], Y[:2], views=["grad_cam"])
    cb.set_model(models.sequential())
    plan, chosen = cb._plan, budget.Settings()
    costs = budget.Costs(plan)
    work = {n: budget.work(plan, "grad_cam", chosen, costs.shares, n)[0] for n in (16, 8, 0)}
    trace = budget.costs.DELETION_TRACES * costs.trace
    first = costs.seconds(plan, "grad_cam", chosen, 16)[0]
    assert first == pytest.approx(work[16] * costs.forward + trace)
    # No curves at a step (the ladder's last rung): neither their trace nor their work.
    assert costs.seconds(plan, "grad_cam", chosen, 0)[0] == pytest.approx(work[0] * costs.forward)
    assert work[0] < work[8] < work[16]
    costs.observe(plan, "grad_cam", chosen, 1.0, 16)  # the first run: traced
    costs.observe(plan, "grad_cam", chosen, 1.0, 16)
    per_pass = costs.forward * costs.ratio["grad_cam"]
    assert costs.seconds(plan, "grad_cam", chosen, 16)[0] == pytest.approx(work[16] * per_pass)
    assert costs.seconds(plan, "grad_cam", chosen, 8)[0] == pytest.approx(work[8] * per_pass)


def test_feature_maps_write_fewer_probes_but_compute_and_measure_them_all(logdir):
    import tb_cnnvis as cv
    from tb_cnnvis import capture
    from tb_cnnvis.algorithms import drift

    model = models.sequential()
    cb = CnnVisCallback(logdir, X[:4], Y[:4], views=["feature_maps"], budget=NOTHING)
    cb.set_model(model)
    traced = capture.total_traces(model)
    # set_model's forward pass traced the view's own function: step 0 is charged no trace
    assert cb._budgeter.costs.seconds(cb._plan, "feature_maps", budget.Settings())[1] == 0
    cb.log_step(0)
    model.layers[0].kernel.assign(model.layers[0].kernel * 2.0)  # new weights: step 1 runs
    cb.log_step(1)
    cb.close()
    assert capture.total_traces(model) == traced  # one compiled shape: all the probes
    for step in (0, 1):
        facts, pngs = read_run(logdir)["feature_maps/conv1"][step]
        assert len(pngs) == 2 and facts["budget"] == {"probes": 2}
        assert facts["notes"] == ["2 of 4 probes: within the budget"]
    # The dead-filter metric saw every probe, not only the two written.
    maps = cv.feature_maps(model, X[:4], "conv1")
    assert facts["dead_filters"] == drift.dead_filters(maps).tolist()


def test_an_ordinary_step_plans_its_views_to_the_allowance_less_the_last_steps_overhead():
    cb = CnnVisCallback("unused", X[:2], Y[:2], views=["grad_cam"])
    cb.set_model(models.sequential())
    plan = cb._plan
    budgeter = budget.Budgeter(budget.Budget(min_seconds=(5.0, 5.0)), plan)
    first = budgeter.plan(plan, ["grad_cam"], first=True)
    # The step took 1.5 s of which its views 0.4 s: writing, planning, flushing 1.1 s.
    budgeter.observe(plan, first, {"grad_cam": 0.3, "metrics": 0.1}, total=1.5)
    assert budgeter.overhead == pytest.approx(1.1)
    assert budgeter.plan(plan, ["grad_cam"], first=False).allowance == pytest.approx(3.9)
    assert budgeter.plan(plan, ["grad_cam"], first=True).allowance == 5.0  # step 0: unknown


def test_deletion_curves_left_out_for_time_come_back_when_a_step_affords_their_trace():
    cb = CnnVisCallback("unused", X[:2], Y[:2], views=["grad_cam"])
    cb.set_model(models.sequential())
    plan = cb._plan
    budgeter = budget.Budgeter(NOTHING, plan)
    assert budgeter.plan(plan, ["grad_cam"], first=True).deletion_steps == 0
    assert budgeter.plan(plan, ["grad_cam"], first=False).deletion_steps == 0
    budgeter.budget = budget.Budget(min_seconds=(1e6, 1e6))  # a long epoch's 5 %
    assert budgeter.plan(plan, ["grad_cam"], first=False).deletion_steps == 16


def test_curves_the_plan_left_out_come_back_while_the_step_runs_when_time_is_left(
    logdir, monkeypatch
):
    due = ["feature_maps", "grad_cam"]
    cb = CnnVisCallback(logdir, X[:2], Y[:2], views=due, budget=NOTHING)
    cb.set_model(models.sequential())
    plan = cb._plan
    budgeter = budget.Budgeter(NOTHING, plan)
    late = budgeter.plan(plan, due, first=True)
    assert late.deletion_for("feature_maps") == 0  # no metric: nothing decided there
    assert late.deletion_for("grad_cam") == 0  # no time left: none
    early = budgeter.plan(plan, due, first=True)
    early.deadline += 1e6  # as if the views before had taken no time at all
    assert early.deletion_steps == 0 and early.deletion_for("grad_cam") == 4
    # Through the callback: planned without curves, drawn with 5 points, said so.
    planned = budget.Budgeter.plan

    def with_time_left(self, *args, **kwargs):
        step_plan = planned(self, *args, **kwargs)
        step_plan.deadline += 1e6
        return step_plan

    monkeypatch.setattr(budget.Budgeter, "plan", with_time_left)
    cb.log_step(0)
    cb.close()
    facts, _ = read_run(logdir)["grad_cam/conv2"][0]
    assert facts["budget"] == {"deletion_steps": 4} and len(facts["deletion_auc"]) == 2
    assert facts["notes"] == ["deletion curves of 5 points: within the budget"]


def test_no_deletion_curves_is_the_last_rung_after_the_shallowest_layer_alone():
    due = ["filter_patterns", "grad_cam"]
    cb = CnnVisCallback("unused", X[:2], Y[:2], views=due, max_filters_per_layer=2)
    cb.set_model(models.sequential())
    plan, fewest = cb._plan, {
        "filter_patterns": budget.Settings(steps=8, layers=(0,)),  # 2 filters: given
        "grad_cam": budget.Settings(),  # 2 probes: its floor already
    }  # fmt: skip
    budgeter = budget.Budgeter(NOTHING, plan)

    def planned(deletion_steps):  # seconds the fewest settings are estimated at
        costs = budgeter.costs
        return sum(sum(costs.seconds(plan, k, fewest[k], deletion_steps)) for k in due)

    assert planned(4) > planned(0) > 0
    for seconds, points in ((planned(4) * 1.01, 4), (planned(4) * 0.99, 0)):
        budgeter.budget = budget.Budget(first_steps=0, min_seconds=(seconds / 0.8, 0))
        step_plan = budgeter.plan(plan, due, first=True)
        assert step_plan.settings["filter_patterns"] == fewest["filter_patterns"]
        assert step_plan.deletion_steps == points

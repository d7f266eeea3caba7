"""One logged step: every due view computed on its layers and written, failures contained.

``log_views`` is what ``CnnVisCallback`` (and through it ``tb-cnnvis log``) runs at each
logged step: for each view, its family computes the layers (``Family.compute``), the
metrics observe each result (``EpochMetrics.observe``), and the family writes it. A layer
that fails is reported, never raised, so the other views are still logged and training
goes on.

Example:
    >>> seconds, failures = log_views(plan, ["grad_cam", "deconvnet"], step=3)
"""

import time
import warnings

from tb_cnnvis.views.registry import get


def log_views(plan, due, step, metrics=None, progress=None, step_plan=None):
    """Compute and write the views ``due`` at ``step`` (inside a default summary writer).

    Args:
        plan: the ``plan.Plan`` of the model (layers, tag contents, probes, options).
        due: the view kinds to log.
        step: the step.
        metrics: an ``EpochMetrics`` begun for this step, or None.
        progress: a ``progress.StepProgress`` told of each view and layer, or None.
        step_plan: a ``budget.StepPlan`` (each view's settings within the cost budget,
            and the facts and notes that say what it reduced), or None.

    Returns:
        ``(seconds, failures)``: seconds spent per view (not counting the metrics, which
        keep their own time) and a list of ``(view kind, layer path, exception)``.
    """
    seconds, failures = {}, []
    plan = with_byte_budget(plan, due)
    whole = plan
    for kind in due:
        view = get(kind)
        began = time.perf_counter()
        metric_seconds = metrics.seconds if metrics is not None else 0.0
        plan = whole if step_plan is None else step_plan.plan_for(whole, kind)
        if step_plan is not None and metrics is not None:
            metrics.deletion_steps = step_plan.deletion_for(kind)
        contents, refs = plan.contents[kind], plan.layers[kind]
        if progress is not None:
            progress.start(kind, len(refs))
        if step_plan is not None:  # lazily: the budget may stop before a costly layer
            refs = step_plan.within_time(kind, refs)
        computed = view.family.compute(plan, view, refs)
        for done, (ref, result, spent) in enumerate(computed, start=1):
            if isinstance(result, Exception):
                failures.append((kind, ref.path, result))
            else:
                try:
                    facts = {} if metrics is None else metrics.observe(view, ref, result, plan)
                    facts = with_notes(facts, getattr(result, "notes", None))
                    if step_plan is not None:
                        reduced = step_plan.facts(kind, ref)
                        notes = reduced.pop("notes", None)
                        facts = with_notes({**facts, **reduced}, notes)
                    view.family.write(contents[ref.path], result, step, spent, facts, plan.context)
                except Exception as error:  # one layer must not stop training
                    failures.append((kind, ref.path, error))
            if progress is not None:
                progress.advance(kind, done)
        if progress is not None:
            progress.finish(kind)
        if metrics is not None:
            metric_seconds = metrics.seconds - metric_seconds
        seconds[kind] = time.perf_counter() - began - metric_seconds
    return seconds, failures


def with_notes(facts, notes):
    """``facts`` with ``notes`` (sentences for the dashboard, see ``tb_cnnvis.summary``)
    added to its ``"notes"``, if there are any."""
    notes = [str(note) for note in notes or ()]
    if not notes:
        return facts
    return {**facts, "notes": [*facts.get("notes", []), *notes]}


def with_byte_budget(plan, due):
    """``plan`` with ``options.byte_budget``: what ``max_bytes_per_epoch`` leaves to the
    views that adapt (feature maps) once the other views due at this step are counted."""
    limit = plan.options.max_bytes_per_epoch
    if limit is None:
        return plan
    used = sum(
        get(kind).family.estimated_bytes(plan, get(kind), ref)
        for kind in due
        for ref in plan.layers[kind]
    )
    return plan._replace(options=plan.options._replace(byte_budget=max(0, limit - used)))


def last_class_layers(resolved):
    """``{view kind: its last layer's path}`` for the views whose metrics have a name."""
    return {
        kind: refs[-1].path
        for kind, refs in resolved.layers.items()
        if refs and get(kind).metric_name
    }


def warn_failures(failed, step):
    """One warning per ``(what, name, path, error)`` that failed at ``step`` (a view or a
    metric of a layer): training goes on."""
    for what, name, path, error in failed:
        warnings.warn(
            f"cnnvis: the {name} {what} of layer {path!r} failed at step {step} and "
            f"was not logged ({type(error).__name__}: {error}). Training goes on.",
            RuntimeWarning,
            stacklevel=3,
        )

"""The views the callback logs: how each one is computed and written, failures contained.

A *view* is a kind of tag (``metadata.LAYER_KINDS``) computed by the algorithms on the probe
images (``top_examples``: on the reference images) and written by ``tb_cnnvis.summary``.
This module holds the per-view plumbing so that ``tb_cnnvis.callback`` only orchestrates:
``compute_and_write`` runs one view on its layers (resolved by ``tb_cnnvis.plan``), reusing
one forward pass where the algorithms allow it, hands the arrays to an
``epoch_metrics.EpochMetrics`` for the metric facts, and reports failures instead of
raising them.

Example:
    >>> seconds, failures = compute_and_write("grad_cam", model, refs, probes, contents, options)
"""

import time

import numpy as np

from tb_cnnvis import metadata, summary

VIEWS = (
    metadata.FEATURE_MAPS,
    metadata.FILTER_PATTERNS,
    *metadata.CAM_KINDS,
    *metadata.PROJECTION_KINDS,
)
"""Every view the callback can log from the probe images (the names are the tag kinds)."""

REFERENCE_VIEWS = (metadata.TOP_EXAMPLES,)
"""Views computed on the reference images (``reference_images``), not on the probes."""

ALL_VIEWS = (*VIEWS, *REFERENCE_VIEWS)
"""Every view the callback can log."""

DEFAULT_VIEWS = (
    metadata.FEATURE_MAPS,
    metadata.FILTER_PATTERNS,
    metadata.GRAD_CAM,
    metadata.DECONVNET,
)
"""The views logged unless the callback is told otherwise."""

CAM_METHODS = {
    metadata.GRAD_CAM: "gradcam",
    metadata.GRADCAM_PLUS_PLUS: "gradcam++",
    metadata.SCORE_CAM: "scorecam",
}
PROJECTION_RULES = {
    metadata.DECONVNET: "deconvnet",
    metadata.GUIDED_BACKPROP: "guided",
    metadata.SALIENCY: "gradient",
}


def compute_and_write(view, model, refs, probes, contents, options, step=None, metrics=None):
    """Compute ``view`` for every layer in ``refs`` and write one tag step per layer.

    A failure is confined to its layer (or, for a shared forward pass, to the view): it is
    returned, not raised, so that the other views still get logged.

    Args:
        view: one of ``ALL_VIEWS``.
        model: the model.
        refs: the ``LayerRef``s to visualize.
        probes: a ``Probes``.
        contents: ``{layer path: tag content}`` for this view.
        options: an ``Options``.
        step: the step (default: the writer's default step).
        metrics: an ``EpochMetrics`` (begun for this step) to add metric facts, or None.

    Returns:
        ``(seconds, failures)``: the seconds spent (not counting the metrics, which keep
        their own time), and a list of ``(layer path, exception)``.
    """
    start = time.perf_counter()
    metric_seconds = metrics.seconds if metrics is not None else 0.0
    failures = []
    if view == metadata.FEATURE_MAPS:
        _feature_maps(model, refs, probes, contents, step, failures, metrics)
    else:
        write = _WRITERS[view]
        for ref in refs:
            began = time.perf_counter()
            try:
                write(view, model, ref, probes, contents[ref.path], options, step, began, metrics)
            except Exception as error:  # one layer must not stop training
                failures.append((ref.path, error))
    if metrics is not None:
        metric_seconds = metrics.seconds - metric_seconds
    return time.perf_counter() - start - metric_seconds, failures


def _feature_maps(model, refs, probes, contents, step, failures, metrics):
    """All layers' feature maps from one forward pass, then one tag per layer."""
    from tb_cnnvis.algorithms import feature_maps

    began = time.perf_counter()
    try:
        maps = feature_maps.layer_outputs(model, probes.images, [ref.path for ref in refs])
    except Exception as error:
        failures.extend((ref.path, error) for ref in refs)
        return
    shared = (time.perf_counter() - began) / max(len(refs), 1)
    for ref in refs:
        began = time.perf_counter()
        try:
            facts = {} if metrics is None else metrics.feature_maps(ref.path, maps[ref.path])
            summary.write_feature_maps(
                contents[ref.path],
                maps[ref.path],
                step,
                seconds=shared + time.perf_counter() - began,
                metrics=facts,
            )
        except Exception as error:
            failures.append((ref.path, error))


def _filter_patterns(view, model, ref, probes, tag_content, options, step, began, metrics):
    """Synthesize the first ``max_filters_per_layer`` filters' patterns with a fixed seed."""
    from tb_cnnvis.algorithms import filters
    from tb_cnnvis.input_range import to_display_rgb

    count = min(int(ref.output_shape[-1]), options.max_filters_per_layer)
    result = filters.filter_patterns(
        model,
        ref.path,
        filters=list(range(count)),
        input_range=options.input_range,
        **options.filter_options,
    )
    activations = np.asarray(result.activations, dtype=np.float64)
    dead = getattr(result, "dead", None)
    if dead is None:
        dead = np.asarray(result.filters)[activations <= 0]
    seconds = time.perf_counter() - began
    facts = (
        {} if metrics is None else metrics.filter_patterns(ref.path, result.filters, result.images)
    )
    summary.write_filter_patterns(
        tag_content,
        to_display_rgb(result.images, options.input_range),
        step,
        filters=result.filters,
        activations=activations,
        start_activations=getattr(result, "start_activations", None),
        dead=np.asarray(dead).reshape(-1),
        seconds=seconds,
        metrics=facts,
    )


def _cam(view, model, ref, probes, tag_content, options, step, began, metrics):
    """Class activation maps of the explained class (the label, or the prediction)."""
    from tb_cnnvis.algorithms import cam

    use_labels = options.cam_target == "label" and probes.labels is not None
    details = cam.cam_details(
        model,
        probes.images,
        ref.path,
        class_index=probes.labels if use_labels else None,
        method=CAM_METHODS[view],
    )
    seconds = time.perf_counter() - began
    facts = {} if metrics is None else metrics.cam(view, ref.path, model, probes, details)
    summary.write_cam(
        tag_content,
        details.maps,
        step,
        class_index=details.class_index,
        predicted=details.predicted,
        probability=details.probability,
        target_probability=details.target_probability,
        cam_max=details.cam_max,
        labels=probes.labels,
        seconds=seconds,
        metrics=facts,
    )


def _projection(view, model, ref, probes, tag_content, options, step, began, metrics):
    """Each probe's strongest unit of the layer projected to the input with the view's rule."""
    from tb_cnnvis.algorithms import backprop

    details = backprop.projection_details(
        model, probes.images, ref.path, rule=PROJECTION_RULES[view]
    )
    projections = details.projections
    if getattr(options.input_range, "bgr", False):
        projections = projections[..., ::-1]  # show colour channels in RGB order
    summary.write_projection(
        tag_content,
        projections,
        step,
        channel=details.channel,
        activation=details.activation,
        position=details.position,
        seconds=time.perf_counter() - began,
    )


def _top_examples(view, model, ref, probes, tag_content, options, step, began, metrics):
    """The ``top_k`` reference images of the layer's first ``max_filters_per_layer`` filters."""
    from tb_cnnvis.algorithms import top_examples
    from tb_cnnvis.input_range import to_display_rgb

    count = min(int(ref.output_shape[-1]), options.max_filters_per_layer)
    top = top_examples.top_examples(
        model, options.reference_images, ref.path, k=options.top_k, filters=list(range(count))
    )
    grid = top.patches.shape[:2]
    flat = top.patches.reshape(-1, *top.patches.shape[2:])
    patches = to_display_rgb(flat, options.input_range).reshape(*grid, *flat.shape[1:3], -1)
    projections = top.projections
    if projections is not None and getattr(options.input_range, "bgr", False):
        projections = projections[..., ::-1]  # show colour channels in RGB order
    summary.write_top_examples(
        tag_content,
        patches,
        step,
        projections=projections,
        filters=top.filters,
        indices=top.indices,
        activations=top.activations,
        positions=top.positions,
        boxes=top.boxes,
        receptive_field=top.receptive_field,
        reference_count=top.count,
        seconds=time.perf_counter() - began,
    )


_WRITERS = {
    metadata.FILTER_PATTERNS: _filter_patterns,
    metadata.TOP_EXAMPLES: _top_examples,
    **dict.fromkeys(metadata.CAM_KINDS, _cam),
    **dict.fromkeys(metadata.PROJECTION_KINDS, _projection),
}

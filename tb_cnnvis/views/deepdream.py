"""DeepDream: each probe image with what a layer sees in it amplified.

Computed on the probe images (``algorithms.deepdream``; Mordvintsev et al. 2015), all of
them in one compiled batch per layer, with fixed shifts so that two epochs differ only
because the model did. Costly like the filter patterns, so it follows their frequency
(``filters_every_n_epochs``) and is not a default view. Default layers: the middle and
the last convolution.

Example:
    >>> write_deepdream(tag_content, dream.display(), 3, objective=dream.objective,
    ...                 start_objective=dream.start_objective, octaves=dream.octaves, steps=10)
"""

from tb_cnnvis import imaging, summary
from tb_cnnvis.views.registry import Family, View, register


class DeepDreams(Family):
    """One dreamt image per probe for a layer."""

    name = "deepdream"
    order = 25
    frequency = "filters_every_n_epochs"
    facts = ("objective", "start_objective", "octaves", "steps")

    def default_layers(self, model, four_d):
        """The middle and the last convolution (or 4-D layer)."""
        chosen = super().default_layers(model, four_d)
        picks = {len(chosen) // 2, len(chosen) - 1} if chosen else set()
        return [chosen[i] for i in sorted(picks)]

    def compute_layer(self, plan, view, ref):
        """A ``DeepDream`` of the probe images."""
        from tb_cnnvis.algorithms import deepdream

        return deepdream.deepdream(
            plan.model,
            plan.probes.inputs,
            ref.path,
            input_range=plan.options.input_range,
            image_input=plan.options.image_input,
            steps=plan.options.deepdream_steps,
        )

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write a ``DeepDream`` as display RGB."""
        write_deepdream(
            tag_content,
            result.display(),
            step,
            objective=result.objective,
            start_objective=result.start_objective,
            octaves=result.octaves,
            steps=result.steps,
            seconds=seconds,
            metrics=facts,
        )


FAMILY = DeepDreams()

register(
    View(
        "deepdream",
        FAMILY,
        "DeepDream",
        "each probe image with what the layer sees in it amplified (Mordvintsev et al., 2015).",
    )
)


def write_deepdream(
    tag_content,
    images,
    step=None,
    *,
    objective,
    start_objective,
    octaves,
    steps,
    seconds=0.0,
    metrics=None,
):
    """Write one layer's dreams: one RGB PNG per probe image, at input resolution.

    Args:
        tag_content: ``summary.content("deepdream", layer, ...)``.
        images: (N, H, W, 3 or 1) display images, floats in [0, 1] or uint8.
        step: the step.
        objective: (N,) the layer's mean squared positive activation for each dream.
        start_objective: (N,) the same for each probe image.
        octaves: the (h, w) sizes dreamt at, smallest first.
        steps: ascent steps per octave (at most: an ascent stops when it stops rising).
        seconds: time spent.
        metrics: more facts (``notes``: sentences the dashboard shows above the step).

    Returns:
        True if written.

    Example:
        >>> dream = cv.deepdream(model, probes, "conv3")
        >>> write_deepdream(tag_content, dream.display(), 3, objective=dream.objective,
        ...     start_objective=dream.start_objective, octaves=dream.octaves, steps=dream.steps)
    """
    summary.check_kind(tag_content, FAMILY.name)
    pixels = imaging.as_rgb(summary.pixels_of(images, "images", ndim=4))
    facts = {
        "objective": summary.float_list(objective),
        "start_objective": summary.float_list(start_objective),
        "octaves": [summary.int_list(size) for size in octaves],
        "steps": int(steps),
    }
    facts = summary.with_metrics(facts, metrics)
    return summary.write_single_tiles(tag_content, step, pixels, facts, seconds)

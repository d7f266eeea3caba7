"""The checks of ``CnnVisCallback``'s arguments that need no model (run by ``__init__``).

Everything that depends on the model is checked by ``plan.make_plan`` at ``set_model``.

Example:
    >>> check_views(["grad_cam", "grad_cam"])
    ('grad_cam',)
    >>> positive_int(0, "every_n_epochs")
    Traceback (most recent call last):
    ValueError: every_n_epochs must be an int >= 1; got 0.
"""

import numpy as np

from tb_cnnvis import views

CAM_TARGETS = ("label", "predicted")
"""What the class views explain: the true label, or the predicted class."""

DEFAULT_MAX_BYTES_PER_EPOCH = 8_000_000
"""Raw image bytes (8-bit pixels, before PNG compression) a logged epoch stores at most,
unless ``max_bytes_per_epoch`` says otherwise: MobileNetV2 at 224 px then stays under 8 MB
of event file per ordinary epoch. TensorBoard keeps what it serves in memory, about 4-5
bytes of server memory per byte of log."""


def default_views():
    """The views logged when none are named (``views.DEFAULT_VIEWS``)."""
    return views.DEFAULT_VIEWS


def reference_views():
    """The views computed on the reference images."""
    return views.REFERENCE_VIEWS


def check_views(chosen):
    """The views as a tuple, each one known."""
    chosen = (chosen,) if isinstance(chosen, str) else tuple(chosen)
    unknown = [view for view in chosen if view not in views.ALL_VIEWS]
    if unknown or not chosen:
        raise ValueError(f"Unknown or no views {unknown}; choose from {list(views.ALL_VIEWS)}.")
    return tuple(dict.fromkeys(chosen))


def check_layer_spec(layers, chosen):
    """A layer spec, or a dict whose keys are among the chosen views."""
    if isinstance(layers, dict):
        unknown = [view for view in layers if view not in chosen]
        if unknown:
            raise ValueError(
                f"layers has entries for views {unknown} that are not logged; views: {list(chosen)}."
            )
        at_input = [view for view in layers if views.get(view).family.at_input]
        if at_input:
            raise ValueError(f"layers names {at_input}, which explain the input and take no layer.")
        return dict(layers)
    return layers


def positive_int(value, name):
    """``value`` if it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    return int(value)


def chosen_views(named, reference_images):
    """``(views, explicit)``: the views named (checked), or when none are, the defaults
    (with top examples when reference images are given); a view that needs reference
    images without them is a ValueError."""
    if named is None:
        extra = reference_views() if reference_images is not None else ()
        named, explicit = default_views() + extra, False
    else:
        explicit = True
    chosen = check_views(named)
    needing = [view for view in chosen if view in reference_views()]
    if needing and reference_images is None:
        raise ValueError(
            f"The {needing[0]} view needs reference_images (e.g. a few hundred validation "
            "images); none were given."
        )
    return chosen, explicit


def filter_options(preset, steps, diversity):
    """The filter-pattern options of the callback (``preset``, ``steps``, ``diversity``)."""
    from tb_cnnvis.algorithms.fv_presets import check_preset

    return {
        "preset": check_preset(preset, "filter_preset"),
        "steps": steps,
        "diversity": positive_int(diversity, "filter_diversity"),
    }

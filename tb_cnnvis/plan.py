"""What the callback resolves once per model: the layers of each view, the probes, the tags.

``CnnVisCallback.__init__`` reads the probe images (``probes.read_probes``: arrays or a
``tf.data.Dataset``); ``set_model`` calls ``make_plan``, which checks everything that
depends on the model (layer names, image shape, labels, class names, input range) and
raises ``ValueError`` before the first epoch, so that nothing can fail for a configuration
reason during training.

Example:
    >>> images, labels = read_probes(dataset, None, limit=8)
    >>> plan = make_plan(model, ("feature_maps", "grad_cam"), None, images, labels, None, options)
    >>> [ref.path for ref in plan.layers["grad_cam"]]
    ['conv3']
"""

import time
import warnings
from typing import NamedTuple

import keras
import numpy as np

from tb_cnnvis import capture, metadata, summary, views
from tb_cnnvis.probes import Probes, check_masks
from tb_cnnvis.subject import Subject, bind_subject
from tb_cnnvis.views.registry import WriteContext


class Options(NamedTuple):
    """Per-view settings chosen by the user (see ``CnnVisCallback``)."""

    input_range: object
    max_filters_per_layer: int
    filter_options: dict
    cam_target: str
    reference_images: np.ndarray | None = None
    top_k: int = 9
    output: object = None
    image_input: object = None
    max_bytes_per_epoch: int | None = None
    byte_budget: int | None = None
    cam_classes: int | tuple = 1
    target: object = None
    explicit_views: bool = True
    deepdream_steps: int = 10
    metrics: bool = True
    score_cam_channels: int | None = None
    stored_probes: int | None = None  # feature maps: the first probes written (budget)

    @classmethod
    def of(cls, callback):
        """The ``Options`` of a ``CnnVisCallback`` (its attributes of the same names)."""
        return cls(**{name: getattr(callback, name) for name in _FROM_CALLBACK})


_FROM_CALLBACK = (
    "input_range",
    "max_filters_per_layer",
    "filter_options",
    "cam_target",
    "reference_images",
    "top_k",
    "output",
    "image_input",
    "max_bytes_per_epoch",
    "cam_classes",
    "target",
    "explicit_views",
    "metrics",
)


class Plan(NamedTuple):
    """Everything resolved once per model: layers and tag contents per view, the probes,
    for the views on default layers why those (``defaults``: ``{kind: reason}``), what the
    class views explain (``subject``), the views that run (``views``: those asked for, less
    the class views that cannot apply to the model's head); ``walked``: the layers of the
    forward pass ``make_plan`` ran, and ``first_forward`` its seconds (its trace included;
    the cost budget's first measure)."""

    model: object
    layers: dict
    contents: dict
    probe_content: dict
    probes: Probes
    options: Options
    defaults: dict = {}  # noqa: RUF012 (a NamedTuple default, never mutated)
    subject: Subject | None = None
    views: tuple = ()
    walked: tuple = ()
    first_forward: float = 0.0

    @property
    def context(self):
        """What the writers need besides a result (``views.WriteContext``)."""
        return WriteContext(labels=self.probes.labels, input_range=self.options.input_range)


def make_plan(model, chosen, layers, images, labels, class_names, options, masks=None):
    """Resolve views, layers and probes against ``model``; raise ValueError on any mismatch.

    Builds an unbuilt model from the probe images' shape, checks that the probes fit it,
    resolves each view's layers (``layers`` is a spec or a dict ``{view: spec}``), binds
    what the class views explain (``subject.bind_subject``: the head, labels, class names,
    ``cam_classes`` and target; class views that cannot apply are left out or refused),
    checks that masks and reference images fit
    the probes and the model, and runs one forward pass to make sure the model's graph can
    be walked. Views at the input (attributions) take no layer: a layer spec leaves them be.

    Args:
        model: the Keras model.
        chosen: the views to log.
        layers: None, a layer spec (see ``capture.select_layers``), or ``{view: spec}``.
        images: float32 probe images (N, H, W, C), or a dict or list of the model's inputs.
        labels: labels (N,) as read (ints; floats for a regression head) or None.
        class_names: list of names or None.
        options: an ``Options`` whose ``input_range`` is still the user's spec (its
            ``output`` names the output the class views explain, ``image_input`` the image
            input of a model with several 4-D inputs).
        masks: object masks (N, H, W) or (N, H, W, 1) for the pointing game, or None.

    Returns:
        A ``Plan``.
    """
    from tb_cnnvis.algorithms import feature_maps
    from tb_cnnvis.input_range import InputRange, to_display_rgb

    capture.require_tensorflow_backend()
    _build(model, images)
    images, side = capture.split_images(model, images, "probe_images", options.image_input)
    image_name = capture.input_spec(model, options.image_input).image
    subject, chosen = bind_subject(
        model, chosen, options, labels, class_names, len(images), options.explicit_views
    )
    labels = subject.labels
    input_range = InputRange.resolve(options.input_range, model)
    try:
        display = to_display_rgb(images, input_range)
    except ValueError as error:
        raise ValueError(f"Cannot show the probe images: {error}") from None
    options = options._replace(input_range=input_range)
    needing = [kind for kind in chosen if views.get(kind).family.source == "reference"]
    if needing:
        if options.reference_images is None:
            raise ValueError(f"The {needing[0]} view needs reference_images; none were given.")
        pixels, extra = capture.split_images(
            model, options.reference_images, "reference_images", options.image_input
        )
        reference = pixels if extra is None else {**extra, image_name: pixels}
        options = options._replace(reference_images=reference)
    probes = Probes(images, display, labels, check_masks(masks, images), side, image_name)
    common = {
        "input_shape": images.shape[1:],
        "probe_count": len(images),
        "class_names": class_names,
    }
    probe_content = summary.content(metadata.PROBES, **common)
    plan = Plan(model, {}, {}, probe_content, probes, options, subject=subject, views=chosen)
    resolved, defaults = {}, {}
    for kind in chosen:
        spec = layers.get(kind) if isinstance(layers, dict) else layers
        if views.get(kind).family.at_input:
            spec = None  # maps at the input: a layer spec is for the other views
        if spec is None:
            resolved[kind] = _runnable(plan, kind, default_layers(model, kind))
            if not options.explicit_views:
                resolved[kind] = _without_repeats(plan, kind, resolved[kind])
            if not views.get(kind).family.at_input:
                four_d = capture.select_layers(model, None)
                defaults[kind] = views.get(kind).family.default_reason(four_d)
        else:
            resolved[kind] = capture.select_layers(model, spec, need_4d=True)
            _check_runnable(plan, kind, resolved[kind])
    for kind, refs in resolved.items():
        for sentence in views.get(kind).family.advice(plan, views.get(kind), refs):
            warnings.warn(f"cnnvis: {sentence}", RuntimeWarning, stacklevel=3)
    contents = {
        kind: {
            ref.path: summary.content_for_layer(kind, ref, default_layer=kind in defaults, **common)
            for ref in refs
        }
        for kind, refs in resolved.items()
    }
    # One forward pass now shows that the graph can be walked; with the feature-map layers
    # in the view's order it also traces the function that view will use.
    walked = resolved.get("feature_maps") or [
        ref
        for kind, refs in resolved.items()
        if not views.get(kind).family.at_input
        for ref in refs
    ]
    walked = walked or capture.select_layers(model, None)[-1:]
    paths = list(dict.fromkeys(ref.path for ref in walked))
    began = time.perf_counter()
    feature_maps.layer_outputs(model, probes.inputs, paths, image_input=options.image_input)
    return plan._replace(
        views=tuple(kind for kind in chosen if resolved[kind]),
        layers=resolved,
        contents=contents,
        defaults=defaults,
        walked=tuple(paths),
        first_forward=time.perf_counter() - began,
    )


def _check_runnable(plan, kind, refs):
    """Raise ``ValueError`` if ``kind`` cannot run on one of the layers the user named."""
    view = views.get(kind)
    for ref in refs:
        try:
            view.family.check(plan, view, ref)
        except ValueError as error:
            raise ValueError(f"The {kind} view cannot run on layer {ref.path!r}: {error}") from None


def _without_repeats(plan, kind, refs):
    """The default layers of a default view where it shows something of its own: where it
    would only repeat another view (deconvnet without a ReLU on the path is the plain
    gradient), it is left out with a warning."""
    view = views.get(kind)
    repeated, why = view.family.repeats(plan, view, refs)
    if not repeated:
        return refs
    kept = [ref for ref in refs if ref.path not in set(repeated)]
    where = f"layer(s) {repeated}" if kept else "all its default layers"
    warnings.warn(
        f"cnnvis: the {kind} view is left out of {where}: {why}.",
        RuntimeWarning,
        stacklevel=4,
    )
    return kept


def _runnable(plan, kind, refs):
    """The default layers ``kind`` can run on; the others are left out with a warning."""
    view = views.get(kind)
    kept = []
    for ref in refs:
        try:
            view.family.check(plan, view, ref)
        except ValueError as error:
            warnings.warn(
                f"cnnvis: the {kind} view of layer {ref.path!r} failed its check at set_model "
                f"and is left out of the default layers: {error}",
                RuntimeWarning,
                stacklevel=4,
            )
            continue
        kept.append(ref)
    return kept


def _build(model, images):
    """Build ``model`` on the probe images (one call) if it is not built yet."""
    if getattr(model, "built", False) and model.layers:
        try:
            capture.input_spec(model)
            return
        except ValueError:
            pass  # built, but on no known or no single image input: one call tells more
    first = (
        {name: value[:1] for name, value in images.items()}
        if isinstance(images, dict)
        else [value[:1] for value in images]
        if isinstance(images, list)
        else images[:1]
    )
    try:
        if isinstance(model, keras.Sequential) and not isinstance(images, (dict, list)):
            model.build((None, *images.shape[1:]))
        else:
            model(first)
    except Exception as error:  # any failure means: cannot build from probes
        raise ValueError(
            f"Model {model.name!r} is not built and could not be built from the probe images "
            f"({type(error).__name__}: {error}). Build it first, e.g. with keras.Input((h, w, "
            "c)) as its first layer, or by calling it on a batch."
        ) from None


def default_layers(model, view):
    """The layers ``view`` uses when the user names none (its family's choice).

    Class activation maps use the last layer with a 4-D output (the usual Grad-CAM choice);
    every other view uses each convolution layer (``Conv2D``, ``SeparableConv2D``,
    ``DepthwiseConv2D``, ...), or every layer with a 4-D output if there is no convolution
    (see ``views.Family.default_layers``).

    Returns:
        A list of ``capture.LayerRef``.

    Raises:
        ValueError: if the model has no layer with a (h, w, channels) output.
    """
    four_d = capture.select_layers(model, None)
    if not four_d:
        raise ValueError(
            f"Model {model.name!r} has no layer with a (height, width, channels) output; "
            f"its layers are {[ref.path for ref in capture.layer_refs(model)]}."
        )
    return views.get(view).family.default_layers(model, four_d)

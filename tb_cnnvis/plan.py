"""What the callback resolves once per model: the layers of each view, the probes, the tags.

``CnnVisCallback.__init__`` reads the probe images (``read_probes``: arrays or a
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

import warnings
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tb_cnnvis import capture, metadata, summary, views
from tb_cnnvis.views import explained
from tb_cnnvis.views.registry import WriteContext


class Probes(NamedTuple):
    """The probe images in the model's scale, their display RGB (uint8), labels and object
    masks (N, H, W) bool for the pointing game (each None when not given)."""

    images: np.ndarray
    display: np.ndarray
    labels: np.ndarray | None
    masks: np.ndarray | None = None


class Options(NamedTuple):
    """Per-view settings chosen by the user (see ``CnnVisCallback``)."""

    input_range: object
    max_filters_per_layer: int
    filter_options: dict
    cam_target: str
    reference_images: np.ndarray | None = None
    top_k: int = 9
    cam_classes: int | tuple = 1


class Plan(NamedTuple):
    """Everything resolved once per model: layers and tag contents per view, the probes."""

    model: object
    layers: dict
    contents: dict
    probe_content: dict
    probes: Probes
    options: Options

    @property
    def context(self):
        """What the writers need besides a result (``views.WriteContext``)."""
        return WriteContext(labels=self.probes.labels, input_range=self.options.input_range)


def make_plan(model, chosen, layers, images, labels, class_names, options, masks=None):
    """Resolve views, layers and probes against ``model``; raise ValueError on any mismatch.

    Builds an unbuilt model from the probe images' shape, checks that the probes fit it,
    resolves each view's layers (``layers`` is a spec or a dict ``{view: spec}``), checks
    that the class activation maps have a classifier and the labels and class names fit its
    classes (and ``options.cam_classes`` the classes), that masks and reference images fit
    the probes and the model, and runs one forward pass to make sure the model's graph can
    be walked. Views at the input (attributions) take no layer: a layer spec leaves them be.

    Args:
        model: the Keras model.
        chosen: the views to log.
        layers: None, a layer spec (see ``capture.select_layers``), or ``{view: spec}``.
        images: float32 probe images (N, H, W, C).
        labels: int labels (N,) or None.
        class_names: list of names or None.
        options: an ``Options`` whose ``input_range`` is still the user's spec.
        masks: object masks (N, H, W) or (N, H, W, 1) for the pointing game, or None.

    Returns:
        A ``Plan``.
    """
    from tb_cnnvis.algorithms import feature_maps
    from tb_cnnvis.input_range import InputRange, to_display_rgb

    _build(model, images)
    images = capture.check_images(model, images, "probe_images")
    classes = _classes(model, chosen)
    if labels is not None and classes and not np.all((labels >= 0) & (labels < classes)):
        raise ValueError(f"probe_labels {labels.tolist()} must lie in [0, {classes}).")
    if class_names is not None and classes and len(class_names) != classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but the model has {classes} classes."
        )
    if classes and any(views.get(kind).family.needs_classifier for kind in chosen):
        explained.check_against_classes(options.cam_classes, classes)
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
        reference = capture.check_images(model, options.reference_images, "reference_images")
        options = options._replace(reference_images=reference)
    probes = Probes(images, display, labels, _check_masks(masks, images))
    common = {
        "input_shape": images.shape[1:],
        "probe_count": len(images),
        "class_names": class_names,
    }
    plan = Plan(model, {}, {}, summary.content(metadata.PROBES, **common), probes, options)
    resolved = {}
    for kind in chosen:
        spec = layers.get(kind) if isinstance(layers, dict) else layers
        if views.get(kind).family.at_input:
            spec = None  # maps at the input: a layer spec is for the other views
        if spec is None:
            resolved[kind] = _runnable(plan, kind, default_layers(model, kind))
        else:
            resolved[kind] = capture.select_layers(model, spec, need_4d=True)
            _check_runnable(plan, kind, resolved[kind])
    contents = {
        kind: {ref.path: summary.content_for_layer(kind, ref, **common) for ref in refs}
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
    feature_maps.layer_outputs(model, images, list(dict.fromkeys(ref.path for ref in walked)))
    return plan._replace(layers=resolved, contents=contents)


def _check_runnable(plan, kind, refs):
    """Raise ``ValueError`` if ``kind`` cannot run on one of the layers the user named."""
    view = views.get(kind)
    for ref in refs:
        try:
            view.family.check(plan, view, ref)
        except ValueError as error:
            raise ValueError(f"The {kind} view cannot run on layer {ref.path!r}: {error}") from None


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


def _check_masks(masks, images):
    """Boolean masks (N, H, W) that fit the probe images, or None."""
    if masks is None:
        return None
    array = np.asarray(masks.numpy() if isinstance(masks, tf.Tensor) else masks)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    expected = (len(images), *images.shape[1:3])
    if array.shape != expected:
        raise ValueError(
            f"probe_masks must have shape {expected} (one mask per probe image, at the input "
            f"size); got {np.shape(masks)}."
        )
    return array != 0


def _build(model, images):
    """Build ``model`` on the probe images' shape if it is not built yet."""
    if getattr(model, "built", False) and getattr(model, "inputs", None):
        return
    try:
        if isinstance(model, keras.Sequential):
            model.build((None, *images.shape[1:]))
        else:
            model(images[:1])
    except Exception as error:  # any failure means: cannot build from probes
        raise ValueError(
            f"Model {model.name!r} is not built and could not be built from probe images of "
            f"shape {images.shape[1:]} ({type(error).__name__}: {error}). Build it first, "
            "e.g. with keras.Input((h, w, c)) as its first layer."
        ) from None
    if not getattr(model, "inputs", None):
        raise ValueError(
            f"Model {model.name!r} has no symbolic inputs (a subclassed model?). tb-cnnvis "
            "needs a Sequential or functional model; wrap it: "
            "keras.Model(inputs, model(inputs))."
        )


def _classes(model, chosen):
    """The number of classes; raises if a CAM view is chosen and the model is no classifier."""
    from tb_cnnvis.algorithms import cam

    try:
        return cam.class_count(model)
    except ValueError:
        if any(views.get(view).family.needs_classifier for view in chosen):
            raise
        return None


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


def read_probes(images, labels, limit, what="probe_images", limit_name="max_probes"):
    """Probe images and labels from arrays or a ``tf.data.Dataset``.

    Args:
        images: an array (N, H, W, C) or (H, W, C), a tensor, or a dataset of images or
            ``(images, labels)``, batched or not.
        labels: N integer labels or one-hot rows, or None (a dataset's labels win).
        limit: the most images to keep (the first ones; a warning says when more were given).
        what: the argument's name, for messages (also ``"reference_images"``).
        limit_name: the name of the argument that sets ``limit``, for messages.

    Returns:
        ``(images float32 (N, H, W, C), labels int64 (N,) or None)``.

    Raises:
        ValueError: for images or labels of the wrong shape, or an empty dataset.
    """
    if isinstance(images, tf.data.Dataset):
        images, found = _take_from_dataset(images, limit, what)
        labels = found if found is not None else labels
    images = images.numpy() if isinstance(images, tf.Tensor) else images
    try:
        array = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be a numeric array (N, H, W, C): {error}") from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or len(array) == 0:
        raise ValueError(
            f"{what} must have shape (N, H, W, C) with N >= 1; got {np.shape(images)}."
        )
    if len(array) > limit:
        warnings.warn(
            f"cnnvis: using the first {limit} of {len(array)} {what} ({limit_name}={limit}).",
            stacklevel=3,
        )
        array = array[:limit]
        labels = None if labels is None else np.asarray(labels)[:limit]
    return array, _check_labels(labels, len(array))


def _take_from_dataset(dataset, limit, what="probe_images"):
    """The first ``limit`` images (and labels, if the elements carry them) of a dataset."""
    images, labels = [], []
    for element in dataset:
        if isinstance(element, dict):
            raise ValueError(
                f"{what} is a dataset of dicts ({sorted(element)}); map it to images or "
                "(images, labels) first, e.g. dataset.map(lambda d: (d['image'], d['label']))."
            )
        parts = element if isinstance(element, (tuple, list)) else (element,)
        x = np.asarray(parts[0])
        batch = x if x.ndim == 4 else x[None]
        images.append(batch)
        if len(parts) > 1:
            y = np.asarray(parts[1])
            labels.append(y if x.ndim == 4 else y[None])
        if sum(len(b) for b in images) >= limit:
            break
    if not images:
        raise ValueError(f"{what} is an empty dataset; it must yield at least one image.")
    found = np.concatenate(labels)[:limit] if len(labels) == len(images) else None
    return np.concatenate(images)[:limit], found


def _check_labels(labels, count):
    """Integer labels (N,) from ints or one-hot rows; None stays None."""
    if labels is None:
        return None
    labels = np.asarray(labels.numpy() if isinstance(labels, tf.Tensor) else labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1) if labels.ndim == 2 else labels
    if labels.shape != (count,) or not np.all(np.mod(labels, 1) == 0):
        raise ValueError(
            f"probe_labels must be {count} integer labels or one-hot rows (one per probe "
            f"image); got shape {np.shape(labels)}."
        )
    return labels.astype(np.int64)

"""The registry of views: every kind of tag the callback can log, described in one place.

A *view* is one kind of tag (``"grad_cam"``, ``"deconvnet"``, ...). Views come in
*families* that share how they are computed, stored and drawn (``"cam"``: every class
activation map; ``"projection"``: every backprop rule). Each family module of this
package registers its views with ``register``; everything else (the callback, the CLI,
the plugin and, through the plugin's ``/tags``, the dashboard) asks the registry.

This module imports no TensorFlow: the TensorBoard plugin reads the registry.

Example:
    >>> from tb_cnnvis import views
    >>> views.get("gradcam_plus_plus").family.name
    'cam'
    >>> [view.kind for view in views.of_family("projection")]
    ['deconvnet', 'guided_backprop', 'saliency']
"""

import time
from dataclasses import dataclass, field
from typing import NamedTuple

from tb_cnnvis import metadata


@dataclass(frozen=True)
class View:
    """One registered kind of tag.

    Attributes:
        kind: the tag kind, e.g. ``"grad_cam"`` (tags are ``"<kind>/<layer path>"``).
        family: the ``Family`` that computes, writes and draws it.
        label: the name the dashboard shows, e.g. ``"Grad-CAM"``.
        blurb: one sentence for the dashboard: what the view shows, with its paper.
        params: what tells this view apart inside its family (e.g. ``{"method": "gradcam"}``).
        metric_name: the ``<method>`` part of its ``cnnvis_metrics/*`` scalars, if any.
        default: logged when the callback is given no ``views``.
    """

    kind: str
    family: object
    label: str
    blurb: str
    params: dict = field(default_factory=dict, hash=False, compare=False)
    metric_name: str | None = None
    default: bool = False

    def describe(self):
        """What the dashboard needs to know of this view (JSON-ready)."""
        return {
            "kind": self.kind,
            "family": self.family.name,
            "label": self.label,
            "blurb": self.blurb,
        }


_VIEWS = {}


def register(*views):
    """Add views to the registry (each kind once); returns them.

    Raises:
        ValueError: if a kind is registered twice or is not a plain tag-kind name.
    """
    for view in views:
        if view.kind in _VIEWS or not view.kind.replace("_", "").isalnum():
            raise ValueError(f"View kind {view.kind!r} is registered twice or malformed.")
        _VIEWS[view.kind] = view
        metadata.declare_view(
            view.kind,
            family=view.family.name,
            label=view.label,
            blurb=view.blurb,
            family_order=view.family.order,
        )  # the writers describe each tag from this, without importing the registry
    return views


def get(kind):
    """The registered ``View`` of ``kind``.

    Raises:
        ValueError: for an unknown kind; the message lists the known ones.
    """
    view = _VIEWS.get(kind)
    if view is None:
        raise ValueError(f"Unknown kind {kind!r}; the views are {list(_VIEWS)}.")
    return view


def all_views():
    """Every registered view: families by ``Family.order``, then in registration order.

    This is the order of the dashboard's tabs.
    """
    return tuple(sorted(_VIEWS.values(), key=lambda view: view.family.order))


def of_family(name):
    """The registered views of the family called ``name``, in registration order."""
    return tuple(view for view in all_views() if view.family.name == name)


def kinds(family=None):
    """The registered kinds (of one family, if ``family`` names one)."""
    views = all_views() if family is None else of_family(family)
    return tuple(view.kind for view in views)


def catalog():
    """Every view as ``View.describe()`` dicts, for the plugin's ``/tags`` answer."""
    return [view.describe() for view in all_views()]


class Family:
    """How the views of one family are chosen, computed and written; one subclass per module.

    Class attributes:
        name: the family's name (the dashboard draws each family in its own way).
        order: families are listed (and their tabs shown) by increasing ``order``.
        source: ``"probes"`` (computed on the probe images) or ``"reference"`` (on the
            callback's ``reference_images``).
        frequency: the ``CnnVisCallback`` argument that says how often its views are logged.
        needs_classifier: its views explain class scores (the model must be a classifier).
        at_input: its views are maps at the model's input: they take no layer, and their
            one "layer" is the input (``default_layers`` says which ``LayerRef`` stands
            for it).
        facts: the keys of a stored step's facts besides ``seconds`` and ``images``, as the
            format in ``tb_cnnvis.summary`` describes them.
    """

    name = ""
    order = 100
    source = "probes"
    frequency = "every_n_epochs"
    needs_classifier = False
    at_input = False
    facts = ()

    def default_layers(self, model, four_d):
        """The layers a view of this family uses when the user names none.

        Args:
            model: the model.
            four_d: every ``capture.LayerRef`` with a (h, w, c) output, in model order.

        Returns:
            A list of ``LayerRef``: ``representative_layers(four_d)``.
        """
        return representative_layers(four_d)

    def default_reason(self, four_d):
        """Why ``default_layers`` chose what it chose, in a few words (for verbose output)."""
        return representative_reason(four_d)

    def check(self, plan, view, ref):
        """Raise ``ValueError`` (at ``set_model``) if ``view`` cannot run on layer ``ref``."""

    def advice(self, plan, view, refs):
        """Sentences warned about at ``set_model``: what ``view`` will really show on
        ``refs`` when that is not what its name says (none by default)."""
        return []

    def repeats(self, plan, view, refs):
        """``(paths, sentence)``: the layers among ``refs`` where ``view`` would only repeat
        another view's result, and why; the default layers leave them out (none by
        default)."""
        return [], ""

    def estimated_bytes(self, plan, view, ref):
        """About how many raw bytes (8-bit pixels) one layer of ``view`` stores per step.

        The pipeline leaves what the other views due at a step do not use of the byte
        budget to the view that adapts to it (feature maps); 0 for a family that does not
        say.
        """
        return 0

    def compute(self, plan, view, refs):
        """Yield ``(ref, result, seconds)`` per layer; ``result`` is the exception on failure.

        The default computes one layer at a time with ``compute_layer``; a family whose
        layers share work (one forward pass) overrides this.
        """
        for ref in refs:
            began = time.perf_counter()
            try:
                result = self.compute_layer(plan, view, ref)
            except Exception as error:  # one layer must not stop training
                result = error
            yield ref, result, time.perf_counter() - began

    def compute_layer(self, plan, view, ref):
        """The algorithm's result for one layer (the input of ``write``)."""
        raise NotImplementedError

    def write(self, tag_content, result, step, seconds, facts, context):
        """Write one layer's result at ``step`` (``facts``: the metrics' extra facts).

        ``context`` is a ``WriteContext`` (the probes' labels, the model's input range).
        """
        raise NotImplementedError


MAX_DEFAULT_LAYERS = 8
"""The most layers a view uses by default (on networks with more convolutions)."""

_TRANSIENT = ("ZeroPadding2D", "Cropping2D")


def representative_layers(four_d, limit=MAX_DEFAULT_LAYERS):
    """A bounded set of layers that represents the network, in model order.

    A network with at most ``limit`` convolutions: every convolution (every 4-D layer if
    none is one). A deeper one (``keras.applications`` models have 50 to 150): one layer
    per resolution stage, the last layer computed at each spatial size (padding and
    cropping layers aside), for the sizes at which a convolution runs (not the 1x1 maps of
    squeeze-and-excitation gates); at most ``limit`` of them, evenly spaced from the first
    stage to the last.

    Args:
        four_d: every ``capture.LayerRef`` with a (h, w, c) output, in model order.
        limit: the most layers.

    Returns:
        A list of ``LayerRef``.
    """
    from tb_cnnvis import capture

    convolutions = [ref for ref in four_d if capture.is_convolution(ref)]
    if len(convolutions) <= limit:
        return convolutions or list(four_d)
    stages = {}
    for ref in four_d:
        size = tuple(ref.output_shape[:2])
        if type(ref.layer).__name__ in _TRANSIENT or size == (1, 1):
            continue
        stage = stages.setdefault(size, {"last": ref, "convolution": False})
        stage["last"] = ref
        stage["convolution"] |= capture.is_convolution(ref)
    chosen = [stage["last"] for stage in stages.values() if stage["convolution"]]
    chosen.sort(key=lambda ref: ref.index)
    if len(chosen) > limit:
        picks = sorted({round(i * (len(chosen) - 1) / (limit - 1)) for i in range(limit)})
        chosen = [chosen[i] for i in picks]
    return chosen


def representative_reason(four_d, limit=MAX_DEFAULT_LAYERS):
    """How ``representative_layers`` chooses for this network, in a few words."""
    from tb_cnnvis import capture

    if sum(capture.is_convolution(ref) for ref in four_d) <= limit:
        return "every convolution"
    return f"one per resolution stage, the last layer at each size, at most {limit}"


class WriteContext(NamedTuple):
    """What writers need besides a result: the probes' labels and the model's input range."""

    labels: object = None
    input_range: object = None

"""Per-epoch metrics of the logged views: faithfulness, drift, dead filters and sparsity.

After a view (``tb_cnnvis.views``) has computed a layer, ``EpochMetrics.observe`` looks at
the result, returns extra facts for the tag about to be written and collects scalars for
``cnnvis_metrics/<name>`` (see ``tb_cnnvis.summary`` for both). Nothing is recomputed:
dead filters and sparsity come from the feature maps, drift from the class activation maps,
class attributions and filter patterns, which the collector keeps until the view's next
logged step. Only the deletion AUC runs the model again (on the probe images, for each CAM
view's last layer and each attribution view).

- Deletion AUC (Petsiuk et al., "RISE", BMVC 2018) of the map beside that of a seeded random
  map, and the pointing game (Zhang et al., "Top-down Neural Attention by Excitation
  Backprop", ECCV 2016) when probe masks are given: ``algorithms.faithfulness``.
- Drift: Spearman's rank correlation with the previous logged step (as Adebayo et al.,
  "Sanity Checks for Saliency Maps", NeurIPS 2018, compare maps): ``algorithms.drift``.

Every metric is computed under its own guard: a failure is recorded in ``failures`` (the
callback warns) and leaves that fact null and that scalar out; it never stops training.

Example:
    >>> metrics = EpochMetrics()
    >>> metrics.begin(step=3, last_layers={"grad_cam": "conv4"})
    >>> facts = metrics.observe(views.get("feature_maps"), ref, maps, plan)
    >>> metrics.scalars
    {'dead_filters/conv1': 2, 'sparsity/conv1': 0.61}
"""

import contextlib
import time

import numpy as np

from tb_cnnvis import views

DELETION_STEPS = 16
"""Points per deletion curve, minus one."""

POINTING_TOLERANCE = 15 / 224
"""Pointing-game tolerance as a fraction of the image's larger side (15 px at 224 px)."""


class EpochMetrics:
    """Computes the metrics of one logged step and remembers what drift needs.

    Call ``begin`` at each logged step, then ``observe`` with each layer's result before
    it is written; read ``scalars``, ``failures`` and ``seconds`` afterwards. The memory of previous maps
    survives ``begin`` (and a change of model, so that checkpoints can be compared).

    Args:
        deletion_steps: points per deletion curve, minus one (0: no curves, the cost
            budget's last rung).

    Example:
        >>> metrics = EpochMetrics()
        >>> metrics.begin(0, {"grad_cam": "conv2"})
        >>> view = views.get("grad_cam")
        >>> metrics.observe(view, ref, view.family.compute_layer(plan, view, ref), plan)
        {'drift': None, 'drift_from': None, 'pointing_hits': None, 'deletion_auc': [...], ...}
    """

    def __init__(self, deletion_steps=DELETION_STEPS):
        self.deletion_steps = int(deletion_steps)
        self.step = None
        self.scalars = {}
        self.failures = []
        self.seconds = 0.0
        self._last_layers = {}
        self._previous = {}

    def begin(self, step, last_layers):
        """Start a logged step; ``last_layers`` maps each class-map view's kind to its last
        layer (the one whose deletion AUC is computed)."""
        self.step = int(step)
        self.scalars = {}
        self.failures = []
        self.seconds = 0.0
        self._last_layers = dict(last_layers)

    @contextlib.contextmanager
    def _guard(self, metric, path):
        """Time the block; record an exception as a failure of ``metric`` at ``path``."""
        began = time.perf_counter()
        try:
            yield
        except Exception as error:  # a metric must never stop training
            self.failures.append((metric, path, error))
        finally:
            self.seconds += time.perf_counter() - began

    def _swap(self, key, value):
        """Remember ``value`` for ``key`` at this step; return the previous ``(step, value)``."""
        previous = self._previous.get(key)
        self._previous[key] = (self.step, value)
        return previous if previous is not None and previous[0] < self.step else None

    def observe(self, view, ref, result, plan):
        """The metric facts of one layer's result of ``view`` (a ``views.View``).

        Feature maps give dead filters and sparsity, filter patterns their drift, class
        activation maps and class attributions their drift, pointing game and deletion
        AUC (``class_maps``); other families none.

        Returns:
            A dict of facts to add to the tag's step (see ``tb_cnnvis.summary``).
        """
        family = view.family.name
        if family == views.feature_maps.FAMILY.name:
            return self.feature_maps(ref.path, result.maps)
        if family == views.filter_patterns.FAMILY.name:
            return self.filter_patterns(ref.path, result.filters, result.images)
        if family in (views.cams.FAMILY.name, views.attributions.FAMILY.name):
            return self.class_maps(view, ref.path, plan, result)
        return {}

    def feature_maps(self, path, maps):
        """Dead filters and sparsity of one layer's feature maps (N, h, w, C).

        Returns:
            ``{"dead_filters": [int] | None, "sparsity": float | None}``.
        """
        from tb_cnnvis.algorithms import drift

        facts = {"dead_filters": None, "sparsity": None}
        with self._guard("dead_filters", path):
            dead = drift.dead_filters(maps)
            facts["dead_filters"] = dead.tolist()
            self.scalars[f"dead_filters/{path}"] = len(dead)
        with self._guard("sparsity", path):
            facts["sparsity"] = drift.activation_sparsity(maps)
            self.scalars[f"sparsity/{path}"] = facts["sparsity"]
        return facts

    def filter_patterns(self, path, filters, images):
        """Drift of each filter's pattern since the previous logged step.

        Args:
            path: the layer path.
            filters: the F filter indices.
            images: (F, H, W, C) patterns in the model's scale.

        Returns:
            ``{"drift": [float] * F | None, "drift_from": int | None}``.
        """
        from tb_cnnvis.algorithms import drift

        facts = {"drift": None, "drift_from": None}
        with self._guard("pattern_drift", path):
            filters = np.asarray(filters).reshape(-1)
            previous = self._swap(("filter_patterns", path), (filters, images))
            if previous is not None and _same(previous[1][0], filters, previous[1][1], images):
                rho = drift.pattern_drift(previous[1][1], images)
                facts.update(drift=rho.tolist(), drift_from=previous[0])
                self.scalars[f"pattern_drift/{path}"] = float(rho.mean())
        return facts

    def class_maps(self, view, path, plan, explained):
        """Drift, pointing game and deletion AUCs of one layer's class maps.

        The same for every class-explaining family: CAMs, and attributions (signed), whose
        pointing game and deletion AUC judge the positive part of the map (the evidence
        for the class; a CAM is positive already). With several classes per probe every
        map is judged for its own probe and class, and its drift is null where the
        previous step's map in its place explained another class.

        Args:
            view: the ``views.View`` (its ``metric_name`` names the scalars).
            path: the layer path (``"input"`` for attributions).
            plan: the ``plan.Plan``: the model (run again for the deletion AUC), the probes
                (and their masks, for the pointing game) and the output explained.
            explained: the ``views.explained.Explained`` result of the probe images.

        Returns:
            The class-map metric facts (see ``tb_cnnvis.summary``).
        """
        from tb_cnnvis.algorithms import drift, faithfulness

        method = view.metric_name
        last = path == self._last_layers.get(view.kind)
        facts = dict.fromkeys(
            ("drift", "drift_from", "pointing_hits", "deletion_auc", "deletion_auc_random")
        )
        details = explained.details
        maps = np.asarray(details.maps)
        classes = np.asarray(details.class_index)
        probe = explained.probe_index
        with self._guard("cam_drift", path):
            previous = self._swap((view.kind, path), (maps, classes))
            if previous is not None and previous[1][0].shape == maps.shape:
                rho = drift.spearman(previous[1][0], maps)
                if explained.probe is not None:
                    rho = np.where(previous[1][1] == classes, rho, np.nan)
                facts.update(drift=rho.tolist(), drift_from=previous[0])
                if last and np.isfinite(rho).any():
                    self.scalars[f"cam_drift/{method}"] = float(np.nanmean(rho))
        evidence = np.maximum(maps, 0.0)
        masks = plan.probes.masks
        if masks is not None:
            with self._guard("pointing_game", path):
                tolerance = POINTING_TOLERANCE * max(masks.shape[1:3])
                game = faithfulness.pointing_game(evidence, masks[probe], tolerance)
                facts["pointing_hits"] = game.hits.tolist()
                if last:
                    self.scalars[f"pointing_game/{method}"] = game.accuracy
        if last and _has_probability(details) and self.deletion_steps:
            with self._guard("deletion_auc", path):
                scores = faithfulness.faithfulness_scores(
                    plan.model,
                    plan.probes.inputs_at(probe),
                    evidence,
                    classes if plan.subject.has_classes else None,
                    target=plan.subject.target_at(probe),
                    steps=self.deletion_steps,
                    insertion=False,
                    output=plan.options.output,
                    image_input=plan.options.image_input,
                )
                facts["deletion_auc"] = scores.deletion.tolist()
                facts["deletion_auc_random"] = scores.deletion_random.tolist()
                self.scalars[f"deletion_auc/{method}"] = float(scores.deletion.mean())
                self.scalars["deletion_auc/random"] = float(scores.deletion_random.mean())
        return facts


def _has_probability(details):
    """True when the maps explain a class with a probability (deletion follows it); a
    regression's value or a custom score has none, and the metric stays null."""
    return bool(np.isfinite(np.asarray(details.target_probability, np.float64)).any())


def _same(filters_before, filters_after, images_before, images_after):
    """True when two steps' patterns are of the same filters and shape."""
    return np.array_equal(filters_before, filters_after) and (
        np.shape(images_before) == np.shape(images_after)
    )

"""``CnnVisCallback``: log feature maps, filter patterns, CAMs and projections during ``fit``.

The callback only orchestrates. ``__init__`` stores and checks the arguments; ``set_model``
resolves layers and probe images against the model (every configuration error is raised
there, before the first epoch); ``on_train_begin``/``on_epoch_end`` decide which views are
due and hand them to ``views.pipeline.log_views``, where each view's family (its module in
``tb_cnnvis.views``) computes and writes it and ``tb_cnnvis.epoch_metrics`` observes the
results for the per-epoch metrics, within the cost budget of ``tb_cnnvis.budget``. The file
writer is created on first use, in ``<log_dir>/cnnvis``. ``log_step`` logs a model outside
``fit`` (the ``tb-cnnvis log`` command uses it for saved checkpoints).

Example:
    >>> cb = CnnVisCallback("logs", x_val[:8], y_val[:8], class_names=names)
    >>> model.fit(x, y, epochs=20, callbacks=[keras.callbacks.TensorBoard("logs"), cb])
"""

import os
import time
import warnings

import keras

from tb_cnnvis import metadata, plan, probes, snapshots, summary, views
from tb_cnnvis.arguments import (
    CAM_TARGETS,
    DEFAULT_MAX_BYTES_PER_EPOCH,
    check_layer_spec,
    check_views,
    chosen_views,
    filter_options,
    positive_int,
)
from tb_cnnvis.budget import DEFAULT_BUDGET, Budgeter, check_budget
from tb_cnnvis.distribute import is_chief
from tb_cnnvis.epoch_metrics import EpochMetrics
from tb_cnnvis.progress import StepProgress, step_line
from tb_cnnvis.targets import check_target
from tb_cnnvis.views.explained import check_cam_classes
from tb_cnnvis.views.pipeline import last_class_layers, log_views, warn_failures


class CnnVisCallback(keras.callbacks.Callback):
    """Log what a CNN learns, epoch by epoch, for the cnnvis TensorBoard tab.

    Step 0 is the untrained network (logged before the first epoch); step ``e`` is the
    network after epoch ``e``. A view is logged at step ``s`` when ``s`` is a multiple of its
    frequency, and every view is logged after the last epoch of ``fit``. Steps follow Keras's
    epoch numbers: to continue training with a second ``fit``, pass ``initial_epoch``.

    Default layers: CAMs use the last layer with a (h, w, c) output (before the model's
    output, for a segmentation head); attributions are maps at the input (tag
    ``<kind>/input``); the other views one convolution layer per resolution stage (at most
    8), projections only where a ReLU is on the path.

    Metrics (``metrics=True``): per logged step, dead filters and sparsity of the feature-map
    layers, the drift of CAMs and filter patterns, the deletion AUC of each CAM and
    attribution view (beside a random map's) and, with ``probe_masks``, the pointing game;
    as ``cnnvis_metrics/<name>`` scalars and in the facts. A metric that fails is skipped.

    Distribution: under ``tf.distribute`` strategies only the chief writes (task ``chief``,
    else ``worker`` 0); other tasks compute and write nothing.

    Args:
        log_dir: the log directory (a local path or any ``tf.io.gfile`` URL, e.g.
            ``gs://...``); the callback writes to ``<log_dir>/cnnvis``.
        probe_images: the images to visualize, in the model's input scale: an array
            (N, H, W, C), or a ``tf.data.Dataset`` of images or ``(images, labels)``
            (batched or not). At most ``max_probes`` are used. For a model with several
            inputs: a dict ``{input name: array}`` or a dataset of dict features.
        probe_labels: N labels (ignored if the dataset has labels): class indices or one-hot
            rows (0/1 for a binary head with one unit), or a regression head's true values.
        layers: the layers to visualize: None (see above), a name, an ``"outer/inner"``
            path, a regular expression, a list of these, or a dict ``{view: spec}``.
        views: the views to log (``views.ALL_VIEWS``): ``feature_maps``, ``filter_patterns``,
            ``deepdream`` (follows ``filters_every_n_epochs``),
            the CAMs (``grad_cam``, ``gradcam_plus_plus``, ``score_cam``, ``layercam``,
            ``hirescam``, ``xgradcam``, ``eigencam``), the attributions (``smoothgrad``,
            ``integrated_gradients``, ``occlusion``: no layer), the projections
            (``deconvnet``, ``guided_backprop``, ``saliency``), ``top_examples`` (needs
            ``reference_images``). None: ``DEFAULT_VIEWS`` (+ ``top_examples`` with them).
        every_n_epochs: how often to log each view (an int >= 1).
        filters_every_n_epochs: how often to log filter patterns, the costly view.
        max_filters_per_layer: the first this many filters of each layer get a pattern
            (and top examples).
        filter_preset: ``"fast"``, ``"quality"`` or ``"maco"`` (see
            ``tb_cnnvis.algorithms.filters``). The reference images (else the probe
            images) give MaCo its magnitude spectrum and restart filters left dead.
        filter_steps: optimization steps per pattern; None uses the preset's.
        filter_diversity: patterns per filter (Lucid's diversity objective when > 1),
            stored as a row per filter beside the patterns.
        max_probes: the most probe images used.
        class_names: one name per class, shown by the viewer.
        input_range: the model's input scale (``InputRange``, a name or ``(low, high)``),
            used to show probe images and filter patterns; None guesses (see ``InputRange``).
        cam_target: explain the true ``"label"`` (when labels are given; the prediction
            otherwise) or the ``"predicted"`` class.
        cam_classes: classes the CAMs and attributions explain per probe: 1 (``cam_target``'s),
            an int ``k`` (the ``k`` most probable, most probable first; for a segmentation
            head, the ``k`` classes with the most predicted pixels) or a list of class
            indices (those, for every probe). Eigen-CAM always stores one map per probe.
        target: what the class views explain (``tb_cnnvis.targets``), checked against the
            explained output at ``set_model``. None: the head's class target (a softmax or
            multi-label class's logit; a binary head's logit for class 1 and its negation
            for class 0; a regression's value, raised; a segmentation class's logits over
            its predicted pixels). A ``targets.Target`` as a template whose class each
            probe fills in (e.g. ``targets.Segmentation(mask=...)``), a
            ``targets.Regression(-1)`` to explain what lowers the value, or a callable
            ``logits -> (N,)``.
        verbose: 1 prints one line per logged step with the time each view took (the first
            also says which layers the views use by default, and why); a step that runs
            longer than 2 s shows each view's progress as it goes (a bar on a terminal,
            one line per view elsewhere).
        reference_images: images to search for each filter's top-activating examples
            (Zeiler & Fergus 2014), e.g. a few hundred validation images: an array
            (N, H, W, C) or a ``tf.data.Dataset`` like ``probe_images``. At most
            ``max_reference_images`` are read, once.
        top_examples_every_n_epochs: how often to log the top examples.
        top_k: top examples per filter.
        max_reference_images: the most reference images used.
        probe_masks: object masks (N, H, W), nonzero on the object, one per probe image,
            for the pointing-game metric; None skips it.
        metrics: log the per-epoch metrics (see above).
        output: for a model with several outputs, the one whose class scores the class
            views explain: an output name, a dict key or an index (checked at
            ``set_model``). Views that need no class score work without it.
        max_bytes_per_epoch: raw image bytes (8-bit pixels) one logged epoch may store, or
            None for no bound. Feature maps get what the other views leave: each layer its
            share, its most active channels first, maps over 64 pixels a side stored
            downsampled; the facts say what was kept.
        image_input: for a model with several inputs, the name of the image input when
            more than one input is 4-D (otherwise the 4-D input is the image). The other
            inputs are held at each probe's values (filter patterns: at their mean).
        keep_models: keep the model (``.keras``, ``tb_cnnvis.snapshots``) at the steps where
            filter patterns are due and at the last step, for the tab's explore mode.
        max_model_bytes: the most bytes the kept models of the run may take; older ones are
            thinned evenly, never the newest.
        budget: a ``budget.Budget``: step 0 within about 30 training steps, other logged
            steps 3 (or 5 % of the epoch), costly views reduced to fit and the reduction
            said in the step's facts (``tb_cnnvis.budget``); None: no budget.

    Raises:
        ValueError: for an unknown view or cam_target, a frequency < 1, a bad cam_classes,
            ``top_examples`` without reference images, or probe or reference images or
            labels that cannot be read. Layer, shape and class problems: ``set_model``.

    Example:
        >>> cb = CnnVisCallback("logs", probes, labels, views=("feature_maps", "grad_cam"))
        >>> model.fit(x, y, epochs=5, callbacks=[cb])
        >>> cb = CnnVisCallback("logs", probes, labels, reference_images=x_val[:500],
        ...                     probe_masks=masks)   # adds top examples and pointing game
    """

    def __init__(
        self,
        log_dir,
        probe_images,
        probe_labels=None,
        *,
        layers=None,
        views=None,
        every_n_epochs=1,
        filters_every_n_epochs=10,
        max_filters_per_layer=8,
        filter_preset="fast",
        filter_steps=None,
        filter_diversity=1,
        max_probes=8,
        class_names=None,
        input_range=None,
        cam_target="label",
        cam_classes=1,
        target=None,
        verbose=0,
        reference_images=None,
        top_examples_every_n_epochs=5,
        top_k=9,
        max_reference_images=500,
        probe_masks=None,
        metrics=True,
        output=None,
        image_input=None,
        max_bytes_per_epoch=DEFAULT_MAX_BYTES_PER_EPOCH,
        keep_models=True,
        max_model_bytes=snapshots.DEFAULT_MAX_MODEL_BYTES,
        budget=DEFAULT_BUDGET,
    ):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.budget = check_budget(budget)
        self.views, self.explicit_views = chosen_views(views, reference_images)
        self._requested_views = self.views
        self.layers = check_layer_spec(layers, self.views)
        self.every_n_epochs = positive_int(every_n_epochs, "every_n_epochs")
        self.filters_every_n_epochs = positive_int(filters_every_n_epochs, "filters_every_n_epochs")
        self.top_examples_every_n_epochs = positive_int(
            top_examples_every_n_epochs, "top_examples_every_n_epochs"
        )
        self.top_k = positive_int(top_k, "top_k")
        self.max_filters_per_layer = positive_int(max_filters_per_layer, "max_filters_per_layer")
        self.max_probes = positive_int(max_probes, "max_probes")
        if cam_target not in CAM_TARGETS:
            raise ValueError(f"cam_target must be one of {list(CAM_TARGETS)}; got {cam_target!r}.")
        self.cam_target = cam_target
        self.cam_classes = check_cam_classes(cam_classes)
        self.target = check_target(target)
        self.filter_options = filter_options(filter_preset, filter_steps, filter_diversity)
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        self.input_range = input_range
        self.verbose = int(verbose)
        self._lines = []
        self._defer_print = False
        self.probe_images, self.probe_labels = probes.read_probes(
            probe_images, probe_labels, self.max_probes
        )
        self.reference_images = probes.read_reference(reference_images, max_reference_images)
        self.probe_masks = probes.first_masks(probe_masks, self.probe_images)
        self.metrics, self.output, self.image_input = bool(metrics), output, image_input
        if max_bytes_per_epoch is not None:
            max_bytes_per_epoch = positive_int(max_bytes_per_epoch, "max_bytes_per_epoch")
        self.max_bytes_per_epoch = max_bytes_per_epoch
        self.keep_models = bool(keep_models)
        self.max_model_bytes = positive_int(max_model_bytes, "max_model_bytes")
        self._metrics = EpochMetrics() if self.metrics else None
        self._plan = self._snapshots = self._writer = self._budgeter = None
        self._pending_first, self._chief, self._last_step = False, True, -1
        self._layers_said = False

    # -- set-up ---------------------------------------------------------------------------

    def set_model(self, model):
        """Resolve layers and probes for ``model``; raise ValueError on any mismatch."""
        super().set_model(model)
        if self._plan is not None and self._plan.model is model:
            return
        self._plan = plan.make_plan(
            model,
            self._requested_views,
            self.layers,
            self.probe_images,
            self.probe_labels,
            self.class_names,
            plan.Options.of(self),
            masks=self.probe_masks,
        )
        self.views = self._plan.views
        self._chief = is_chief(getattr(model, "distribute_strategy", None))
        self._layers_said = False
        if self.keep_models:  # warns when TensorBoard could not rebuild the model
            self._snapshots = snapshots.keeper_for(model, self.run_dir, self.max_model_bytes)
        if self.budget is not None:
            self._budgeter = Budgeter(self.budget, self._plan)
            for sentence in self._budgeter.warnings(self._plan, self.views * self.explicit_views):
                warnings.warn(f"cnnvis: {sentence}", RuntimeWarning, stacklevel=2)

    @property
    def run_dir(self):
        """Where the callback writes: ``<log_dir>/cnnvis``."""
        return os.path.join(self.log_dir, metadata.RUN_SUBDIR)

    # -- Keras hooks ----------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        """Arm the log of the network before training (done when the first epoch begins)."""
        self._pending_first = True

    def on_epoch_begin(self, epoch, logs=None):
        """Log every view at step ``epoch`` (0: untrained) before the first epoch of a fit."""
        self._print_pending()
        if self._pending_first:
            self._pending_first = False
            if epoch > self._last_step:
                self._log(epoch, self.views)
                self._keep_model(epoch, last=False)
        if self._budgeter is not None:
            self._budgeter.clock.epoch_begin()

    def on_train_batch_end(self, batch, logs=None):
        """Time the user's training step (the unit of the cost budget)."""
        if self._budgeter is not None:
            self._budgeter.clock.batch_end()

    def on_epoch_end(self, epoch, logs=None):
        """Log the views due at step ``epoch + 1`` (all of them after the last epoch)."""
        step = epoch + 1
        last = step == (self.params or {}).get("epochs")
        due = [view for view in self.views if last or step % self._frequency(view) == 0]
        if self._budgeter is not None:
            self._budgeter.clock.epoch_end()
            due = self._budgeter.not_yet_computed(self.model, due)
        if due:
            # Keras's progress bar finishes the epoch's line after this hook: print later.
            self._defer_print = True
            self._log(step, due)
        self._keep_model(step, last)

    def on_train_end(self, logs=None):
        """Close the writer (a later fit opens a new event file)."""
        self._print_pending()
        self.close()

    # -- outside fit ----------------------------------------------------------------------

    def log_step(self, step, views=None):
        """Log ``views`` (default: all) of the current model at ``step`` now, outside ``fit``.

        Call ``set_model`` first; steps are expected in increasing order (drift compares
        each step with the previous one logged). ``close`` when done.

        Args:
            step: the step (an int >= 0), e.g. the epoch a checkpoint was saved after.
            views: the views to log, among the callback's ``views``; None: all of them.

        Raises:
            ValueError: for a view the callback was not configured with.
            RuntimeError: if ``set_model`` was not called.

        Example:
            >>> cb = CnnVisCallback("logs", probes, labels)
            >>> for step, path in enumerate(checkpoints):
            ...     cb.set_model(keras.models.load_model(path))
            ...     cb.log_step(step)
            >>> cb.close()
        """
        chosen = self.views if views is None else check_views(views)
        if unknown := [view for view in chosen if view not in self.views]:
            raise ValueError(
                f"Views {unknown} are not logged by this callback: {list(self.views)}."
            )
        self._log(int(step), chosen)

    def close(self):
        """Flush and close the writer (logging again opens a new event file)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- logging --------------------------------------------------------------------------

    def _frequency(self, view):
        """Log ``view`` every this many epochs (its family's frequency argument)."""
        return getattr(self, views.get(view).family.frequency)

    def _log(self, step, due):
        """Compute and write the ``due`` views at ``step``, then flush (chief only)."""
        resolved = self._plan
        if resolved is None:
            raise RuntimeError("CnnVisCallback.set_model was not called; pass it to model.fit.")
        if not self._chief:
            return
        began = time.perf_counter()
        if self._writer is None:
            self._writer = summary.RunWriter(self.run_dir)  # never raises: warns, drops the step
        metrics = self._metrics
        if metrics is not None:
            metrics.begin(step, last_class_layers(resolved))
        step_plan = None
        if self._budgeter is not None:
            step_plan = self._budgeter.plan(resolved, due, self._last_step < 0, metrics)
        with self._writer.step(step):
            if self._last_step < 0:
                summary.write_probes(
                    resolved.probe_content,
                    resolved.probes.display,
                    step,
                    labels=resolved.probes.labels,
                )
            progress = StepProgress(step, mid_line=self._defer_print) if self.verbose else None
            seconds, failures = log_views(resolved, due, step, metrics, progress, step_plan)
            failed = [("view", *failure) for failure in failures]
            if metrics is not None:
                seconds["metrics"] = metrics.seconds
                summary.write_metrics(metrics.scalars, step)
                failed += [("metric", *failure) for failure in metrics.failures]
            warn_failures(failed, step)
            summary.write_timings(seconds, step)
        if self._writer.committed:  # else dropped with a warning: probes again next time
            self._last_step = max(self._last_step, step)
        if step_plan is not None:
            self._budgeter.observe(resolved, step_plan, seconds, time.perf_counter() - began)
        if self.verbose:
            first_of_run = None if self._layers_said else resolved
            self._layers_said = True
            self._lines.append(step_line(step, seconds, step_plan, first_of_run))
            if not self._defer_print:
                self._print_pending()

    def _keep_model(self, step, last):
        """Keep a snapshot of the model at ``step`` when filter patterns are due, or last."""
        due = last or step % self.filters_every_n_epochs == 0
        if self._snapshots is not None and self._chief and due:
            self._snapshots.keep(self.model, step, self._plan)

    def _print_pending(self):
        """Print the progress lines held back while Keras's progress bar was mid-line."""
        self._defer_print = False
        if self._lines:
            print("\n".join(self._lines))
        self._lines.clear()

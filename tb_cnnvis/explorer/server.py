"""``cv.explore``: TensorBoard in this process, with live models handed to the cnnvis tab.

The way to explore what snapshots cannot carry: a model in a notebook, a subclassed model or
one with custom layers that TensorBoard's own process could not rebuild. The models stay in
this process; the tab's explore mode computes on them as on saved snapshots.

Example:
    >>> import tb_cnnvis as cv
    >>> url = cv.explore("logs", models=model, probe_images=x_val[:8], class_names=names)
    TensorBoard at http://localhost:6006/#cnnvis (explore mode: the "Explore" button)
"""

import os

from tb_cnnvis.explorer import sources
from tb_cnnvis.explorer.requests import LIVE_STEP

LIVE_RUN = "live"
"""The run name of a model given without one."""


def explore(
    logdir,
    models=None,
    port=0,
    *,
    host="127.0.0.1",
    probe_images=None,
    class_names=None,
    input_range=None,
):
    """Start TensorBoard in this process on ``logdir`` and hand ``models`` to the cnnvis tab.

    Args:
        logdir: the log directory (its runs' snapshots can be explored too).
        models: None (only the snapshots), a Keras model or a ``.keras`` path (run
            ``"live"``), a list of them (run ``"live"``, steps 0, 1, ...), or a dict
            ``{run: model | path | {step: model | path}}`` (a run of the log directory
            gets its steps added to its snapshots).
        port: the port (0: a free one).
        host: the address to listen on.
        probe_images: images (N, H, W, C) in the model's scale offered as probes for live
            models (a run's snapshots bring their own).
        class_names: the class names of the live models.
        input_range: the live models' input scale (see ``InputRange``); None guesses.

    Returns:
        The URL TensorBoard serves at (also printed).

    Raises:
        ValueError: for models of another kind, or a step that is not an int.

    Example:
        >>> url = cv.explore("logs", models={"cnnvis": {5: model}})
    """
    import numpy as np
    from tensorboard import program

    from tb_cnnvis.explorer.compute import Meta

    by_run = _by_run(models)
    meta = None
    if probe_images is not None or class_names is not None or input_range is not None:
        probes = None if probe_images is None else np.asarray(probe_images, np.float32)
        names = None if class_names is None else [str(name) for name in class_names]
        meta = Meta(input_range=input_range, class_names=names, probes=probes)
    for run, steps in by_run.items():
        sources.register_live(run, steps, meta)
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", os.fspath(logdir), "--host", host, "--port", str(port)])
    url = board.launch()
    print(f"TensorBoard at {url}#cnnvis (explore mode: the 'Explore' button)", flush=True)
    return url


def _by_run(models):
    """``{run: {step: model or path}}`` from what ``explore`` was given."""
    if models is None:
        return {}
    if isinstance(models, dict):
        return {str(run): _steps(value, run) for run, value in models.items()}
    if isinstance(models, (list, tuple)):
        return {LIVE_RUN: {step: _one(model, LIVE_RUN) for step, model in enumerate(models)}}
    return {LIVE_RUN: {LIVE_STEP: _one(models, LIVE_RUN)}}


def _steps(value, run):
    """``{step: model or path}`` of one run's value."""
    if isinstance(value, dict):
        bad = [step for step in value if type(step) is not int or step < 0]
        if bad:
            raise ValueError(f"steps of run {run!r} must be ints >= 0; got {bad[:3]}.")
        return {step: _one(model, run) for step, model in value.items()}
    return {LIVE_STEP: _one(value, run)}


def _one(model, run):
    """A Keras model or a path, checked."""
    import keras

    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, keras.Model):
        return model
    raise ValueError(
        f"models of run {run!r} must be Keras models or .keras paths; got {type(model).__name__}."
    )

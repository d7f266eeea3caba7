"""Train the demo CNN (or a user's model) while ``CnnVisCallback`` logs what it learns.

``train`` generates the shape data set (or takes a user's images), picks probe images from
every class, and fits the model with Keras's ``TensorBoard`` callback and the cnnvis callback
writing into one log directory, then saves the model to ``<logdir>/model.keras``. A user's
image folder (one subfolder per class) is read by ``load_image_folder``.

Example:
    >>> result = train("demo/logs", epochs=15)
    >>> result.val_accuracy
    0.97...
"""

import os
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from demo.model import build_model
from demo.shapes import CLASS_NAMES, make_shapes
from tb_cnnvis.callback import CnnVisCallback

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
"""Image files ``keras.utils.image_dataset_from_directory`` reads."""

DEMO_LEARNING_RATE = 2e-3
FINE_TUNE_LEARNING_RATE = 1e-4


class TrainResult(NamedTuple):
    """What ``train`` did: the model, its history and the time it took."""

    model: keras.Model
    history: dict  # metric name -> one value per epoch
    val_accuracy: float | None  # after the last epoch; None without validation or training
    seconds: float  # the whole fit, visualizations included
    epoch_seconds: list  # wall time of each epoch, the callbacks' work included
    class_names: tuple
    model_path: str | None


class _EpochTimer(keras.callbacks.Callback):
    """Record the wall time of each epoch, the other callbacks' work included."""

    def on_train_begin(self, logs=None):
        self.ends = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())

    @property
    def epoch_seconds(self):
        """Seconds per epoch (the first one includes the step-0 visualizations)."""
        return [round(b - a, 3) for a, b in zip(self.ends, self.ends[1:])]


N_REFERENCE = 300
"""Held-out images searched for each filter's top-activating examples."""


def pick_probes(labels, count=8, seed=0):
    """Indices of ``count`` probe images, taking classes in turn so that each one appears.

    Args:
        labels: int labels (n,).
        count: number of probes wanted (fewer if there are fewer images).
        seed: seed for the choice within each class.

    Returns:
        int array of indices into ``labels``, classes in turn: 0, 1, ..., 0, 1, ...

    Example:
        >>> pick_probes(np.array([0, 1, 1, 2, 0]), count=4)
        array([...])
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == k))) for k in np.unique(labels)]
    picked = []
    while len(picked) < min(count, len(labels)):
        for pool in pools:
            if pool and len(picked) < count:
                picked.append(pool.pop(0))
    return np.array(picked, dtype=np.int64)


def load_image_folder(directory, size=64):
    """Read a folder of images, one subfolder per class, resized to ``size`` x ``size``.

    Args:
        directory: a folder holding one subfolder per class (``cats/``, ``dogs/``, ...), each
            with image files (bmp, gif, jpeg, png).
        size: height and width of the returned images.

    Returns:
        ``(images, labels, class_names)``: float32 (n, size, size, 3) in [0, 1], int64 (n,),
        tuple of the subfolder names in label order.

    Raises:
        FileNotFoundError: if ``directory`` does not exist or is not a folder.
        ValueError: if it holds no class subfolder with images.

    Example:
        >>> images, labels, names = load_image_folder("my_photos", size=64)
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Image folder {str(root)!r} does not exist or is not a folder; expected a folder "
            f"with one subfolder of images per class."
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    counts = {
        name: sum(1 for f in (root / name).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        for name in classes
    }
    if not any(counts.values()):
        found = sorted(p.name for p in root.iterdir())[:10]
        raise ValueError(
            f"Image folder {str(root)!r} holds no images in class subfolders; expected "
            f"{root}/<class name>/<image>{'|'.join(IMAGE_SUFFIXES)}; found {found or 'nothing'}."
        )
    dataset = keras.utils.image_dataset_from_directory(
        str(root),
        labels="inferred",
        label_mode="int",
        class_names=classes,
        color_mode="rgb",
        image_size=(size, size),
        shuffle=False,
        batch_size=256,
        verbose=False,
    )
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(np.asarray(batch_images, dtype=np.float32) / 255.0)
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels), tuple(classes)


def _split(images, labels, n_val, seed):
    """Shuffle and split into (train, validation); validation may be empty."""
    order = np.random.default_rng(seed).permutation(len(labels))
    val, fit = order[:n_val], order[n_val:]
    return (images[fit], labels[fit]), (images[val], labels[val])


def _compile(model, learning_rate, steps):
    """Compile with Adam (cosine decay over ``steps``) and sparse cross-entropy."""
    last = model.layers[-1]
    from_logits = getattr(last, "activation", None) is not keras.activations.softmax
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )


def train(
    logdir,
    epochs=15,
    n_train=10000,
    n_val=2000,
    seed=0,
    batch_size=64,
    learning_rate=None,
    callbacks_extra=(),
    images=None,
    labels=None,
    class_names=None,
    model=None,
    n_probes=8,
    cnnvis_options=None,
    save_model=True,
    verbose=1,
):
    """Fit a model while Keras's TensorBoard callback and ``CnnVisCallback`` log to ``logdir``.

    With no ``images``, the data are ``n_train + n_val`` generated shape images; with
    ``images``, a fifth of them (at most ``n_val``) is held out for validation. With no
    ``model``, the demo CNN is built. With ``epochs=0`` nothing is trained and the views of
    the model as it is are logged once (step 0). Probe images come from the validation
    images (the training images if there are none), every class in turn.

    Args:
        logdir: the log directory (runs ``train``, ``validation``, ``cnnvis``).
        epochs: epochs to train; 0 only logs the views.
        n_train: generated training images (ignored with ``images``).
        n_val: generated validation images; with ``images``, the most held out.
        seed: seed of the data, the split, the probes and the weights.
        batch_size: images per step.
        learning_rate: Adam's initial rate (cosine decay to 0); default 2e-3 for the demo
            CNN, 1e-4 to fine-tune a given ``model``.
        callbacks_extra: more Keras callbacks.
        images: float32 (n, H, W, 3) in [0, 1] to use instead of the shapes.
        labels: int labels of ``images`` (required with them).
        class_names: names of the classes (default: the shapes' names or "class k").
        model: a Keras model to use instead of the demo CNN; it is (re)compiled to train
            on integer labels, with cross-entropy on its softmax or logits.
        n_probes: probe images shown by the cnnvis callback.
        cnnvis_options: more keyword arguments of ``CnnVisCallback`` (e.g. ``views``).
        save_model: write the model to ``<logdir>/model.keras``.
        verbose: Keras's verbosity; the cnnvis callback prints a line per logged step if > 0.

    Returns:
        A ``TrainResult``.

    Raises:
        ValueError: if ``images`` come without matching ``labels`` or the class names do not
            fit the labels.

    Example:
        >>> result = train("/tmp/logs", epochs=2, n_train=256, n_val=64)
        >>> sorted(result.history)
        ['accuracy', 'loss', 'val_accuracy', 'val_loss']
    """
    keras.utils.set_random_seed(seed)
    if images is None:
        images, labels, masks = make_shapes(n_train + n_val, seed=seed)
        class_names = CLASS_NAMES if class_names is None else class_names
        n_hold = n_val
    else:
        masks = None
        images = np.asarray(images, dtype=np.float32)
        if labels is None or len(labels) != len(images):
            raise ValueError(
                f"images need one label each; got {len(images)} images and "
                f"{'no' if labels is None else len(labels)} labels."
            )
        labels = np.asarray(labels, dtype=np.int64)
        n_hold = min(n_val, len(images) // 5)
    classes = int(labels.max()) + 1
    if class_names is None:
        class_names = tuple(f"class {k}" for k in range(classes))
    class_names = tuple(str(name) for name in class_names)
    if len(class_names) < classes:
        raise ValueError(f"{len(class_names)} class names for labels up to {classes - 1}.")
    (x_fit, y_fit), (x_val, y_val) = _split(images, labels, n_hold, seed)
    if masks is not None:
        (m_fit, _), (m_val, _) = _split(masks, labels, n_hold, seed)
    if model is None:
        model = build_model(size=images.shape[1], classes=len(class_names))
        rate = DEMO_LEARNING_RATE if learning_rate is None else learning_rate
    else:
        rate = FINE_TUNE_LEARNING_RATE if learning_rate is None else learning_rate
    probe_source = (x_val, y_val) if len(y_val) else (x_fit, y_fit)
    probes = pick_probes(probe_source[1], n_probes, seed)
    options = {
        "class_names": list(class_names),
        "input_range": (0.0, 1.0),
        "verbose": verbose,
        # Held-out images for the top-activating examples per filter (Zeiler & Fergus).
        "reference_images": probe_source[0][:N_REFERENCE],
    }
    if masks is not None:  # the generated shapes know where the object is: pointing game
        options["probe_masks"] = (m_val if len(y_val) else m_fit)[probes]
    options.update(cnnvis_options or {})
    cnnvis = CnnVisCallback(logdir, probe_source[0][probes], probe_source[1][probes], **options)
    timer = _EpochTimer()
    callbacks = [keras.callbacks.TensorBoard(logdir), cnnvis, *callbacks_extra, timer]
    started = time.perf_counter()
    history = {}
    if epochs > 0:
        _compile(model, rate, epochs * -(-len(y_fit) // batch_size))
        fit = model.fit(
            x_fit,
            y_fit,
            batch_size=batch_size,
            epochs=epochs,
            validation_data=(x_val, y_val) if len(y_val) else None,
            callbacks=callbacks,
            verbose=verbose,
        )
        history = {name: [float(v) for v in values] for name, values in fit.history.items()}
    else:
        _log_views_only(cnnvis, model)
    seconds = time.perf_counter() - started
    model_path = None
    if save_model:
        model_path = os.path.join(logdir, "model.keras")
        os.makedirs(logdir, exist_ok=True)
        model.save(model_path)
    val_accuracy = history.get("val_accuracy", [None])[-1]
    return TrainResult(
        model,
        history,
        val_accuracy,
        seconds,
        timer.epoch_seconds if epochs > 0 else [],
        class_names,
        model_path,
    )


def _log_views_only(cnnvis, model):
    """Log step 0 for ``model`` without training, through the callback's own hooks."""
    cnnvis.set_model(model)
    cnnvis.on_train_begin()
    cnnvis.on_epoch_begin(0)
    cnnvis.on_train_end()

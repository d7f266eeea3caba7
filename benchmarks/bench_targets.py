"""Binary heads: where Grad-CAM puts its mass for class-0 probes, by target.

A binary sigmoid classifier (a reddish patch = class 0 vs a greenish patch = 1, on a noisy
background at 64 px: a task a small CNN learns in a few epochs) is explained at its last conv layer for the held-out probes
it classifies right. For each class-0 probe the share of the Grad-CAM map's mass that lies
on the object (the shape's mask) is measured for two targets:

- ``Binary(0)``, the negated logit (what tb-cnnvis explains for class 0 now);
- the raw logit, the only score a one-unit head has (what version 0.2 explained for every
  probe, whatever its class).

A map of the right score puts most of its mass on the object; the raw logit's map of a
class-0 probe shows what argues *against* the object. The pointing game (Zhang et al. 2016)
is given for both. Numbers are shares and ratios, measured in one run.

Usage::

    python -m benchmarks.bench_targets            # 1,200 training images, 6 epochs
    python -m benchmarks.bench_targets --quick    # 400 images, 4 epochs
"""

import argparse

import numpy as np

from benchmarks.common import print_rows, row


def _model(size):
    """A small CNN with a one-unit sigmoid head."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(16, 3, activation="relu", padding="same", name="conv1"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu", padding="same", name="conv2"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu", padding="same", name="conv3"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(1, activation="sigmoid", name="head"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy", metrics=["accuracy"])
    return model


def _two_classes(count, size, seed):
    """Noise images with one patch each: reddish (class 0) or greenish (class 1), and masks."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.2, 0.8, (count, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    masks = np.zeros((count, size, size), bool)
    for i, label in enumerate(labels):
        side = rng.integers(size // 6, size // 3)
        top, left = rng.integers(0, size - side, 2)
        colour = rng.uniform(0.0, 0.3, 3)
        colour[label] = rng.uniform(0.8, 1.0)
        images[i, top : top + side, left : left + side] = colour
        masks[i, top : top + side, left : left + side] = True
    return images, labels.astype("int64"), masks


def measure(train, epochs, probes, size=64):
    """Train, then the mass on the object for class-0 probes under both targets."""
    import tb_cnnvis as cv
    from tb_cnnvis.algorithms import faithfulness

    x, y, _ = _two_classes(train, size, seed=0)
    px, py, pm = _two_classes(probes, size, seed=1)
    model = _model(size)
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    predicted = (model.predict(px, verbose=0)[:, 0] > 0.5).astype(int)
    right = (predicted == py) & (py == 0)
    cats, masks = px[right], pm[right]
    rows = [
        row(
            "targets",
            "training accuracy",
            history.history["accuracy"][-1],
            "",
            note=f"{train} images, {epochs} epochs",
        ),
        row(
            "targets",
            "class-0 probes classified right",
            int(right.sum()),
            "",
            note=f"of {int((py == 0).sum())} class-0 probes",
        ),
    ]
    if not right.any():
        return rows
    shares = {}  # mean share of the map's mass on the object, per target
    for name, target in (
        ("Binary(0): negated logit", cv.targets.Binary(0)),
        ("raw logit (0.2's score)", lambda z: z[:, 0]),
    ):
        maps = cv.grad_cam(model, cats, "conv3", target=target)
        mass = maps.sum(axis=(1, 2))
        share = np.where(mass > 0, (maps * masks).sum(axis=(1, 2)) / np.maximum(mass, 1e-12), 0)
        shares[name] = float(share.mean())
        hits = faithfulness.pointing_game(maps, masks, tolerance=15 / 224 * size).accuracy
        rows.append(
            row(
                "targets",
                f"{name}: map mass on the object",
                share.mean(),
                "",
                note=f"mean over {len(cats)} probes",
            )
        )
        rows.append(
            row(
                "targets",
                f"{name}: mass on the object / its area",
                share.mean() / masks.mean(),
                "x",
                "> 1" if "negated" in name else None,
                note="> 1: the map prefers the object",
            )
        )
        rows.append(row("targets", f"{name}: pointing game", hits, ""))
    return rows


def main(argv=None):
    """Run the benchmark, print its table and return its rows.

    Args:
        argv: command-line arguments (``--quick``, ``--train``, ``--epochs``); None reads
            ``sys.argv``.

    Returns:
        A list of rows (see ``benchmarks.common.row``).

    Example:
        >>> rows = main(["--quick"])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400 images, 4 epochs")
    parser.add_argument("--train", type=int, default=None, help="training images (1200)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (6)")
    args = parser.parse_args(argv)
    train = args.train or (400 if args.quick else 1200)
    epochs = args.epochs or (4 if args.quick else 6)
    rows = measure(train, epochs, probes=32)
    print_rows(f"targets benchmark: binary sigmoid head, {train} images, {epochs} epochs", rows)
    return rows


if __name__ == "__main__":
    main()

"""``tb-cnnvis``: the command line. ``tb-cnnvis log`` writes the cnnvis views of saved models.

``log`` visualizes a model saved with ``model.save("....keras")``, or a series of
checkpoints (a glob), after the fact: each checkpoint becomes one step, in checkpoint order
(natural sort: ``epoch_10`` after ``epoch_9``), numbered by the number in its file name
(the last one, e.g. 12 for ``epoch_12.keras``) when every file has a distinct one, else
0, 1, ... . The summaries are those ``CnnVisCallback`` writes during ``fit``; the command
drives the callback itself (``set_model`` and ``log_step`` per checkpoint).

Images come from a folder (png, jpg, gif, bmp; resized to the model's input size and
mapped to its input range; one subfolder per class gives labels, in name order) or a
``.npy`` array already in the model's scale. Mistakes (missing files, unreadable images, a
model without conv layers, ...) end the command with exit status 2 and a one-line message.

Example:
    $ tb-cnnvis log --model 'ckpt/epoch_*.keras' --images val/ --logdir logs
    $ python -m tb_cnnvis.cli log --model model.keras --images probes.npy --labels y.npy \\
          --logdir logs --views feature_maps grad_cam --layers conv1 conv2
"""

import argparse
import glob
import os
import re
import sys
import warnings
from pathlib import Path

from tb_cnnvis import views

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
"""Image files read from a folder."""

USAGE_ERROR = 2
"""Exit status for anything the user can fix (as argparse uses)."""


class UsageError(Exception):
    """A problem the user can fix; ``main`` prints it as one line and exits with status 2."""


def _cam_classes(text):
    """``--cam-classes``: an int K, or comma-separated class indices (``2,0``; ``2,`` for one)."""
    try:
        if "," in text:
            return [int(part) for part in text.split(",") if part.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int K or class indices like 2,0; got {text!r}"
        ) from None


def build_parser():
    """The argument parser of ``tb-cnnvis`` (subcommand ``log``)."""
    parser = argparse.ArgumentParser(
        prog="tb-cnnvis", description="Write cnnvis TensorBoard summaries for saved models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    log = commands.add_parser(
        "log",
        help="log the views of a saved model or a series of checkpoints",
        description=__doc__.split("\n\n")[1].replace("``", ""),
    )
    log.add_argument("--model", required=True, help="a .keras file or a glob of checkpoints")
    log.add_argument(
        "--step",
        type=int,
        help="the step (epoch) of a single model file (default: the last number in its "
        "name, else 0, which the dashboard shows as the untrained network)",
    )
    log.add_argument("--images", required=True, help="probe images: a folder or a .npy file")
    log.add_argument("--logdir", required=True, help="log directory (writes <logdir>/cnnvis)")
    log.add_argument("--labels", help=".npy of integer labels (default: from class subfolders)")
    log.add_argument("--class-names", help="comma-separated class names")
    log.add_argument("--masks", help=".npy of object masks (N, H, W) for the pointing game")
    log.add_argument("--reference", help="folder or .npy of images for the top examples")
    log.add_argument(
        "--views",
        nargs="+",
        choices=views.ALL_VIEWS,
        metavar="VIEW",
        help=f"views to log (default: the callback's): {', '.join(views.ALL_VIEWS)}",
    )
    log.add_argument("--layers", nargs="+", metavar="LAYER", help="layer names, paths or regexes")
    log.add_argument("--input-range", help="unit, byte, tf, torch, caffe or LOW,HIGH")
    log.add_argument("--max-probes", type=int, default=8)
    log.add_argument("--max-filters", type=int, default=8, help="filters per layer")
    log.add_argument("--filter-steps", type=int, help="optimization steps per filter pattern")
    log.add_argument("--filter-preset", choices=("fast", "quality", "maco"), default="fast")
    log.add_argument("--filter-diversity", type=int, default=1, help="patterns per filter")
    log.add_argument("--top-k", type=int, default=9)
    log.add_argument("--max-reference", type=int, default=500)
    log.add_argument("--cam-target", choices=("label", "predicted"), default="label")
    log.add_argument(
        "--cam-classes",
        type=_cam_classes,
        default=1,
        help="classes explained per probe: K (the K most probable) or a list like 2,0",
    )
    log.add_argument("--no-metrics", action="store_true", help="skip the per-step metrics")
    log.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Run ``tb-cnnvis`` with ``argv`` (default: the command line); return the exit status.

    Args:
        argv: the arguments after the program name, e.g. ``["log", "--model", ...]``.

    Returns:
        0 on success, 2 for a usage error (a one-line message on stderr).

    Example:
        >>> main(["log", "--model", "m.keras", "--images", "x.npy", "--logdir", "logs"])
        0
    """
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _log(args)
    except UsageError as error:
        print(f"tb-cnnvis: error: {error}", file=sys.stderr)
        return USAGE_ERROR


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning as one line."""
    print(f"tb-cnnvis: warning: {message}", file=sys.stderr)


def _log(args):
    """The ``log`` command."""
    checkpoints = find_checkpoints(args.model)
    if args.step is not None:
        if len(checkpoints) > 1:
            raise UsageError(
                f"--step is for one model file; --model {args.model!r} matches "
                f"{len(checkpoints)}, which take their steps from the numbers in their names."
            )
        if args.step < 0:
            raise UsageError(f"--step must be >= 0; got {args.step}.")
        checkpoints = [(checkpoints[0][0], args.step)]
    for option in ("images", "labels", "masks", "reference"):
        path = getattr(args, option)
        if path is not None and not os.path.exists(path):
            raise UsageError(f"--{option} {path!r} does not exist.")
    needing = [view for view in args.views or () if view in views.REFERENCE_VIEWS]
    if args.reference is None and needing:
        raise UsageError(f"--views {needing[0]} needs --reference (a folder or .npy of images).")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tb_cnnvis.callback import CnnVisCallback

    model = _load_model(checkpoints[0][0])
    shape, input_range = _image_spec(model, args.input_range)
    images, labels, names = read_images(args.images, shape, input_range, args.max_probes)
    if args.labels is not None:
        labels = _load_npy(args.labels, "labels")
    if args.class_names is not None:
        names = [name.strip() for name in args.class_names.split(",")]
    reference = None
    if args.reference is not None:
        reference, _, _ = read_images(args.reference, shape, input_range, args.max_reference)
    options = {
        "layers": args.layers,
        "views": args.views,
        "max_probes": args.max_probes,
        "max_filters_per_layer": args.max_filters,
        "filter_preset": args.filter_preset,
        "filter_steps": args.filter_steps,
        "filter_diversity": args.filter_diversity,
        "class_names": names,
        "input_range": input_range,
        "cam_target": args.cam_target,
        "cam_classes": args.cam_classes,
        "reference_images": reference,
        "top_k": args.top_k,
        "max_reference_images": args.max_reference,
        "probe_masks": None if args.masks is None else _load_npy(args.masks, "masks"),
        "metrics": not args.no_metrics,
        "budget": None,  # no training to keep pace with: every checkpoint in full
    }
    try:
        callback = CnnVisCallback(args.logdir, images, labels, **options)
    except ValueError as error:
        raise UsageError(str(error)) from None
    progress = keras.utils.Progbar(len(checkpoints), unit_name="checkpoint")
    try:
        for done, (path, step) in enumerate(checkpoints):
            model = model if done == 0 else _load_model(path)
            try:
                callback.set_model(model)
            except ValueError as error:
                raise UsageError(f"{path}: {error}") from None
            callback.log_step(step)
            if not args.quiet:
                progress.update(done + 1, finalize=done + 1 == len(checkpoints))
    finally:
        callback.close()
    steps = [step for _, step in checkpoints]
    if not args.quiet:
        print(f"tb-cnnvis: logged steps {steps} to {callback.run_dir}")
    return 0


def natural_key(text):
    """Sort key that orders the numbers inside ``text`` by value (``epoch_9`` < ``epoch_10``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in _split(text)]


def _split(text):
    """``text`` cut into runs of digits and of other characters."""
    return [part for part in re.split(r"(\d+)", str(text)) if part]


def find_checkpoints(pattern):
    """The model files matching ``pattern``, in natural order, with their steps.

    Args:
        pattern: a file path or a glob (``~`` is expanded).

    Returns:
        A list of ``(path, step)``: the step is the last number in the file's name when
        every file has a distinct one, else its position.

    Raises:
        UsageError: if nothing matches.

    Example:
        >>> find_checkpoints("ckpt/epoch_*.keras")
        [('ckpt/epoch_1.keras', 1), ('ckpt/epoch_2.keras', 2), ('ckpt/epoch_10.keras', 10)]
    """
    expanded = os.path.expanduser(pattern)
    paths = [p for p in glob.glob(expanded) if os.path.isfile(p)]
    if not paths:
        if glob.has_magic(expanded):
            raise UsageError(f"No model file matches --model {pattern!r}.")
        raise UsageError(f"Model file {pattern!r} does not exist.")
    paths.sort(key=lambda p: natural_key(os.path.basename(p)))
    numbers = [re.findall(r"\d+", Path(p).stem) for p in paths]
    steps = [int(found[-1]) if found else None for found in numbers]
    if None in steps or len(set(steps)) != len(steps):
        steps = list(range(len(paths)))
    return list(zip(paths, steps))


def _load_model(path):
    """``keras.saving.load_model(path)``, with load failures as usage errors."""
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # any failure to load is reported in one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"Cannot load model {path!r}: {first}") from None


def _image_spec(model, input_range):
    """The model's input (H, W, C) and its ``InputRange``."""
    from tb_cnnvis import capture
    from tb_cnnvis.input_range import InputRange

    try:
        shape = capture.input_shape(model)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if len(shape) != 3 or shape[-1] not in (1, 3) or None in shape[:2]:
        raise UsageError(
            f"Model {model.name!r} takes inputs of shape {shape}; tb-cnnvis needs a "
            "convolutional network on images (height, width, 1 or 3 channels)."
        )
    spec = input_range
    if isinstance(spec, str) and "," in spec:
        try:
            spec = tuple(float(v) for v in spec.split(","))
        except ValueError:
            raise UsageError(f"--input-range {input_range!r} is not LOW,HIGH numbers.") from None
    try:
        return shape, InputRange.resolve(spec, model)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _load_npy(path, what):
    """An array from a ``.npy`` file."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"Cannot read {what} from {path!r} (expected a .npy file): {error}"
        ) from None


def read_images(source, shape, input_range, limit):
    """Images in the model's scale from a ``.npy`` file or a folder, with labels if any.

    A folder with subfolders holds one class per subfolder (labels in name order, the
    classes taken in turn so that each one appears); otherwise its own image files are
    read, without labels. Files are read in natural order; at most ``limit`` of them.

    Args:
        source: a ``.npy`` file (used as it is) or a folder.
        shape: the model's input (H, W, C); images are resized to (H, W).
        input_range: the model's ``InputRange`` (display [0, 1] is mapped into it).
        limit: the most images read from a folder.

    Returns:
        ``(images float32 (N, H, W, C), labels int (N,) or None, class names or None)``.

    Raises:
        UsageError: for an empty folder, or a file that is not a readable image.

    Example:
        >>> images, labels, names = read_images("val/", (64, 64, 3), InputRange(), 8)
    """
    import numpy as np

    if not os.path.isdir(source):
        if not source.endswith(".npy"):
            raise UsageError(f"--images {source!r} must be a folder of images or a .npy file.")
        return _load_npy(source, "images").astype(np.float32), None, None
    root = Path(source)
    classes = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )
    groups = [_image_files(folder) for folder in classes] if classes else [_image_files(root)]
    picked = _in_turn(groups, limit)
    if not picked:
        where = f"{root}/<class>/" if classes else f"{root}/"
        raise UsageError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found in {where}.")
    pixels = np.stack([_read_image(path, shape) for path, _ in picked])
    images = np.asarray(input_range.from_unit(pixels), dtype=np.float32)
    if not classes:
        return images, None, None
    labels = np.array([label for _, label in picked], dtype=np.int64)
    return images, labels, [folder.name for folder in classes]


def _image_files(folder):
    """Image files directly in ``folder``, in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def _in_turn(groups, limit):
    """Up to ``limit`` ``(path, group index)`` taking one file of each group in turn."""
    picked, depth = [], 0
    while len(picked) < limit and any(depth < len(group) for group in groups):
        for label, group in enumerate(groups):
            if depth < len(group) and len(picked) < limit:
                picked.append((group[depth], label))
        depth += 1
    return picked


def _read_image(path, shape):
    """One image file as float32 (H, W, C) in [0, 1], resized to ``shape``."""
    import tensorflow as tf

    try:
        pixels = tf.io.decode_image(
            tf.io.read_file(str(path)), channels=shape[2], expand_animations=False
        )
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        raise UsageError(f"Cannot read image {str(path)!r}: not a PNG, JPEG, GIF or BMP.") from None
    unit = tf.cast(pixels, tf.float32) / 255.0
    if tuple(unit.shape[:2]) != tuple(shape[:2]):
        unit = tf.image.resize(unit, shape[:2], antialias=True)
    return tf.clip_by_value(unit, 0.0, 1.0).numpy()


if __name__ == "__main__":
    sys.exit(main())

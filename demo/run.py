"""The demo's command line: train with the cnnvis callback, then serve TensorBoard.

``make demo`` runs ``python -m demo.run --logdir demo/logs --port 6006``: it trains the demo
CNN on the generated shapes for a few minutes, writing Keras's scalars and the cnnvis views
to the log directory, then serves TensorBoard on http://127.0.0.1:6006 until Ctrl-C.

On your own images (a folder with one subfolder of images per class)::

    python -m demo.run --images photos/                      # train the demo CNN on them
    python -m demo.run --model my.keras --images photos/     # log views of your model
    python -m demo.run --model my.keras --images photos/ --epochs 3   # ... and fine-tune it

Each run replaces the ``train``, ``validation`` and ``cnnvis`` runs and ``model.keras`` of a
previous demo in the log directory (``--keep-logs`` keeps them); nothing else is touched.
"""

import argparse
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np

DEMO_EPOCHS = 15
OWN_RUNS = ("train", "validation", "cnnvis")
# Grad-CAM on the last convolution (8x8) rather than the last 4-D layer (pool4, 4x4).
DEMO_CNNVIS_OPTIONS = {"layers": {"grad_cam": "conv4"}, "filters_every_n_epochs": 5}


def parse_args(argv=None):
    """Parse the command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.run",
        description="Train a CNN while tb-cnnvis logs what it learns, then serve TensorBoard.",
    )
    parser.add_argument(
        "--logdir", default="demo/logs", help="log directory (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=6006, help="TensorBoard port (default: 6006)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs to train (default: {DEMO_EPOCHS}; 0 with --model: only log its views)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, split and weights")
    parser.add_argument("--n-train", type=int, default=10000, help="generated training images")
    parser.add_argument("--n-val", type=int, default=2000, help="generated validation images")
    parser.add_argument("--images", help="folder of your images, one subfolder per class")
    parser.add_argument("--model", help="a saved Keras model (.keras) to visualize")
    parser.add_argument(
        "--size", type=int, default=64, help="image size for --images without --model"
    )
    parser.add_argument("--no-serve", action="store_true", help="train only, do not serve")
    parser.add_argument("--keep-logs", action="store_true", help="keep a previous demo's runs")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 0 if args.model else DEMO_EPOCHS
    if args.epochs < 0:
        parser.error(f"--epochs must be >= 0; got {args.epochs}")
    if args.model and not Path(args.model).is_file():
        parser.error(f"--model {args.model!r} is not a file; expected a saved .keras model")
    if args.images and not Path(args.images).is_dir():
        parser.error(
            f"--images {args.images!r} is not a folder; expected a folder with one subfolder "
            "of images per class"
        )
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535; got {args.port}")
    return args


def clear_previous_runs(logdir):
    """Remove the runs and model a previous demo wrote to ``logdir``; return what was removed."""
    removed = []
    for name in OWN_RUNS:
        path = os.path.join(logdir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
            removed.append(name)
    model_path = os.path.join(logdir, "model.keras")
    if os.path.isfile(model_path):
        os.remove(model_path)
        removed.append("model.keras")
    return removed


def run_training(args):
    """Load what the arguments name, train (or log only) and return the ``TrainResult``."""
    import keras

    from demo.train import load_image_folder, train

    model = keras.saving.load_model(args.model) if args.model else None
    options = dict(DEMO_CNNVIS_OPTIONS) if model is None else {}
    kwargs = {}
    if args.images:
        size = model.input_shape[1] if model is not None else args.size
        try:
            images, labels, names = load_image_folder(args.images, size=size)
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(f"error: {error}") from None
        print(f"Read {len(labels)} images of {len(names)} classes from {args.images}: {names}")
        kwargs = {"images": images, "labels": labels, "class_names": names}
    elif model is not None:
        from demo.shapes import CLASS_NAMES, make_shapes

        images, labels, _ = make_shapes(args.n_train + args.n_val, model.input_shape[1], args.seed)
        kwargs = {"images": images, "labels": labels, "class_names": CLASS_NAMES}
    if model is not None:
        kwargs["class_names"] = _fit_class_names(model, kwargs["class_names"], args.epochs)
    if not args.keep_logs:
        removed = clear_previous_runs(args.logdir)
        if removed:
            print(f"Replaced the previous demo's {', '.join(removed)} in {args.logdir}")
    return train(
        args.logdir,
        epochs=args.epochs,
        n_train=args.n_train,
        n_val=args.n_val,
        seed=args.seed,
        model=model,
        cnnvis_options=options,
        **kwargs,
    )


def _fit_class_names(model, names, epochs):
    """The class names if they match the model's outputs; an error or None otherwise."""
    outputs = model.output_shape[-1]
    if outputs == len(names):
        return names
    if epochs > 0:
        raise SystemExit(
            f"error: the model has {outputs} outputs but the images have {len(names)} classes "
            f"({', '.join(names)}); fine-tuning needs one output per class."
        )
    print(
        f"Note: the model has {outputs} outputs, the images {len(names)} classes; the views "
        "are logged without class names."
    )
    return None


def check_port(host, port):
    """Raise SystemExit now, before training, if ``host:port`` cannot be listened on."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        raise SystemExit(
            f"error: cannot serve TensorBoard on {host}:{port} ({error}); choose another "
            "--port (make demo PORT=...) or --host, or pass --no-serve"
        ) from None


def serve(logdir, host, port):
    """Start TensorBoard on ``host:port`` in this process; return its URL."""
    from tensorboard import program

    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", logdir, "--host", host, "--port", str(port)])
    return board.launch()


def main(argv=None):
    """Run the demo: train (or log) into ``--logdir``, then serve TensorBoard until Ctrl-C."""
    args = parse_args(argv)
    if not args.no_serve:
        check_port(args.host, args.port)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run_training(args)
    if result.epoch_seconds:
        accuracy = (
            ""
            if result.val_accuracy is None
            else f", validation accuracy {result.val_accuracy:.3f}"
        )
        print(
            f"Trained {len(result.epoch_seconds)} epochs in {result.seconds:.0f} s "
            f"(visualizations included; median epoch "
            f"{float(np.median(result.epoch_seconds)):.1f} s){accuracy}."
        )
    print(f"Logs in {args.logdir}; model saved to {result.model_path}")
    if args.no_serve:
        return 0
    from tensorboard import program

    try:
        url = serve(args.logdir, args.host, args.port)
    except program.TensorBoardServerException as error:  # e.g. the port is in use
        print(
            f"error: cannot serve TensorBoard on {args.host}:{args.port}: {error}; try "
            "another --port, or view the logs with: tensorboard --logdir "
            f"{args.logdir}",
            file=sys.stderr,
        )
        return 1
    print(f"TensorBoard at {url}#cnnvis  (open the 'cnnvis' tab; Ctrl-C to stop)", flush=True)
    try:
        while True:  # short naps: Ctrl-C may reach another thread, then the nap ends it
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("Stopped.")
    exit_now(0)


def exit_now(code):
    """End the process with ``code`` at once, skipping interpreter finalization.

    The in-process TensorBoard talks to its data server over gRPC, whose daemon polling
    threads may wake while Python finalizes and abort the process ("FATAL: exception not
    rethrown", exit -6, about one run in six here; grpc/grpc#11804 is the family of
    that bug). Training is over, the callback has closed its writers and the model is
    saved, so nothing is left to finalize but those threads. Streams are flushed first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

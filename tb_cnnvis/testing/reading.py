"""Reading a cnnvis log back, as TensorBoard does: data providers and the stored format's decoders.

Example:
    >>> steps = read_run(logdir)
    >>> facts, pngs = steps["grad_cam/conv2"][3]
    >>> tiles = decode_tiles(facts, pngs)
"""

import json
import os

import numpy as np

from tb_cnnvis import blobstore, imaging, metadata


def decode_step(blob_values, run_dir=None):
    """Split one stored step (a sequence of blobs) into its facts and its PNG bytes.

    Args:
        blob_values: the step's blobs: a list of bytes, a numpy array or a string tensor.
        run_dir: the run's directory, needed for a step whose PNGs (format version 2) or
            facts and PNGs (version 3) are in a pixel file (``tb_cnnvis.blobstore``); steps
            written with the PNGs inside the event files (version 1) need none.

    Returns:
        ``(facts, pngs)``: the facts dict (without the ``"pixels"`` reference) and the list
        of PNG bytes, in order.

    Raises:
        ValueError: if the blobs do not follow the format (no facts, wrong image count), or
            a pixel file is needed and ``run_dir`` is None.
        tb_cnnvis.blobstore.DamagedPixels: the pixel file is missing or damaged.

    Example:
        >>> blobs = [provider.read_blob(ctx, blob_key=b.blob_key) for b in datum.values]
        >>> facts, pngs = decode_step(blobs, run_dir="logs/cnnvis")
    """
    if hasattr(blob_values, "numpy"):
        blob_values = blob_values.numpy()
    blobs = [bytes(b) for b in np.asarray(blob_values, dtype=object).reshape(-1)]
    if not blobs:
        raise ValueError("A cnnvis step needs at least one blob (the facts); got none.")
    try:
        facts = json.loads(blobs[0].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"The first blob of a cnnvis step is not JSON facts: {error}") from None
    reference = blobstore.facts_reference(facts)
    if reference is not None:  # format 3: the facts are in the step's pixel file too
        if run_dir is None:
            raise ValueError("This step's facts are in a pixel file (format 3): pass run_dir.")
        import tensorflow as tf

        raw = blobstore.read_span(tf.io.gfile, blobstore.plugin_dir(run_dir), *reference)
        facts = json.loads(raw.decode("utf-8"))
        if isinstance(facts.get("pixels"), dict):  # its PNGs are in the same file
            facts["pixels"]["file"] = reference[0]
    pixels = facts.pop("pixels", None) if isinstance(facts, dict) else None
    pngs = blobs[1:]
    if pixels is not None:
        if run_dir is None:
            raise ValueError("This step's PNGs are in a pixel file (format 2): pass run_dir.")
        import tensorflow as tf

        folder = blobstore.plugin_dir(run_dir)
        pngs = [
            blobstore.read_span(tf.io.gfile, folder, pixels["file"], s) for s in pixels["spans"]
        ]
    if len(facts.get("images", ())) != len(pngs):
        raise ValueError(
            f"facts describe {len(facts.get('images', ()))} images but {len(pngs)} follow."
        )
    return facts, pngs


def decode_tiles(facts, pngs):
    """Decode every PNG of a step and cut atlases into tiles.

    Returns:
        A list with one uint8 array (count, h, w, channels) per PNG.
    """
    tiles = []
    for image, png in zip(facts["images"], pngs):
        pixels = imaging.decode_png(png)
        tiles.append(imaging.untile_atlas(pixels, image["grid"], image["tile"], image["count"]))
    return tiles


def recover_feature_maps(facts, pngs):
    """Approximate (N, h, w, C) float32 feature maps back from a stored ``feature_maps`` step.

    Values are within ``(max - min) / 510`` of the originals (the 8-bit quantization).
    """
    tiles = decode_tiles(facts, pngs)
    pixels = np.stack([np.moveaxis(t[..., 0], 0, -1) for t in tiles]).astype(np.float64)
    low = np.asarray(facts["min"], dtype=np.float64)[:, None, None, :]
    high = np.asarray(facts["max"], dtype=np.float64)[:, None, None, :]
    return (low + pixels / 255.0 * (high - low)).astype(np.float32)


def data_provider(logdir, samples_per_plugin=None):
    """A TensorBoard data provider over ``logdir``, built (and sampling) as TensorBoard does.

    Uses ``LocalDataIngester`` with TensorBoard's flag defaults, loads once, and returns
    ``(provider, ctx, experiment_id)``: the request context and experiment id that every
    ``list_*``/``read_*`` call needs.

    Args:
        logdir: the log directory.
        samples_per_plugin: e.g. ``{"cnnvis": 1000}``; default keeps TensorBoard's own
            (10 blob-sequence samples per tag in the Python loader).

    Example:
        >>> provider, ctx, eid = data_provider(logdir, {"cnnvis": 1000})
        >>> provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name="cnnvis")
    """
    import argparse

    from tensorboard import context
    from tensorboard.backend.event_processing import data_ingester

    flags = argparse.Namespace(
        logdir=logdir,
        logdir_spec="",
        samples_per_plugin=dict(samples_per_plugin or {}),
        purge_orphaned_data=True,
        max_reload_threads=1,
        reload_multifile=None,
        reload_multifile_inactive_secs=86400,
        detect_file_replacement=None,
        reload_interval=0,
        reload_task="blocking",
    )
    ingester = data_ingester.LocalDataIngester(flags)
    ingester.start()
    return ingester.data_provider, context.RequestContext(), ""


def read_run(logdir, run=metadata.RUN_SUBDIR, skip_damaged=False):
    """Every cnnvis step of ``run``, decoded: ``{tag: {step: (facts, [png bytes])}}``.

    Reads through ``data_provider`` with every step kept.

    Args:
        logdir: the log directory.
        run: the run's name (its directory relative to ``logdir``).
        skip_damaged: leave out the steps whose PNGs cannot be read (a pixel file missing,
            as after a write that failed, or damaged), as the plugin does, instead of raising.

    Raises:
        tb_cnnvis.blobstore.DamagedPixels: a pixel file is missing or damaged (unless
            ``skip_damaged``).

    Example:
        >>> steps = read_run(logdir)
        >>> facts, pngs = steps["grad_cam/conv2"][3]
    """
    provider, ctx, eid = data_provider(str(logdir), {metadata.PLUGIN_NAME: 0})
    blobs = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1_000_000
    ).get(run, {})
    run_dir = os.path.join(str(logdir), run)
    found = {}
    for tag, series in blobs.items():
        for datum in series:
            values = [provider.read_blob(ctx, blob_key=value.blob_key) for value in datum.values]
            try:
                found.setdefault(tag, {})[datum.step] = decode_step(values, run_dir)
            except blobstore.DamagedPixels:
                if not skip_damaged:
                    raise
    return {tag: steps for tag, steps in found.items() if steps}

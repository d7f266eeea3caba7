"""Reading a cnnvis log back, as TensorBoard does: data providers and the stored format's decoders.

Example:
    >>> steps = read_run(logdir)
    >>> facts, pngs = steps["grad_cam/conv2"][3]
    >>> tiles = decode_tiles(facts, pngs)
"""

import json

import numpy as np

from tb_cnnvis import imaging, metadata


def decode_step(blob_values):
    """Split one stored step (a sequence of blobs) into its facts and its PNG bytes.

    Args:
        blob_values: the step's blobs: a list of bytes, a numpy array or a string tensor.

    Returns:
        ``(facts, pngs)``: the facts dict and the list of PNG bytes, in order.

    Raises:
        ValueError: if the blobs do not follow the format (no facts, wrong image count).

    Example:
        >>> facts, pngs = decode_step([provider.read_blob(blob_key=b.blob_key) for b in seq])
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
    if len(facts.get("images", ())) != len(blobs) - 1:
        raise ValueError(
            f"facts describe {len(facts.get('images', ()))} images but {len(blobs) - 1} follow."
        )
    return facts, blobs[1:]


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


def read_run(logdir, run=metadata.RUN_SUBDIR):
    """Every cnnvis step of ``run``, decoded: ``{tag: {step: (facts, [png bytes])}}``.

    Reads through ``data_provider`` with every step kept.

    Example:
        >>> steps = read_run(logdir)
        >>> facts, pngs = steps["grad_cam/conv2"][3]
    """
    provider, ctx, eid = data_provider(str(logdir), {metadata.PLUGIN_NAME: 0})
    blobs = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1_000_000
    ).get(run, {})
    return {
        tag: {
            datum.step: decode_step(
                [provider.read_blob(ctx, blob_key=value.blob_key) for value in datum.values]
            )
            for datum in series
        }
        for tag, series in blobs.items()
    }

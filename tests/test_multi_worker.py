"""Two worker processes on 127.0.0.1 train one model with MultiWorkerMirroredStrategy.

Keras 3's own ``fit`` fails under ``MultiWorkerMirroredStrategy`` in this TensorFlow
(keras-team/keras#20585: "Attempt to convert a value (PerReplica...)"), with or without
callbacks, so the workers train with a custom loop (``strategy.run`` with the gradients
all-reduced across workers) and call the callback's hooks as ``fit`` would.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tb_cnnvis import metadata
from tb_cnnvis.testing import data_provider

WORKER = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
index, cluster, logdir = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
import numpy as np, tensorflow as tf
import keras, models
from tb_cnnvis import CnnVisCallback

strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = models.sequential()
    optimizer = keras.optimizers.Adam()
losses = keras.losses.SparseCategoricalCrossentropy(reduction="none")
x = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
y = np.arange(32) % 3
data = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(8))

@tf.function
def train_step(batch):
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = losses(labels, model(images, training=True))
            loss = tf.nn.compute_average_loss(loss, global_batch_size=8)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    return strategy.reduce("SUM", strategy.run(step, args=batch), axis=None)

callback = CnnVisCallback(logdir, x[:2], y[:2], filters_every_n_epochs=1, filter_steps=2,
                          max_filters_per_layer=2, budget=None)  # exact steps, any speed
callback.set_model(model)
callback.set_params({"epochs": 2})
callback.on_train_begin()
for epoch in range(2):
    callback.on_epoch_begin(epoch)
    for batch in data:
        loss = train_step(batch)
    callback.on_epoch_end(epoch)
callback.on_train_end()
print(json.dumps({"worker": index, "chief": callback._chief, "loss": float(loss)}))
"""


def _ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes_each_epoch_once(logdir, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _ports(2)]}
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), json.dumps(cluster), logdir],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=240)  # a worker left waiting would hang here
            assert worker.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            worker.kill()
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["loss"] == results[1]["loss"]  # one model, trained together
    assert os.listdir(logdir) == [metadata.RUN_SUBDIR]
    run_files = os.listdir(os.path.join(logdir, metadata.RUN_SUBDIR))
    assert len([name for name in run_files if "tfevents" in name]) == 1  # one event file
    provider, ctx, eid = data_provider(logdir, {metadata.PLUGIN_NAME: 1000})
    blobs = provider.read_blob_sequences(
        ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )
    assert list(blobs) == [metadata.RUN_SUBDIR]
    for tag, series in blobs[metadata.RUN_SUBDIR].items():
        expected = [0] if tag == "probes" else [0, 1, 2]
        assert [datum.step for datum in series] == expected, tag

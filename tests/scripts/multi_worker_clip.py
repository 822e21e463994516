"""One worker of two (``TF_CONFIG`` set by the test): a sparse, clipped step under
MultiWorkerMirroredStrategy, where worker 0's gradient touches rows {0, 1} and worker 1's rows
{4, 5}. Prints the embedding's row norms as JSON: every worker must clip all four rows."""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402

from optrun import VariableClippingOptimizer  # noqa: E402

START = (np.random.default_rng(1).normal(size=(8, 3)) * 3).astype("float32")  # every row's norm > 1
TASK = int(json.loads(os.environ["TF_CONFIG"])["task"]["index"])

with strategy.scope():
    table = keras.Variable(START, name="table")
    opt = VariableClippingOptimizer(keras.optimizers.SGD(0.0), [(table, [1])], max_norm=1.0)
    opt.build([table])


@tf.function
def step() -> None:
    def replica() -> None:
        rows = tf.constant([0, 1] if TASK == 0 else [4, 5])
        grad = tf.IndexedSlices(tf.zeros([2, 3]), rows, tf.constant([8, 3]))
        opt.apply_gradients([(grad, table)])

    strategy.run(replica)


step()
print(json.dumps(np.linalg.norm(table.numpy(), axis=1).tolist()))

"""Run by tests/test_wrappers_keras.py in a fresh process: two logical CPUs must be set up
before TensorFlow initializes its devices. Prints JSON: weights and averages, mirrored vs single
(with the argument ``sparse``: an embedding's copies after one sparse, clipped step)."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from optrun import MovingAverageOptimizer, VariableClippingOptimizer  # noqa: E402


def train(strategy: tf.distribute.Strategy) -> list[list]:
    with strategy.scope():
        keras.utils.set_random_seed(3)
        net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        opt = MovingAverageOptimizer(
            VariableClippingOptimizer(keras.optimizers.SGD(0.1, momentum=0.5), {"d/kernel": [0]}, 0.5), 0.5
        )
        opt.build(net.trainable_weights)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor) -> None:
        def replica(xb: tf.Tensor, yb: tf.Tensor) -> None:
            with tf.GradientTape() as tape:
                per_example = tf.reduce_mean(tf.square(net(xb) - yb), axis=1)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=8)
            grads = tape.gradient(loss, net.trainable_weights)
            opt.apply_gradients(zip(grads, net.trainable_weights, strict=True))

        strategy.run(replica, args=(xb, yb))

    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
    for xb, yb in dataset:
        step(xb, yb)
    weights = net.trainable_weights
    return [w.numpy().tolist() for w in weights] + [opt.average(w).numpy().tolist() for w in weights]


#: An embedding whose every row has norm > 1, clipped to 1 along its rows.
START = (np.random.default_rng(1).normal(size=(8, 3)) * 3).astype("float32")


def sparse(strategy: tf.distribute.Strategy) -> list[list]:
    """One step of ``fit`` on ids [[0, 1], [4, 5]]: with 2 replicas, each sees one pair of rows.
    Returns each replica's copy of the embedding (one copy on one device)."""
    with strategy.scope():
        start_at = keras.initializers.Constant(START)
        net = keras.Sequential(
            [
                keras.Input((2,), dtype="int32"),
                keras.layers.Embedding(8, 3, name="e", embeddings_initializer=start_at),
                keras.layers.Flatten(),
                keras.layers.Dense(1, kernel_initializer="ones"),
            ]
        )
        opt = VariableClippingOptimizer(keras.optimizers.SGD(0.01), {"e/embeddings": [1]}, max_norm=1.0)
        net.compile(optimizer=opt, loss="mse")
    ids = np.array([[0, 1], [4, 5]], "int32")
    net.fit(ids, np.zeros((2, 1), "float32"), batch_size=2, epochs=1, verbose=0, shuffle=False)
    table = net.layers[0].embeddings.value
    copies = getattr(table, "values", None) or [table]
    return [c.numpy().tolist() for c in copies]


# One case per process: a second MirroredStrategy's collectives can meet the first one's keys
# (TensorFlow's "Shape mismatch in the collective instance"), whatever the optimizer.
if sys.argv[1:] == ["sparse"]:
    found = {
        "mirrored": sparse(tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])),
        "single": sparse(tf.distribute.OneDeviceStrategy("CPU:0")),
        "start": START.tolist(),
    }
else:
    found = {
        "mirrored": train(tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])),
        "single": train(tf.distribute.OneDeviceStrategy("CPU:0")),
    }
print(json.dumps(found))

"""Run by tests/test_wrappers_keras.py in a fresh process: two logical CPUs must be set up
before TensorFlow initializes its devices. Prints JSON: weights and averages, mirrored vs single."""

from __future__ import annotations

import json
import os

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


mirrored = train(tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]))
single = train(tf.distribute.OneDeviceStrategy("CPU:0"))
print(json.dumps({"mirrored": mirrored, "single": single}))

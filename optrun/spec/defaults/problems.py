"""The user-side functions of the built-in experiments, written as a user would write them.

minimize: the seed's constrained example, v = [7, 7], min |v|^2 with
v[1] == 1 and v[0] >= 1; the answer is [1, 1].

train: a small MLP regression on data generated here, trained with the
moving average and max-norm clipping.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


def constrained_vector() -> tf.Variable:
    """The variable of the seed's example."""
    return tf.Variable([7.0, 7.0], dtype=tf.float64, name="v")


def sum_of_squares(v: tf.Variable) -> tf.Tensor:
    """Loss: |v|^2."""
    return tf.reduce_sum(tf.square(v))


def second_is_one(v: tf.Variable) -> tf.Tensor:
    """Equality: v[1] - 1 == 0."""
    return v[1] - 1.0


def first_at_least_one(v: tf.Variable) -> tf.Tensor:
    """Inequality: v[0] - 1 >= 0."""
    return v[0] - 1.0


def mlp(hidden: int = 32) -> keras.Model:
    """A 2-layer MLP for 4 inputs."""
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hidden, activation="tanh", name="hidden"),
            keras.layers.Dense(1, name="out"),
        ]
    )


def regression_data(n: int = 512, batch_size: int = 32, noise: float = 0.05, seed: int = 0) -> Any:
    """y = sin(x . w) + noise, shuffled once with ``seed``; a finite tf.data.Dataset of (x, y)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    w = np.array([0.5, -1.0, 0.25, 0.8], dtype="float32")
    y = (np.sin(x @ w) + noise * rng.normal(size=n)).astype("float32")[:, None]
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)

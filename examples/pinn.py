"""A physics-informed network for u'(t) = -u(t), u(0) = 1 on [0, 2]; exact: u = exp(-t).

Fitted full-batch with L-BFGS-B over the network's weights (``optrun minimize``).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

T = tf.constant(np.linspace(0.0, 2.0, 64)[:, None], tf.float64)  # collocation points
T0 = tf.zeros([1, 1], tf.float64)


def network(hidden: int = 16) -> keras.Model:
    """1 -> hidden -> hidden -> 1, tanh, float64."""
    return keras.Sequential(
        [
            keras.Input((1,), dtype="float64"),
            keras.layers.Dense(hidden, activation="tanh", dtype="float64", name="h1"),
            keras.layers.Dense(hidden, activation="tanh", dtype="float64", name="h2"),
            keras.layers.Dense(1, dtype="float64", name="u"),
        ]
    )


def residual_loss(model: keras.Model) -> tf.Tensor:
    """mean (u' + u)^2 over the collocation points + (u(0) - 1)^2."""
    with tf.GradientTape() as tape:
        tape.watch(T)
        u = model(T)
    du = tape.gradient(u, T)
    return tf.reduce_mean(tf.square(du + u)) + tf.reduce_sum(tf.square(model(T0) - 1.0))


def max_error(model: keras.Model) -> float:
    """max |u(t) - exp(-t)| on the collocation points (for checks)."""
    return float(tf.reduce_max(tf.abs(model(T) - tf.exp(-T))))


def collocation(n: int = 4096, batch: int = 1024) -> tf.data.Dataset:
    """``n`` collocation points on [0, 2] in batches of ``batch``: the data of a full-batch fit."""
    points = np.linspace(0.0, 2.0, n)[:, None]
    return tf.data.Dataset.from_tensor_slices(points).batch(batch)


def residual_share(model: keras.Model, t: tf.Tensor, n: int = 4096) -> tf.Tensor:
    """One batch's share of ``residual_loss`` over ``n`` points: sum (u' + u)^2 / n, plus its
    rows' share of the boundary term, rows / n * (u(0) - 1)^2.

    Summed over every batch (``minimize.data: {reduction: sum}``), and over the replicas a
    strategy splits each batch into, that is mean (u' + u)^2 + (u(0) - 1)^2.
    """
    with tf.GradientTape() as tape:
        tape.watch(t)
        u = model(t)
    du = tape.gradient(u, t)
    rows = tf.cast(tf.shape(t)[0], tf.float64)
    boundary = tf.reduce_sum(tf.square(model(T0) - 1.0))
    return (tf.reduce_sum(tf.square(du + u)) + rows * boundary) / n

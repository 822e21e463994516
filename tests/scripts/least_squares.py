"""A full-batch least-squares problem for the spec tests: 203 rows of 4 features, float64.

The data is ``np.random.default_rng(7)``'s, as the tests rebuild it with numpy.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def build() -> tf.Variable:
    """The model: the weights w, starting at 0."""
    return tf.Variable(np.zeros(4), name="w")


def data(batch: int) -> tf.data.Dataset:
    """(x, y) batches of ``batch`` rows (the last one shorter when it does not divide 203)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(203, 4))
    y = x @ np.array([1.0, -2.0, 3.0, 0.5]) + 0.1 * rng.normal(size=203)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def loss(w: tf.Variable, batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
    """The batch's sum of squared residuals."""
    x, y = batch
    return tf.reduce_sum((tf.linalg.matvec(x, w) - y) ** 2)


def residual_sum(w: tf.Variable, batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
    """The batch's sum of residuals (a per-batch constraint)."""
    x, y = batch
    return tf.reduce_sum(tf.linalg.matvec(x, w) - y)


def model_only(w: tf.Variable) -> tf.Tensor:
    """A constraint of the model alone: wrong where a per-batch one is expected."""
    return w[0]

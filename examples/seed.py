"""The seed's two examples (tf.contrib.opt's ScipyOptimizerInterface docs) as user code."""

from __future__ import annotations

import tensorflow as tf


def vector(start: float = 7.0) -> tf.Variable:
    """v = [start, start]."""
    return tf.Variable([start, start], dtype=tf.float64, name="vector")


def sum_of_squares(v: tf.Variable) -> tf.Tensor:
    """|v|^2."""
    return tf.reduce_sum(tf.square(v))


def y_is_one(v: tf.Variable) -> tf.Tensor:
    """Equality: v[1] - 1 == 0."""
    return v[1] - 1.0


def x_at_least_one(v: tf.Variable) -> tf.Tensor:
    """Inequality: v[0] - 1 >= 0."""
    return v[0] - 1.0

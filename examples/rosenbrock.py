"""Rosenbrock's function over one variable of n dimensions."""

from __future__ import annotations

import tensorflow as tf


def point(n: int = 10) -> tf.Variable:
    """x = 0 in n dimensions."""
    return tf.Variable(tf.zeros([n], tf.float64), name="x")


def rosenbrock(x: tf.Variable) -> tf.Tensor:
    """sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2; minimum 0 at all ones."""
    return tf.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

"""A tiny regression for the sweep tests: a small MLP fit to a fixed linear target by a few SGD steps.

``fail=True`` makes the builder raise, as a broken user module would, so a trial can fail on purpose.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def build_model(hidden: int = 4, fail: bool = False) -> keras.Model:
    """One tanh layer and a linear head; raises when asked to."""
    if fail:
        raise ValueError("asked to fail (model.params.fail)")
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(hidden, activation="tanh", name="hidden"),
            keras.layers.Dense(1, name="head"),
        ]
    )


def make_data(n: int = 256, batch_size: int = 32, seed: int = 0) -> tf.data.Dataset:
    """(x, y) batches of y = x . (1, -2, 0.5), repeated without end."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(batch_size)

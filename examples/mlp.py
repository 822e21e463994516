"""MLP regression: y = sin(x . w) + noise, generated here."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def build_model(inputs: int = 8, hidden: int = 64) -> keras.Model:
    """Two hidden tanh layers."""
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(hidden, activation="tanh", name="hidden1"),
            keras.layers.Dense(hidden, activation="tanh", name="hidden2"),
            keras.layers.Dense(1, name="head"),
        ]
    )


def make_data(inputs: int = 8, n: int = 2048, batch_size: int = 64, seed: int = 0) -> tf.data.Dataset:
    """A finite dataset of (x, y) batches; reshuffled each pass with a fixed seed."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    w = rng.normal(size=(inputs,)).astype("float32") / np.sqrt(inputs)
    y = (np.sin(2.0 * x @ w) + 0.05 * rng.normal(size=n)).astype("float32")[:, None]
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    return dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(batch_size)

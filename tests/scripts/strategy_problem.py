"""A tiny regression for the tf.distribute tests: a model and a dataset of global batches."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def arrays(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (n, 3) and targets (n, 2), float32."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = np.stack([np.sin(x[:, 0] + x[:, 1]), x[:, 2] ** 2], axis=1).astype("float32")
    return x, y


def build_model(linear: bool = False) -> keras.Model:
    """linear: one Dense layer starting at 0.1 everywhere; else a small tanh net."""
    if linear:
        layers = [keras.layers.Dense(2, name="head", kernel_initializer=keras.initializers.Constant(0.1))]
    else:
        layers = [
            keras.layers.Dense(4, activation="tanh", name="hidden"),
            keras.layers.Dense(2, name="head"),
        ]
    return keras.Sequential([keras.Input((3,)), *layers])


def make_data(
    n: int = 40, batch_size: int = 8, shuffle: bool = False, seed: int = 0, nan_row: int | None = None
) -> tf.data.Dataset:
    """(x, y) batches of batch_size rows (the last one smaller when n does not divide); a NaN input
    in row ``nan_row`` when given."""
    x, y = arrays(n, seed)
    if nan_row is not None:
        x[nan_row, 0] = np.nan
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)


def as_list(n: int = 16, batch_size: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same batches as a plain list (not a tf.data.Dataset)."""
    x, y = arrays(n)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]

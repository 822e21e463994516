"""An embedding model whose rows get sparse updates, clipped to a max norm row by row.

Each item id has a hidden score; the model learns it through a 16-d embedding.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def build_model(items: int = 5000, dim: int = 16) -> keras.Model:
    """Embedding -> mean over the bag -> linear score."""
    return keras.Sequential(
        [
            keras.Input((4,), dtype="int32"),
            keras.layers.Embedding(items, dim, name="embedding"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, name="score"),
        ]
    )


def make_data(items: int = 5000, n: int = 4096, batch_size: int = 128, seed: int = 0) -> tf.data.Dataset:
    """Bags of 4 item ids; the target is the mean of the items' hidden scores."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=items).astype("float32")
    ids = rng.integers(0, items, size=(n, 4)).astype("int32")
    y = scores[ids].mean(axis=1, keepdims=True)
    return tf.data.Dataset.from_tensor_slices((ids, y)).batch(batch_size)

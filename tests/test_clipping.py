"""VariableClippingOptimizer: the seed's worked numbers, dense and sparse, plus chaining."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import MovingAverageOptimizer, VariableClippingOptimizer

DTYPES = [("float16", 1e-3), ("float32", 1e-6), ("float64", 1e-6)]
CLIPPED_ROW = [1.0656265, 1.6924657]  # [1.7, 2.7] * 2 / ||[1.7, 2.7]||


def clip_np(x: np.ndarray, max_norm: float, axis: int) -> np.ndarray:
    """Independent reference: numpy max-norm along ``axis``."""
    norm = np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
    return x * max_norm / np.maximum(norm, max_norm)


@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_dense_clipping(dtype: str, tol: float) -> None:
    var0 = tf.Variable(np.array([[0.0, 1.0], [2.0, 3.0]]), dtype=dtype)
    var1 = tf.Variable(np.array([4.0, 5.0]), dtype=dtype)
    opt = VariableClippingOptimizer(keras.optimizers.SGD(3.0), {var0.ref(): [1]}, 2.0)
    opt.apply_gradients(
        [(tf.fill([2, 2], tf.constant(0.1, dtype)), var0), (tf.constant([0.01, 0.01], dtype), var1)]
    )
    np.testing.assert_allclose(var0.numpy(), [[-0.3, 0.7], CLIPPED_ROW], atol=tol)
    np.testing.assert_allclose(
        var1.numpy(), [3.97, 4.97], atol=tol, rtol=tol
    )  # float16 spacing at 5 is 0.004
    np.testing.assert_allclose(
        var0.numpy().astype(np.float64), clip_np(np.array([[-0.3, 0.7], [1.7, 2.7]]), 2.0, 1), atol=tol
    )


@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_sparse_clipping(dtype: str, tol: float, caplog: pytest.LogCaptureFixture) -> None:
    var0 = tf.Variable(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), dtype=dtype, name="rows")
    var1 = tf.Variable(np.array([[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]]), dtype=dtype, name="cols")
    opt = VariableClippingOptimizer(keras.optimizers.SGD(3.0), [(var0, [1]), (var1, [0])], 2.0)
    grad = tf.IndexedSlices(
        tf.fill([2, 2], tf.constant(0.1, dtype)), tf.constant([0, 2]), tf.constant([3, 2])
    )
    with caplog.at_level(logging.WARNING, logger="optrun"):
        opt.apply_gradients([(grad, var0), (grad, var1)])
    # Row 1 keeps its norm of 3.6: it was not touched.
    np.testing.assert_allclose(
        var0.numpy(), [[-0.3, 0.7], [2.0, 3.0], [1.23712, 1.57148]], atol=max(tol, 1e-5)
    )
    np.testing.assert_allclose(
        var1.numpy(), [[-0.3, 0.24913], [0.0, 1.06769], [-0.3, 1.67271]], atol=max(tol, 1e-5)
    )
    assert "'cols'" in caplog.text and "densely" in caplog.text
    assert "'rows'" not in caplog.text


def test_sparse_duplicate_indices_clip_once() -> None:
    var = tf.Variable(np.array([[3.0, 4.0], [0.0, 1.0]]))
    opt = VariableClippingOptimizer(keras.optimizers.SGD(1.0), [(var, [1])], 1.0)
    grad = tf.IndexedSlices(
        tf.constant([[0.0, 0.0], [0.0, 0.0]], tf.float64), tf.constant([0, 0]), tf.constant([2, 2])
    )
    opt.apply_gradients([(grad, var)])
    np.testing.assert_allclose(var.numpy(), [[0.6, 0.8], [0.0, 1.0]], atol=1e-12)


def test_names_and_errors() -> None:
    layer = keras.layers.Dense(3, name="proj")
    layer.build((None, 4))
    opt = VariableClippingOptimizer(keras.optimizers.SGD(0.1), {"proj/kernel": [0]}, 1.0)
    opt.apply_gradients([(tf.ones((4, 3)), layer.kernel), (tf.ones((3,)), layer.bias)])
    assert opt.clip_dims(layer.kernel) == (0,)
    assert opt.clip_dims(layer.bias) is None
    assert np.all(np.linalg.norm(layer.kernel.numpy(), axis=0) <= 1.0 + 1e-6)

    bad = VariableClippingOptimizer(keras.optimizers.SGD(0.1), {"proj/kernal": [0]}, 1.0)
    with pytest.raises(optrun.UnknownVariableError, match="known names: 'proj/kernel', 'proj/bias'"):
        bad.apply_gradients([(tf.ones((4, 3)), layer.kernel), (tf.ones((3,)), layer.bias)])
    with pytest.raises(optrun.InvalidArgumentError, match="max_norm must be > 0; got -1"):
        VariableClippingOptimizer(keras.optimizers.SGD(0.1), {}, -1)
    wrong_dims = VariableClippingOptimizer(keras.optimizers.SGD(0.1), {"proj/bias": [1]}, 1.0)
    with pytest.raises(optrun.InvalidArgumentError, match=r"dims \[1\], but the variable has rank 1"):
        wrong_dims.build([layer.kernel, layer.bias])


def test_chaining_average_outside() -> None:
    var0 = tf.Variable(np.array([[0.0, 1.0], [2.0, 3.0]]))
    clip = VariableClippingOptimizer(keras.optimizers.SGD(3.0), {var0.ref(): [1]}, 2.0)
    opt = MovingAverageOptimizer(clip, average_decay=0.5)
    opt.apply_gradients([(tf.fill([2, 2], tf.constant(0.1, tf.float64)), var0)])
    np.testing.assert_allclose(var0.numpy(), [[-0.3, 0.7], CLIPPED_ROW], atol=1e-6)
    # The average sees the clipped value: 0.5 * (start + clipped).
    expected = 0.5 * (np.array([[0.0, 1.0], [2.0, 3.0]]) + np.array([[-0.3, 0.7], CLIPPED_ROW]))
    np.testing.assert_allclose(opt.average(var0).numpy(), expected, atol=1e-6)


def test_chaining_average_inside() -> None:
    var0 = tf.Variable(np.array([[0.0, 1.0], [2.0, 3.0]]))
    ema = MovingAverageOptimizer(keras.optimizers.SGD(3.0), average_decay=0.5)
    opt = VariableClippingOptimizer(ema, {var0.ref(): [1]}, 2.0)
    opt.apply_gradients([(tf.fill([2, 2], tf.constant(0.1, tf.float64)), var0)])
    np.testing.assert_allclose(var0.numpy(), [[-0.3, 0.7], CLIPPED_ROW], atol=1e-6)
    # The average saw the unclipped SGD result [1.7, 2.7] in row 1.
    np.testing.assert_allclose(ema.average(var0).numpy(), [[-0.15, 0.85], [1.85, 2.85]], atol=1e-6)

"""A loss with side effects runs exactly once per point, in every ``jit_compile`` mode.

The default mode checks its thin call path and its XLA tier by evaluating some points twice.
For a loss that changes state (a counter, Keras' moving statistics, a random draw, a
``tf.print``, a pass over a dataset) that would show: such a loss is called through the public
call only and the XLA tier is never built, so a counter in it ends equal to ``nfev``.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun.evaluation.side_effects import side_effect

N = 30


def _rosen(v: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)


def _judged(loss: object, variables: list[tf.Variable]) -> str:
    backend = optrun.ScipyOptimizerInterface(loss, var_list=variables, jit_compile=False)._backend
    return side_effect(backend.trace()[1], variables)


@pytest.mark.parametrize("jit", [None, True, False])
def test_a_counter_in_the_loss_counts_each_evaluation_once(
    jit: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTRUN_TIER2", "now")  # a pure loss would build XLA from the first point
    v = tf.Variable(np.zeros(N))
    counter = tf.Variable(0, dtype=tf.int64)

    def loss() -> tf.Tensor:
        counter.assign_add(1)
        return _rosen(v)

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=jit, options={"maxiter": 2000})
    result = opt.minimize()
    assert int(counter.numpy()) == result.nfev > 100
    np.testing.assert_allclose(result.x, np.ones(N), atol=1e-4)  # Rosenbrock's minimum, by hand
    if jit is None:
        assert result.tiers["evaluations"] == {"plain": result.nfev, "xla": 0}
        assert "side effect (AssignAddVariableOp" in result.tiers["note"]


def test_a_python_counter_in_a_py_function_counts_each_evaluation_once() -> None:
    v = tf.Variable(np.zeros(N))
    calls = []

    def tick() -> np.float64:
        calls.append(1)
        return np.float64(0.0)

    def loss() -> tf.Tensor:
        return _rosen(v) + tf.py_function(tick, [], tf.float64)

    result = optrun.ScipyOptimizerInterface(loss, var_list=[v], options={"maxiter": 50}).minimize()
    assert len(calls) == result.nfev
    # Without var_list the loss also runs once, eagerly, at construction, to find its variables.
    calls.clear()
    v.assign(np.zeros(N))
    result = optrun.ScipyOptimizerInterface(loss, options={"maxiter": 50}).minimize()
    assert len(calls) == result.nfev + 1


def test_tf_print_keeps_the_default_off_xla_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    v = tf.Variable([2.0, 3.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        tf.print("loss evaluated", output_stream="file:///dev/null")
        return tf.reduce_sum(tf.square(v - 1.0))

    with caplog.at_level(logging.WARNING, logger="optrun"):
        result = optrun.ScipyOptimizerInterface(loss).minimize()
    assert caplog.records == []
    assert "side effect (PrintV2" in result.tiers["note"]
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-6)


def test_what_counts_as_a_side_effect() -> None:
    v = tf.Variable(np.zeros(5))
    table = tf.Variable(np.ones((10, 5)))
    counter = tf.Variable(0.0, dtype=tf.float64)
    lookup = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a"], [2]), default_value=0)

    @tf.function
    def nested() -> tf.Tensor:
        return tf.reduce_sum(v**2)

    @tf.function
    def nested_counting() -> tf.Tensor:
        counter.assign_add(1.0)
        return tf.reduce_sum(v**2)

    pure = {
        "arithmetic": lambda: tf.reduce_sum((1.0 - v) ** 2),
        "a read of another variable": lambda: tf.reduce_sum((tf.gather(table, [1, 2]) - v) ** 2),
        "a nested tf.function": lambda: nested(),
        "tf.cond": lambda: tf.cond(v[0] > 0, lambda: tf.reduce_sum(v**2), lambda: tf.reduce_sum(v)),
        "check_numerics": lambda: tf.debugging.check_numerics(tf.reduce_sum(v**2), "loss"),
        "a lookup table": lambda: tf.reduce_sum(v**2) * tf.cast(lookup.lookup(tf.constant("a")), tf.float64),
    }
    for name, loss in pure.items():
        assert _judged(loss, [v]) == "", name
    effects = {
        "AssignAddVariableOp": lambda: nested_counting(),
        "RandomStandardNormal": lambda: tf.reduce_sum((v - tf.random.normal([5], dtype=tf.float64)) ** 2),
    }
    for op, loss in effects.items():
        assert _judged(loss, [v]).startswith(f"{op} '"), op


def test_keras_training_mode_updates_its_statistics_once_per_point() -> None:
    keras.utils.set_random_seed(0)
    x = tf.constant(np.linspace(-1.0, 1.0, 16).reshape(8, 2), tf.float32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    dense, norm = model.layers
    batch_mean = (x.numpy() @ dense.kernel.numpy() + dense.bias.numpy()).mean(axis=0)

    def loss() -> tf.Tensor:
        return tf.reduce_mean((model(x, training=True) - 1.0) ** 2)

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[norm.gamma, norm.beta], options={"maxiter": 5})
    result = opt.minimize()
    # The dense layer is fixed, so each evaluation moves the moving mean from m to
    # 0.99 m + 0.01 batch_mean: after k evaluations from 0 it is batch_mean (1 - 0.99**k).
    k = np.log(1.0 - norm.moving_mean.numpy() / batch_mean) / np.log(0.99)
    np.testing.assert_allclose(k, result.nfev, atol=0.05)
    assert result.tiers["evaluations"]["xla"] == 0

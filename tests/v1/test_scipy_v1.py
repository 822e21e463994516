"""ExternalOptimizerInterface / ScipyOptimizerInterface on tf.compat.v1 graphs and sessions.

TF1's own test scenarios for these classes, written against ``optrun.X`` where
they said ``tf.contrib.opt.X``; expected numbers are worked out by hand.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import optrun
from tests.conftest import rosen_np


def var(value: Any, use_resource: bool, name: str = "vector", dtype: Any = tf.float32) -> Any:
    return tf.compat.v1.Variable(value, name=name, dtype=dtype, use_resource=use_resource)


def rosenbrock(x: Any) -> Any:
    return tf.reduce_sum(100.0 * tf.square(x[1:] - tf.square(x[:-1])) + tf.square(1.0 - x[:-1]))


class Mock(optrun.ExternalOptimizerInterface):
    """TF1's mock: two loss calls, five unconditional step calls, then one gradient step."""

    def _minimize(self, initial_val, loss_grad_func, step_callback, optimizer_kwargs, **unused):  # type: ignore[no-untyped-def, override]
        for _ in range(2):
            loss_grad_func(initial_val)
        for _ in range(5):
            step_callback(initial_val)
        _, grad = loss_grad_func(initial_val)
        return initial_val - grad


def test_mock_subclass_moves_each_variable_to_its_minimum(sess: Any, use_resource: bool) -> None:
    scalar = var(tf.random.normal([], seed=1), use_resource, "scalar")
    vector = var(tf.random.normal([2], seed=2), use_resource, "vector")
    matrix = var(tf.random.normal([2, 3], seed=3), use_resource, "matrix")
    target = tf.constant(np.arange(9), tf.float32)
    loss = tf.reduce_sum(tf.square(vector - target[:2])) / 2.0
    loss += tf.reduce_sum(tf.square(scalar - target[2])) / 2.0
    loss += tf.reduce_sum(tf.square(matrix - tf.reshape(target[3:], [2, 3]))) / 2.0
    opt = Mock(loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)  # no step_callback: the mock calls it anyway
    np.testing.assert_allclose(sess.run(vector), [0.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(sess.run(scalar), 2.0, atol=1e-5)
    np.testing.assert_allclose(sess.run(matrix), np.arange(6).reshape(2, 3) + 3, atol=1e-5)


def test_mock_callbacks(sess: Any, use_resource: bool) -> None:
    start = np.array([7.0, -2.0], np.float32)
    vector = var(start, use_resource)
    loss = tf.reduce_sum(tf.square(vector - tf.constant([0.0, 1.0]))) / 2.0
    opt = Mock(loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    step_callback, loss_callback = mock.Mock(), mock.Mock()
    opt.minimize(sess, fetches=[loss], loss_callback=loss_callback, step_callback=step_callback)
    loss_callback.assert_has_calls([mock.call(29.0)] * 2)  # 0.5 * (7^2 + 3^2), on every request
    assert step_callback.call_count == 5
    np.testing.assert_allclose(step_callback.call_args[0][0], start)


def _method(sess: Any, use_resource: bool, method: str, options: dict, tol: float, n: int = 5) -> None:
    x = var(tf.zeros(n), use_resource, "x")
    opt = optrun.ScipyOptimizerInterface(rosenbrock(x), method=method, options=options)
    sess.run(tf.compat.v1.global_variables_initializer())
    result = opt.minimize(sess)
    np.testing.assert_allclose(sess.run(x), np.ones(n), rtol=tol, atol=tol)
    assert rosen_np(np.asarray(result.x)) == pytest.approx(float(result.fun), abs=1e-4)


@pytest.mark.parametrize(
    ("method", "options", "tol", "n"),
    [
        ("L-BFGS-B", {}, 1e-5, 5),
        ("BFGS", {}, 1e-5, 5),
        ("Powell", {}, 1e-5, 5),
        ("Nelder-Mead", {}, 1e-3, 5),  # TF1 said 1e-4; scipy >= 1.x stops at ~2e-4 in numpy too
        ("Newton-CG", {"eps": 1e-3, "xtol": 1e-5}, 1e-3, 5),
        ("TNC", {"gtol": -5, "maxiter": 1000}, 1e-1, 5),  # TF1's maxiter: scipy's maxfun now
        ("COBYLA", {"maxiter": 9000}, 1e-1, 2),
        ("SLSQP", {}, 1e-3, 5),
        ("CG", {"gtol": 1e-3}, 1e-3, 5),
    ],
)
def test_scipy_methods_on_rosenbrock(
    sess: Any, use_resource: bool, method: str, options: dict, tol: float, n: int
) -> None:
    _method(sess, use_resource, method, options, tol, n)


def test_nonlinear_programming(sess: Any, use_resource: bool) -> None:
    vector = var([7.0, 7.0], use_resource)
    opt = optrun.ScipyOptimizerInterface(
        tf.reduce_sum(tf.square(vector)),
        equalities=[vector[1] - 1.0],
        inequalities=[vector[0] - 1.0],
        method="SLSQP",
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    result = opt.minimize(sess)
    np.testing.assert_allclose(sess.run(vector), [1.0, 1.0], atol=1e-5)
    assert result.success and result.fun == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [((1.0, np.inf), [1.0, 1.0]), (([None, 2.0], None), [0.0, 2.0])],
    ids=["scalar", "vector-with-None"],
)
def test_bounds_keyed_by_the_variable(sess: Any, use_resource: bool, bounds: Any, expected: list) -> None:
    vector = var([7.0, 7.0], use_resource)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(vector)), var_to_bounds={vector: bounds})
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(vector), expected, atol=1e-5)


def test_optimizer_kwargs_survive_minimize(sess: Any, use_resource: bool) -> None:
    vector = var([7.0, 7.0], use_resource)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(vector)), method="SLSQP")
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    assert opt.optimizer_kwargs.get("method") == "SLSQP"


def test_callbacks_see_first_and_last_loss(sess: Any, use_resource: bool) -> None:
    vector = var(np.array([7.0, -2.0], np.float32), use_resource)
    loss = tf.reduce_sum(tf.square(vector - tf.constant([0.0, 1.0]))) / 2.0
    opt = optrun.ScipyOptimizerInterface(loss, method="SLSQP")
    sess.run(tf.compat.v1.global_variables_initializer())
    step_callback, loss_callback = mock.Mock(), mock.Mock()
    opt.minimize(sess, fetches=[loss], loss_callback=loss_callback, step_callback=step_callback)
    last = sess.run(loss)
    loss_callback.assert_has_calls([mock.call(29.0), mock.call(last)], any_order=True)
    np.testing.assert_allclose(step_callback.call_args[0][0], [0.0, 1.0], atol=1e-5)

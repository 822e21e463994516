"""ExternalOptimizerInterface / ScipyOptimizerInterface on tf.compat.v1 graphs and sessions.

TF1's own test scenarios for these classes, written against ``optrun.X`` where
they said ``tf.contrib.opt.X``; expected numbers are worked out by hand.
"""

from __future__ import annotations

import warnings
from typing import Any
from unittest import mock

import numpy as np
import pytest
import scipy.optimize
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


class GradientDescent10(optrun.ExternalOptimizerInterface):
    """A subclass written for TF 1.0, whose ``_minimize`` had no ``packed_bounds``."""

    def _minimize(  # type: ignore[no-untyped-def, override]
        self,
        initial_val,
        loss_grad_func,
        equality_funcs,
        equality_grad_funcs,
        inequality_funcs,
        inequality_grad_funcs,
        step_callback,
        optimizer_kwargs,
    ):
        x = initial_val
        for _ in range(100):
            x = x - 0.1 * loss_grad_func(x)[1]
            step_callback(x)
        return x


def test_a_tf10_subclass_without_packed_bounds(sess: Any, use_resource: bool) -> None:
    v = var([7.0, 7.0], use_resource)
    loss = tf.reduce_sum(tf.square(v - 3.0))
    opt = GradientDescent10(loss)
    sess.run(v.initializer)
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(v), [3.0, 3.0], atol=1e-6)  # x <- x - 0.2 (x - 3), 100 times
    before = len(sess.graph.get_operations())
    with pytest.raises(optrun.InvalidArgumentError, match=r"_minimize takes no packed_bounds"):
        GradientDescent10(loss, var_to_bounds={v: (0.0, 1.0)})
    assert len(sess.graph.get_operations()) == before


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


@pytest.mark.parametrize("method", ["BFGS", "CG", "Nelder-Mead", "Powell", "L-BFGS-B"])
def test_float32_variables_give_tf1s_path_bit_for_bit(sess: Any, use_resource: bool, method: str) -> None:
    """TF1 handed scipy session.run's float32 start point and loss (the gradient cast to float64);
    methods such as BFGS keep working in x0's dtype, so the path (nfev, x) is TF1's only so."""
    v = var([7.0, -3.0], use_resource)
    loss = tf.reduce_sum(tf.square(v - [1.0, 2.0])) + 0.01 * tf.reduce_sum(tf.square(v)) ** 2
    grad = tf.gradients(loss, [v])[0]
    value = tf.compat.v1.placeholder(tf.float32, [2])
    assign = v.assign(value)

    def tf1(point: np.ndarray) -> tuple[Any, Any]:  # TF1's algorithm: one session.run per request
        sess.run(assign, {value: point})
        f, g = sess.run([loss, grad])
        return f, g.astype("float64")  # as TF1's wrapper: "L-BFGS-B requires gradients as doubles"

    sess.run(v.initializer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TF1 passed jac=True to every method: scipy warns for some
        expected = scipy.optimize.minimize(tf1, sess.run(v), jac=True, method=method)
    sess.run(v.initializer)
    got = optrun.ScipyOptimizerInterface(loss, method=method).minimize(sess)
    assert got.nfev == expected.nfev
    np.testing.assert_array_equal(sess.run(v), np.asarray(expected.x, np.float32))


@pytest.mark.parametrize("form", ["pairs", "array", "Bounds"])
def test_scipys_own_bounds_and_callback_as_tf10_passed_them(sess: Any, use_resource: bool, form: str) -> None:
    # TF 1.0 had no var_to_bounds: bounds= (one pair per element) and callback= went to scipy.
    v = var([7.0, 7.0], use_resource)
    given = [(4.0, 10.0), (None, 2.0)]
    bounds = {
        "pairs": given,
        "array": np.array([[4.0, 10.0], [-np.inf, 2.0]]),  # (n, 2), as scipy takes it too
        "Bounds": scipy.optimize.Bounds([4.0, -np.inf], [10.0, 2.0]),
    }[form]
    seen: list[np.ndarray] = []
    loss = tf.reduce_sum(tf.square(v - 3.0))
    opt = optrun.ScipyOptimizerInterface(loss, bounds=bounds, callback=seen.append)
    assert opt.optimizer_kwargs["bounds"] is bounds  # kept as given, as TF1 kept them
    sess.run(v.initializer)
    steps: list[np.ndarray] = []
    result = opt.minimize(sess, step_callback=steps.append)
    np.testing.assert_allclose(sess.run(v), [4.0, 2.0])  # by hand: 3 clipped into [4, 10] and (-inf, 2]
    assert result.nit == len(seen) == len(steps) > 0
    with pytest.raises(optrun.InvalidArgumentError, match="not both"):
        optrun.ScipyOptimizerInterface(tf.reduce_sum(v), bounds=given, var_to_bounds={v: (0.0, 1.0)})


@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC"])  # scipy wraps the one, not the other
def test_a_callback_in_scipys_newer_style(sess: Any, use_resource: bool, method: str) -> None:
    v = var([7.0, 7.0], use_resource)
    seen: list[Any] = []

    def callback(intermediate_result: Any) -> None:  # scipy >= 1.11's style
        seen.append(intermediate_result)

    sess.run(v.initializer)
    steps: list[np.ndarray] = []
    loss = tf.reduce_sum(tf.square(v - 3.0))
    opt = optrun.ScipyOptimizerInterface(loss, method=method, callback=callback)
    opt.minimize(sess, step_callback=steps.append)
    assert len(seen) == len(steps) > 0
    np.testing.assert_allclose(steps[-1], [3.0, 3.0], atol=1e-4)  # by hand: the minimum
    if method == "L-BFGS-B":  # scipy's OptimizeResult; TNC passes the bare x
        assert seen[-1].fun == pytest.approx(0.0, abs=1e-10)


def test_bounds_of_a_variable_not_optimized_are_ignored_as_tf1_did(
    sess: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # min (w - 3)^2 elementwise with w in [1, 5]: w = 3; v's bounds go unused (TF1 looked up
    # only the variables it optimized), with one warning that says so.
    w = tf.compat.v1.Variable([0.0, 10.0], name="w")
    v = tf.compat.v1.Variable([0.0], name="v")
    loss = tf.reduce_sum(tf.square(w - 3.0)) + tf.reduce_sum(v)
    with caplog.at_level("WARNING", logger="optrun"):
        opt = optrun.ScipyOptimizerInterface(loss, var_list=[w], var_to_bounds={w: (1.0, 5.0), v: (0.0, 1.0)})
    assert "var_to_bounds bounds 'v', which is not optimized here: ignored, as TF1 did" in caplog.text
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(w), [3.0, 3.0], atol=1e-6)
    # A name that matches nothing is still refused: it cannot be another variable's.
    with pytest.raises(optrun.UnknownVariableError, match="'nope', which matches no variable"):
        optrun.ScipyOptimizerInterface(loss, var_list=[w], var_to_bounds={"nope": (0.0, 1.0)})


def test_a_numpy_array_of_two_rows_is_a_low_high_pair(sess: Any) -> None:
    # TF1 read bounds[0] and bounds[1]: np.array([-1, 1]) bounds every element to [-1, 1].
    a = tf.compat.v1.Variable([[5.0, -5.0], [0.5, 3.0]])
    opt = optrun.ScipyOptimizerInterface(
        tf.reduce_sum(tf.square(a - 4.0 * tf.sign(a))), var_to_bounds={a: np.array([-1.0, 1.0])}
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(a), [[1.0, -1.0], [1.0, 1.0]], atol=1e-6)


def test_a_sparse_placeholder_is_fed_as_session_run_feeds_it(sess: Any) -> None:
    # min sum((w - dense(sp))^2): w becomes the fed sparse tensor's dense value.
    w = tf.compat.v1.Variable([0.0, 0.0, 0.0])
    sp = tf.compat.v1.sparse_placeholder(tf.float32, [3])
    loss = tf.reduce_sum(tf.square(w - tf.sparse.to_dense(sp)))
    opt = optrun.ScipyOptimizerInterface(loss, options={"gtol": 1e-10, "ftol": 0.0})
    sess.run(tf.compat.v1.global_variables_initializer())
    for feed, expected in (
        (tf.compat.v1.SparseTensorValue([[1]], [7.0], [3]), [0.0, 7.0, 0.0]),
        (([[2]], [5.0], [3]), [0.0, 0.0, 5.0]),  # the triple session.run takes too
    ):
        opt.minimize(sess, feed_dict={sp: feed})
        np.testing.assert_allclose(sess.run(w), expected, atol=1e-5)
    with pytest.raises(optrun.InvalidArgumentError, match=r"SparseTensorValue or an \(indices, values"):
        opt.minimize(sess, feed_dict={sp: 3.0})

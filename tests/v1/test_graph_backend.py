"""The graph backend's own contract: feeds, sessions, no graph growth, errors, the fast path."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import optrun
from optrun.errors import InvalidArgumentError, InvalidTypeError, NotReadyError, UnsupportedMethodError


def var(value: Any, use_resource: bool, name: str = "v", dtype: Any = tf.float32) -> Any:
    return tf.compat.v1.Variable(value, name=name, dtype=dtype, use_resource=use_resource)


def path_of(opt: Any) -> str:
    return opt._cache._evaluator.path


def test_feed_dict_reaches_placeholders_only_constraints_read(sess: Any, use_resource: bool) -> None:
    v = var([5.0, 5.0], use_resource)
    target = tf.compat.v1.placeholder(tf.float32, [2], name="target")
    floor = tf.compat.v1.placeholder(tf.float32, [], name="floor")  # read by the inequality only
    loss = tf.reduce_sum(tf.square(v - target))
    opt = optrun.ScipyOptimizerInterface(loss, inequalities=[v[0] - floor], method="SLSQP")
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess, feed_dict={target: [0.0, 3.0], floor: 2.0})
    np.testing.assert_allclose(sess.run(v), [2.0, 3.0], atol=1e-5)  # by hand: x0 held >= 2
    opt.minimize(sess, feed_dict={target: [4.0, -1.0], floor: 2.0})  # a second set of feeds
    np.testing.assert_allclose(sess.run(v), [4.0, -1.0], atol=1e-5)


def test_no_graph_growth_after_first_minimize(sess: Any, use_resource: bool) -> None:
    v = var([3.0, -2.0], use_resource)
    scale = tf.compat.v1.placeholder(tf.float32, [])
    loss = scale * tf.reduce_sum(tf.square(v - 1.0))
    opt = optrun.ScipyOptimizerInterface(loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    seen: list[float] = []
    opt.minimize(sess, feed_dict={scale: 1.0}, fetches=[loss], loss_callback=seen.append)
    sess.graph.finalize()  # any new op would now raise
    sess.run(v.initializer)  # back to the start: the same op as before finalize
    opt.minimize(sess, feed_dict={scale: 2.0}, fetches=[loss], loss_callback=seen.append)
    opt.minimize(sess, feed_dict={scale: 3.0})
    np.testing.assert_allclose(sess.run(v), [1.0, 1.0], atol=1e-5)
    assert seen[0] == pytest.approx(13.0)  # 1 * (2^2 + 3^2)
    assert 26.0 in [pytest.approx(s) for s in seen]  # restarted at the initializer, scale 2


def test_default_session_and_fetching_a_variable(use_resource: bool) -> None:
    graph = tf.Graph()
    with graph.as_default():
        v = var([4.0], use_resource)
        opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - 0.5)))
        values: list[np.ndarray] = []
        with tf.compat.v1.Session() as sess:
            sess.run(v.initializer)
            result = opt.minimize(fetches=[v], loss_callback=values.append)  # the default session
            assert result.success
            np.testing.assert_allclose(sess.run(v), [0.5], atol=1e-6)
            np.testing.assert_allclose(values[0], [4.0])


def test_a_variable_as_the_loss(sess: Any, use_resource: bool) -> None:
    # The loss is the variable's own tensor, the one a reference variable's value is fed to.
    v = var(1.5, use_resource, dtype=tf.float64)
    loss = v.op.outputs[0] if not use_resource else v.read_value()
    opt = optrun.ScipyOptimizerInterface(loss, var_to_bounds={v: (-1.0, 2.0)}, method="L-BFGS-B")
    sess.run(v.initializer)
    seen: list[tuple[float, float]] = []
    result = opt.minimize(sess, fetches=[v, loss], loss_callback=lambda a, b: seen.append((a, b)))
    assert result.fun == -1.0 and sess.run(v) == -1.0  # the lower bound, by hand
    assert seen[0] == (1.5, 1.5)


def test_a_fed_tensor_as_the_loss_and_a_fetch(sess: Any, use_resource: bool) -> None:
    # The loss is a placeholder_with_default that feed_dict feeds: its value is the fed one.
    v = var([3.0], use_resource, dtype=tf.float64)
    loss = tf.compat.v1.placeholder_with_default(tf.reduce_sum(tf.square(v - 1.0)), [])
    opt = optrun.ScipyOptimizerInterface(loss, method="Nelder-Mead", options={"maxiter": 3})
    sess.run(v.initializer)
    seen: list[float] = []
    result = opt.minimize(sess, feed_dict={loss: 5.0}, fetches=[loss], loss_callback=seen.append)
    assert result.fun == 5.0 and seen and all(float(s) == 5.0 for s in seen)


def test_function_path_serves_and_matches_the_session(sess: Any, use_resource: bool) -> None:
    """The cut-out XLA function must give the session's numbers, also for a variable outside var_list."""
    x = var(np.zeros(6), use_resource, "x", tf.float64)
    shift = var(1.0, use_resource, "shift", tf.float64)  # read, not optimized: an extra input
    loss = tf.reduce_sum(100.0 * tf.square(x[1:] - tf.square(x[:-1])) + tf.square(shift - x[:-1]))
    sess.run(tf.compat.v1.global_variables_initializer())
    opt = optrun.ScipyOptimizerInterface(loss, var_list=[x], jit_compile=True)
    opt.minimize(sess)
    assert path_of(opt) == "function"
    np.testing.assert_allclose(sess.run(x), np.ones(6), atol=1e-4)
    ev = opt._cache._evaluator
    point = np.linspace(-1.0, 1.0, 6)
    fast, reference = ev._fast(point), ev._reference(point)
    np.testing.assert_allclose(fast[0], reference[0], rtol=1e-9)


@pytest.mark.parametrize("session_run", ["inline", "pool"])
def test_jit_compile_false_gives_tf1s_numbers(
    sess: Any, use_resource: bool, session_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jit_compile=False is TF1's way throughout: every point a session run, the path TF1's bit for
    bit, whether its ops run on the calling thread or in the session's pool."""
    monkeypatch.setenv("OPTRUN_SESSION_RUN", session_run)
    x = var(np.full(6, -0.5), use_resource, "x", tf.float64)
    loss = tf.reduce_sum(100.0 * tf.square(x[1:] - tf.square(x[:-1])) + tf.square(1.0 - x[:-1]))
    grad = tf.gradients(loss, [x])[0]
    value = tf.compat.v1.placeholder(tf.float64, [6])
    assign = x.assign(value)
    sess.run(x.initializer)
    start = sess.run(x)
    options = {"maxiter": 400, "ftol": 0.0, "gtol": 0.0}

    def tf1(point: np.ndarray) -> tuple[float, np.ndarray]:  # TF1's own algorithm, independently
        sess.run(assign, {value: point})
        return tuple(sess.run([loss, grad]))  # type: ignore[return-value]

    expected = scipy.optimize.minimize(tf1, start, jac=True, method="L-BFGS-B", options=options)
    sess.run(x.initializer)
    opt = optrun.ScipyOptimizerInterface(loss, jit_compile=False, options=options)
    got = opt.minimize(sess)
    assert got.tiers["evaluations"] == {"session": got.nfev}
    assert got.nfev == expected.nfev > 50
    np.testing.assert_array_equal(got.x, expected.x)
    np.testing.assert_array_equal(sess.run(x), expected.x)


def test_a_later_minimize_reports_the_trusted_function(sess: Any, use_resource: bool) -> None:
    x = var([3.0, -2.0], use_resource, "x", tf.float64)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(x - 1.0)), jit_compile=True)
    sess.run(x.initializer)
    opt.minimize(sess)
    sess.run(x.initializer)
    second = opt.minimize(sess)
    # Checked and trusted at the first minimize's points: the second serves it from its first point.
    assert second.tiers["evaluations"] == {"function": second.nfev}
    np.testing.assert_allclose(sess.run(x), [1.0, 1.0], atol=1e-6)


def test_random_ops_fall_back_to_the_session(sess: Any, use_resource: bool) -> None:
    v = var([2.0], use_resource)
    noise = tf.random.uniform([], 0.0, 1e-3, seed=7)  # differs per run: the function cannot agree
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v)) + noise, method="Powell")
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    assert path_of(opt) == "session"
    assert abs(sess.run(v)[0]) < 0.1


@pytest.mark.parametrize("method", ["trust-constr", "COBYLA", "SLSQP"])
def test_constrained_methods(sess: Any, use_resource: bool, method: str) -> None:
    v = var([7.0, 7.0], use_resource)
    opt = optrun.ScipyOptimizerInterface(
        tf.reduce_sum(tf.square(v)), equalities=[v[1] - 1.0], inequalities=[v[0] - 1.0], method=method
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(v), [1.0, 1.0], atol=1e-3)


@pytest.mark.parametrize("form", ["ref", "pairs", "name"])
def test_bounds_in_every_form(sess: Any, use_resource: bool, form: str) -> None:
    v = var([7.0, 7.0], use_resource, "alpha")
    bound = (1.0, None)
    bounds = {"ref": {v.ref(): bound}, "pairs": [(v, bound)], "name": {"alpha": bound}}[form]
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v)), var_to_bounds=bounds)
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(v), [1.0, 1.0], atol=1e-6)


def test_mixed_dtypes(sess: Any, use_resource: bool) -> None:
    a = var([4.0, 4.0], use_resource, "a", tf.float32)
    b = var([[4.0]], use_resource, "b", tf.float64)
    loss = tf.reduce_sum(tf.square(tf.cast(a, tf.float64) - 1.0)) + tf.reduce_sum(tf.square(b + 2.0))
    opt = optrun.ScipyOptimizerInterface(loss, inequalities=[tf.cast(a[0], tf.float64) - 2.0])
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run(a), [2.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(sess.run(b), [[-2.0]], atol=1e-8)


def test_unused_variable_warns(sess: Any, use_resource: bool, caplog: pytest.LogCaptureFixture) -> None:
    used, unused = var([3.0], use_resource, "used"), var([5.0], use_resource, "unused")
    with caplog.at_level(logging.WARNING, logger="optrun"):
        opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(used)))  # var_list: both trainables
    assert "'unused'" in caplog.text
    sess.run(tf.compat.v1.global_variables_initializer())
    opt.minimize(sess)
    np.testing.assert_allclose(sess.run([used, unused]), [[0.0], [5.0]], atol=1e-6)


def test_a_constraint_without_a_gradient_is_named(
    sess: Any, use_resource: bool, caplog: pytest.LogCaptureFixture
) -> None:
    v = var([0.5, 0.5], use_resource, "v")
    flat = tf.cast(tf.numpy_function(lambda a: a[0] - 1.0, [v], tf.float32), tf.float32)
    with caplog.at_level(logging.WARNING, logger="optrun"):
        opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v)), equalities=[flat, v[0] + v[1]])
    assert opt.ungraded_constraints == ("equalities[0]",)
    assert "equalities[0] gets no gradient from any variable" in caplog.text


# ----- errors: each a clear message, and the user's graph left as it was --------------------


def test_errors_name_the_problem(sess: Any, use_resource: bool) -> None:
    v = var([1.0, 2.0], use_resource)
    loss = tf.reduce_sum(tf.square(v))
    first = v[0]
    before = len(sess.graph.get_operations())
    with pytest.raises(UnsupportedMethodError, match="cannot handle equality"):
        optrun.ScipyOptimizerInterface(loss, equalities=[first], method="L-BFGS-B")
    with pytest.raises(InvalidArgumentError, match="maxiterr"):
        optrun.ScipyOptimizerInterface(loss, options={"maxiterr": 5})
    with pytest.raises(InvalidArgumentError, match="pair per element of the packed vector \\(2\\)"):
        optrun.ScipyOptimizerInterface(loss, bounds=[(0, 1)] * 3)
    with pytest.raises(InvalidArgumentError, match="must return a scalar; got shape \\[2\\]"):
        optrun.ScipyOptimizerInterface(loss, inequalities=[v])
    with pytest.raises(InvalidTypeError, match="scalar tensor of the loss's graph"):
        optrun.ScipyOptimizerInterface(loss, equalities=[lambda: first])
    with pytest.raises(InvalidArgumentError, match="empty at index"):
        optrun.ScipyOptimizerInterface(loss, var_to_bounds={v: (2.0, 1.0)})
    with pytest.raises(UnsupportedMethodError, match="does not support bounds"):
        optrun.ScipyOptimizerInterface(loss, method="BFGS", var_to_bounds={v: (0.0, 1.0)})
    assert len(sess.graph.get_operations()) == before


def test_session_errors(use_resource: bool) -> None:
    graph = tf.Graph()
    with graph.as_default():
        v = var([1.0], use_resource)
        p = tf.compat.v1.placeholder(tf.float32, [])
        opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - p)))
    with pytest.raises(InvalidArgumentError, match=r"needs a tf\.compat\.v1\.Session"):
        opt.minimize()
    with (
        tf.Graph().as_default(),
        tf.compat.v1.Session() as other,
        pytest.raises(InvalidArgumentError, match="another graph"),
    ):
        opt.minimize(other)
    with tf.compat.v1.Session(graph=graph) as sess:
        with pytest.raises(NotReadyError, match="global_variables_initializer"):
            opt.minimize(sess, feed_dict={p: 0.0})
        sess.run(v.initializer)
        with pytest.raises(InvalidArgumentError, match="feed_dict"):
            opt.minimize(sess)  # p is not fed
        with pytest.raises(InvalidTypeError, match="feed_dict must be a dict"):
            opt.minimize(sess, feed_dict=[(p, 0.0)])
        with pytest.raises(InvalidTypeError, match="fetches\\[0\\]"):
            opt.minimize(sess, feed_dict={p: 0.0}, fetches=[object()])
        opt.minimize(sess, feed_dict={p: 0.25})
        np.testing.assert_allclose(sess.run(v), [0.25], atol=1e-6)


def test_graph_loss_with_session_args_in_tf2_mode_is_refused() -> None:
    if not tf.executing_eagerly():
        pytest.skip("TF2 mode only")
    v = tf.Variable([1.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)))
    with pytest.raises(InvalidArgumentError, match="call minimize\\(\\) without them"):
        opt.minimize(session=object())

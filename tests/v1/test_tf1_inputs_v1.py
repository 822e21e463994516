"""Graph-mode inputs as TF1 took them: feeds checked as ``session.run`` checks them, clipping dims
None and [] as ``tf.clip_by_norm``'s axes, constraint functions giving one-element lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import optrun

START = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], np.float32)


def _least_squares(sess: Any, use_resource: bool) -> tuple[Any, Any, Any]:
    w = tf.compat.v1.Variable([0.0], use_resource=use_resource, name="w")
    x = tf.compat.v1.placeholder(tf.float32, [None, 1], name="x")
    y = tf.compat.v1.placeholder(tf.float32, [None, 1], name="y")
    sess.run(w.initializer)
    return w, x, y


def test_a_feed_of_the_wrong_shape_is_refused_as_session_run_refuses_it(
    sess: Any, use_resource: bool
) -> None:
    w, x, y = _least_squares(sess, use_resource)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(x * w - y)))
    xs = np.arange(8, dtype=np.float32).reshape(8, 1)
    # (8, 1) - (8,) would broadcast to (8, 8): a different loss, minimized without a word.
    with pytest.raises(
        optrun.InvalidArgumentError, match=r"shape \(8,\) to 'y:0', which has shape \[None, 1\]"
    ):
        opt.minimize(sess, feed_dict={x: xs, y: 3.0 * xs.ravel()})
    assert isinstance(optrun.InvalidArgumentError("x"), ValueError)  # what TF1 raised
    np.testing.assert_array_equal(sess.run(w), [0.0])
    opt.minimize(sess, feed_dict={x: xs, y: 3.0 * xs})
    np.testing.assert_allclose(sess.run(w), [3.0], rtol=1e-5)


def test_a_graph_tensor_as_a_feed_value_is_a_type_error(sess: Any, use_resource: bool) -> None:
    w, x, y = _least_squares(sess, use_resource)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(x * w - y)))
    with pytest.raises(optrun.InvalidTypeError, match=r"feed_dict value for 'x:0' is a graph tensor"):
        opt.minimize(sess, feed_dict={x: tf.ones([2, 1]), y: np.ones((2, 1))})


def test_a_tensor_in_place_of_a_list_of_constraints(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable([1.0, 2.0], use_resource=use_resource)
    with pytest.raises(optrun.InvalidTypeError, match="equalities must be a list of scalar tensors"):
        optrun.ScipyOptimizerInterface(tf.reduce_sum(v * v), equalities=v[0] - 1.0)


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        (None, START * 2.0 / np.linalg.norm(START)),  # the whole variable's norm, 11.19
        ([], np.clip(START, -2.0, 2.0)),  # each element on its own
    ],
)
def test_clip_dims_none_and_empty_as_clip_by_norm_axes(
    sess: Any, use_resource: bool, dims: Any, expected: np.ndarray
) -> None:
    v = tf.compat.v1.Variable(START, use_resource=use_resource, name="v")
    opt = optrun.VariableClippingOptimizer(tf.compat.v1.train.GradientDescentOptimizer(0.0), {v: dims}, 2.0)
    train = opt.minimize(tf.reduce_sum(v) * 0.0)
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train)
    np.testing.assert_allclose(sess.run(v), expected, rtol=1e-6)


class Reads(optrun.ExternalOptimizerInterface):
    """A TF1-era subclass: concatenates the constraint functions' one-element lists."""

    def _minimize(  # type: ignore[no-untyped-def, override]
        self,
        initial_val,
        loss_grad_func,
        equality_funcs,
        equality_grad_funcs,
        inequality_funcs,
        inequality_grad_funcs,
        packed_bounds,
        step_callback,
        optimizer_kwargs,
    ):
        x = initial_val.astype(np.float64)
        self.values = np.concatenate([f(x) for f in equality_funcs])
        self.rows = np.concatenate([g(x) for g in equality_grad_funcs])
        return x


def test_constraint_functions_give_one_element_lists_as_tf1s(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable([1.0, 2.0], use_resource=use_resource)
    sess.run(v.initializer)
    opt = Reads(tf.reduce_sum(v * v), equalities=[v[0] - 1.0, v[0] * v[1]])
    opt.minimize(sess)
    np.testing.assert_array_equal(opt.values, [0.0, 2.0])
    np.testing.assert_array_equal(opt.rows, [[1.0, 0.0], [2.0, 1.0]])


def test_a_feed_value_out_of_its_dtypes_range(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable([1.0], use_resource=use_resource)
    n = tf.compat.v1.placeholder(tf.int32, [])
    sess.run(v.initializer)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - tf.cast(n, tf.float32))))
    with pytest.raises(optrun.InvalidArgumentError, match="cannot be read as int32"):
        opt.minimize(sess, feed_dict={n: 2**40})


def _by_scipy(feeds: dict[str, np.ndarray], callback: Any) -> Any:
    """Plain scipy on a NumPy loss that reads the fed target at every evaluation."""

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(np.sum((x - feeds["t"]) ** 2)), 2.0 * (x - feeds["t"])

    return scipy.optimize.minimize(fun, np.zeros(3), jac=True, method="L-BFGS-B", callback=callback).x


def _switched_run(how: str, minimize: Any) -> np.ndarray:
    """``minimize(feeds, step_callback)``'s result when the callback moves the fed target after
    the first iteration, ``how``: a new value in the dict, or the fed array changed in place."""
    target = np.array([1.0, 2.0, 3.0])
    feeds: dict[str, np.ndarray] = {"t": target}
    steps: list[np.ndarray] = []

    def switch(x: np.ndarray) -> None:
        steps.append(x)
        if len(steps) == 1 and how == "new value":
            feeds["t"] = np.array([-1.0, -4.0, 2.0])
        elif len(steps) == 1:
            target[:] = [-1.0, -4.0, 2.0]

    return np.asarray(minimize(feeds, switch), np.float64)


def _feeding(t: Any, feeds: dict[str, np.ndarray], callback: Any) -> tuple[dict[Any, Any], Any]:
    """The ``feed_dict`` optrun is given, and a callback that runs ``callback`` (which may move
    the target in ``feeds``) and then puts the target in that dict, as a minibatch switch would."""
    given = {t: feeds["t"]}

    def moved(x: np.ndarray) -> None:
        callback(x)
        given[t] = feeds["t"]

    return given, moved


@pytest.mark.parametrize("jit", [False, True, None], ids=["session", "xla", "default"])
@pytest.mark.parametrize("how", ["new value", "in place"])
def test_a_callback_that_moves_a_feed_moves_the_next_evaluation_as_in_tf1(
    sess: Any, use_resource: bool, jit: bool | None, how: str
) -> None:
    # TF1 fed the caller's dict at every session.run, so the target moved by the callback is the
    # one every later evaluation sees: what plain scipy gives on a NumPy loss that reads it so.
    v = tf.compat.v1.Variable(np.zeros(3), use_resource=use_resource, name="v")
    t = tf.compat.v1.placeholder(tf.float64, [3], name="t")
    sess.run(v.initializer)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - t)), jit_compile=jit)

    def by_optrun(feeds: dict[str, np.ndarray], callback: Any) -> Any:
        given, moved = _feeding(t, feeds, callback)
        opt.minimize(sess, feed_dict=given, step_callback=moved)
        return sess.run(v)

    expected = _switched_run(how, _by_scipy)
    assert not np.allclose(expected, [1.0, 2.0, 3.0], atol=1e-3)  # the switch changed the run
    np.testing.assert_allclose(_switched_run(how, by_optrun), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("jit", [False, None], ids=["session", "default"])
@pytest.mark.parametrize("style", ["xk", "intermediate_result"])
def test_scipys_own_callback_that_moves_a_feed_counts_as_a_step_callback_does(
    sess: Any, use_resource: bool, jit: bool | None, style: str
) -> None:
    # TF 1.0 passed ``callback=`` on to scipy, which called it after step_callback: a feed it
    # changes counts from the next evaluation, whichever parameter style it is written in.
    v = tf.compat.v1.Variable(np.zeros(3), use_resource=use_resource, name="v")
    t = tf.compat.v1.placeholder(tf.float64, [3], name="t")
    sess.run(v.initializer)

    def by_optrun(feeds: dict[str, np.ndarray], callback: Any) -> Any:
        given, moved = _feeding(t, feeds, callback)

        def as_result(intermediate_result: Any) -> None:
            moved(intermediate_result.x)

        told = moved if style == "xk" else as_result
        loss = tf.reduce_sum(tf.square(v - t))
        optrun.ScipyOptimizerInterface(loss, jit_compile=jit, callback=told).minimize(sess, feed_dict=given)
        return sess.run(v)

    expected = _switched_run("new value", _by_scipy)
    np.testing.assert_allclose(_switched_run("new value", by_optrun), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("jit", [False, True], ids=["session", "xla"])
def test_a_variable_outside_var_list_set_by_a_callback_is_read_again(
    sess: Any, use_resource: bool, jit: bool
) -> None:
    # A penalty raised between iterations, as continuation methods do: the cut-out function takes
    # c as an input, so it must read it again, as TF1's session.run read it at every evaluation.
    v = tf.compat.v1.Variable(np.zeros(2), use_resource=use_resource, name="v")
    c = tf.compat.v1.Variable([1.0, 1.0], dtype=tf.float64, use_resource=use_resource, name="c")
    move = c.assign([5.0, -5.0])
    sess.run([v.initializer, c.initializer])
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - c)), var_list=[v], jit_compile=jit)
    steps: list[np.ndarray] = []
    opt.minimize(
        sess, step_callback=lambda x: sess.run(move) if not steps.append(x) and len(steps) == 1 else None
    )

    centre, seen = np.array([1.0, 1.0]), []

    def moved(x: np.ndarray) -> None:
        seen.append(x)
        if len(seen) == 1:
            centre[:] = [5.0, -5.0]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(np.sum((x - centre) ** 2)), 2.0 * (x - centre)

    expected = scipy.optimize.minimize(fun, np.zeros(2), jac=True, method="L-BFGS-B", callback=moved).x
    assert not np.allclose(expected, [1.0, 1.0], atol=1e-3)  # the move changed the run
    np.testing.assert_allclose(sess.run(v), expected, rtol=1e-6, atol=1e-9)


def test_a_callback_that_adds_a_feed_is_told_to_call_minimize_again(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable(np.zeros(2), use_resource=use_resource, name="v")
    t = tf.compat.v1.placeholder(tf.float64, [2], name="t")
    u = tf.compat.v1.placeholder_with_default(np.float64(0.0), [], name="u")
    sess.run(v.initializer)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - t)) + u)
    feeds = {t: np.ones(2)}
    with pytest.raises(optrun.InvalidArgumentError, match="a callback changed which tensors feed_dict feeds"):
        opt.minimize(sess, feed_dict=feeds, step_callback=lambda x: feeds.update({u: 1.0}))


def test_feeds_are_the_callers_arrays_and_a_loss_callback_costs_no_session_call(
    sess: Any, use_resource: bool
) -> None:
    from optrun.evaluation.graph.feeds import LiveFeeds

    t = tf.compat.v1.placeholder(tf.float64, [3], name="t")
    big = np.arange(3.0)
    assert LiveFeeds(sess.graph, {t: big}).values[t] is big  # no copy of the user's data
    # A variable outside var_list is an input of the cut-out function: read when minimize starts,
    # and again after a step_callback, not after every loss request.
    v = tf.compat.v1.Variable(np.zeros(3), use_resource=use_resource, name="v")
    c = tf.compat.v1.Variable(np.ones(3), use_resource=use_resource, name="c")
    sess.run([v.initializer, c.initializer])
    u = v - c - t + 1.0  # Rosenbrock's in u, least at u = 1: at v = c + t
    rosen = tf.reduce_sum(100.0 * tf.square(u[1:] - tf.square(u[:-1])) + tf.square(1.0 - u[:-1]))
    opt = optrun.ScipyOptimizerInterface(rosen, var_list=[v], jit_compile=True)
    runs = []
    real_run = sess.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(args)
        return real_run(*args, **kwargs)

    sess.run = counted
    try:
        result = opt.minimize(sess, feed_dict={t: big}, loss_callback=lambda: None)
    finally:
        del sess.run
    np.testing.assert_allclose(real_run(v), 1.0 + big, atol=1e-4)
    assert len(runs) < 6 < result.nfev, (len(runs), result.nfev)


def test_a_function_with_no_inputs_but_x_adds_no_op_to_the_users_graph(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable(np.zeros(2), use_resource=use_resource, name="v")
    sess.run(v.initializer)
    opt = optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v - 2.0)), jit_compile=True)
    ops = len(sess.graph.get_operations())
    for _ in range(2):
        sess.run(v.initializer)
        opt.minimize(sess)
        np.testing.assert_allclose(sess.run(v), [2.0, 2.0], atol=1e-6)
    assert len(sess.graph.get_operations()) == ops

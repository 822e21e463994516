"""What TF1's interface handed an optimizer, value for value: ``packed_bounds`` filled in with
-inf/inf, ``loss_grad_func`` in the graph's dtypes, a float32 start for Newton-CG, and
``loss_callback`` once per point for gradient-free methods (scipy's ``MemoizeJac``)."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import pytest
import tensorflow as tf

import optrun


class Recording(optrun.ExternalOptimizerInterface):
    """A TF1-style subclass: 50 steps of float32 gradient descent, clipped to ``packed_bounds``
    as ``np.clip`` takes them; records what it was handed."""

    seen: ClassVar[dict[str, Any]] = {}

    def _minimize(
        self,
        initial_val: Any,
        loss_grad_func: Any,
        equality_funcs: Any,
        equality_grad_funcs: Any,
        inequality_funcs: Any,
        inequality_grad_funcs: Any,
        packed_bounds: Any,
        step_callback: Any,
        optimizer_kwargs: Any,
    ) -> Any:
        lower, upper = np.array(list(packed_bounds)).T
        x = initial_val
        loss, grad = loss_grad_func(x)
        Recording.seen.update(
            start=initial_val.dtype, loss=type(loss), grad=grad.dtype, bounds=list(packed_bounds)
        )
        for _ in range(50):
            x = np.clip(x - np.float32(0.1) * loss_grad_func(x)[1], lower, upper).astype(x.dtype)
            step_callback(x)
        return x


def test_a_tf1_subclass_gets_float32_values_and_infinite_bounds(sess: Any, use_resource: bool) -> None:
    a = tf.compat.v1.Variable([3.0, -2.0], use_resource=use_resource, name="a")
    b = tf.compat.v1.Variable([5.0], use_resource=use_resource, name="b")
    sess.run([a.initializer, b.initializer])
    loss = tf.reduce_sum(tf.square(a)) + tf.reduce_sum(tf.square(b - 4.0))
    Recording(loss, var_to_bounds={a: (1.0, np.inf)}).minimize(sess)
    seen = Recording.seen
    assert (seen["start"], seen["loss"], seen["grad"]) == (np.float32, np.float32, np.float32)
    # TF1: np.broadcast_to(bounds, shape) per variable, (-inf, inf) for one without bounds.
    assert seen["bounds"] == [(1.0, np.inf), (1.0, np.inf), (-np.inf, np.inf)]
    # By hand: a is pushed down to its bound 1; b -> 4 + (5 - 4) * 0.8**50.
    np.testing.assert_allclose(sess.run(a), [1.0, 1.0])
    np.testing.assert_allclose(sess.run(b), [4.0 + 0.8**50], rtol=1e-6)


def test_newton_cg_starts_from_float32_as_tf1_did(sess: Any, use_resource: bool) -> None:
    u = tf.compat.v1.Variable([-1.2, 1.0, 0.5], use_resource=use_resource, name="u")
    sess.run(u.initializer)
    loss = tf.reduce_sum(100.0 * tf.square(u[1:] - tf.square(u[:-1])) + tf.square(1.0 - u[:-1]))
    dtypes = []
    opt = optrun.ScipyOptimizerInterface(
        loss, method="Newton-CG", options={"maxiter": 3}, callback=lambda xk: dtypes.append(xk.dtype)
    )
    opt.minimize(sess)
    assert dtypes and set(dtypes) == {np.dtype(np.float32)}  # scipy kept TF1's float32 start


def test_gradient_free_methods_call_loss_callback_once_per_point(sess: Any, use_resource: bool) -> None:
    u = tf.compat.v1.Variable([-1.2, 1.0], tf.float64, use_resource=use_resource, name="u")
    sess.run(u.initializer)
    loss = tf.reduce_sum(100.0 * tf.square(u[1:] - tf.square(u[:-1])) + tf.square(1.0 - u[:-1]))
    for method in ("Powell", "Nelder-Mead"):
        points: list[np.ndarray] = []
        opt = optrun.ScipyOptimizerInterface(loss, method=method, options={"maxiter": 20})
        opt.minimize(sess, fetches=[u], loss_callback=lambda x: points.append(np.array(x)))
        assert len(points) > 20
        # scipy's MemoizeJac answered a request at the point just evaluated from memory.
        assert not any(np.array_equal(p, q) for p, q in itertools.pairwise(points)), method


def test_nested_fetches_come_back_nested_as_session_run_gave_them(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable([3.0, -1.0], use_resource=use_resource, name="v")
    sess.run(v.initializer)
    loss = tf.reduce_sum(tf.square(v - 2.0))
    got: list[tuple[Any, ...]] = []
    fetches = [{"loss": loss, "pair": (v, loss)}, [v]]
    opt = optrun.ScipyOptimizerInterface(loss, options={"maxiter": 5})
    opt.minimize(sess, fetches=fetches, loss_callback=lambda *a: got.append(a))
    first, listed = got[0]
    assert set(first) == {"loss", "pair"} and isinstance(first["pair"], tuple)
    np.testing.assert_allclose(first["loss"], 10.0)  # (3 - 2)**2 + (-1 - 2)**2 at the start
    np.testing.assert_allclose(first["pair"][0], [3.0, -1.0])
    np.testing.assert_allclose(listed[0], [3.0, -1.0])


def test_a_partitioned_variable_as_a_clipping_key_says_to_key_its_parts(sess: Any) -> None:
    emb = tf.compat.v1.get_variable(
        "emb",
        shape=[6, 3],
        initializer=tf.compat.v1.constant_initializer(2.0),
        partitioner=tf.compat.v1.fixed_size_partitioner(2),
    )
    inner = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    with pytest.raises(optrun.InvalidTypeError, match=r"'emb' is a PartitionedVariable; key each"):
        optrun.VariableClippingOptimizer(inner, {emb: [1]}, 1.0).minimize(
            tf.reduce_sum(tf.nn.embedding_lookup(emb, [0, 4]))
        )


def test_projected_gradient_works_in_float64_with_float32_variables(sess: Any, use_resource: bool) -> None:
    # Its Barzilai-Borwein steps are float64 arithmetic: the float32 values loss_grad_func
    # hands a TF1-style subclass must not round them (nor its result).
    u = tf.compat.v1.Variable([-1.2, 1.0, 0.5], use_resource=use_resource, name="u")
    sess.run(u.initializer)
    loss = tf.reduce_sum(100.0 * tf.square(u[1:] - tf.square(u[:-1])) + tf.square(1.0 - u[:-1]))
    opt = optrun.ProjectedGradientInterface(loss, var_to_bounds={u: (-2.0, 2.0)}, maxiter=20)
    result = opt.minimize(sess)
    assert np.asarray(result.jac).dtype == np.float64 and isinstance(result.fun, float)

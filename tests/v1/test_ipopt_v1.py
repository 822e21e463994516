"""IpoptInterface on tf.compat.v1 graphs and sessions: the seed's example, bounds with a fed
placeholder, fetches, non-finite values and Ctrl-C, under each of the three graph modes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun

pytest.importorskip("cyipopt")


def var(value: Any, use_resource: bool, name: str = "vector", dtype: Any = tf.float32) -> Any:
    return tf.compat.v1.Variable(value, name=name, dtype=dtype, use_resource=use_resource)


def test_seed_example(sess: Any, use_resource: bool) -> None:
    vector = var([7.0, 7.0], use_resource)
    opt = optrun.IpoptInterface(
        tf.reduce_sum(tf.square(vector)), equalities=[vector[1] - 1.0], inequalities=[vector[0] - 1.0]
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    steps: list[np.ndarray] = []
    result = opt.minimize(sess, step_callback=steps.append)
    np.testing.assert_allclose(sess.run(vector), [1.0, 1.0], atol=1e-5)
    assert result.success and result.fun == pytest.approx(2.0, abs=1e-6)
    np.testing.assert_allclose(result.multipliers["mult_g"], [-2.0, -2.0], atol=1e-5)
    assert len(steps) == result.nit and steps[0].shape == (2,)


def test_bounds_and_a_fed_target_match_kkt_by_hand(sess: Any, use_resource: bool) -> None:
    # min (x-t)^2 + (y+1)^2 s.t. x + y <= 1, x, y >= 0, with t = 3 fed: (1, 0), mult_g = -4,
    # mult_x_L = (0, 6) (see tests/test_ipopt.py for the working).
    point = var([0.5, 0.5], use_resource, "point", tf.float64)
    target = tf.compat.v1.placeholder(tf.float64, [], name="target")
    loss = tf.square(point[0] - target) + tf.square(point[1] + 1.0)
    opt = optrun.IpoptInterface(
        loss,
        inequalities=[1.0 - point[0] - point[1]],
        var_to_bounds={point: (0.0, None)},
        options={"tol": 1e-10},
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    fetched: list[float] = []
    result = opt.minimize(sess, feed_dict={target: 3.0}, fetches=[loss], loss_callback=fetched.append)
    np.testing.assert_allclose(sess.run(point), [1.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(result.multipliers["mult_g"], [-4.0], atol=1e-6)
    np.testing.assert_allclose(result.multipliers["mult_x_L"], [0.0, 6.0], atol=1e-6)
    assert len(fetched) == result.nfev and fetched[-1] == pytest.approx(5.0, abs=1e-6)


def test_nonfinite_loss_leaves_finite_variables(sess: Any, use_resource: bool) -> None:
    v = var([0.0, 0.0], use_resource, "v", tf.float64)
    loss = tf.reduce_sum(tf.square(v - 5.0)) + 0.0 * tf.math.log(3.0 - v[0])  # NaN once v[0] > 3
    opt = optrun.IpoptInterface(loss, inequalities=[10.0 - v[1]])
    sess.run(tf.compat.v1.global_variables_initializer())
    with pytest.raises(optrun.NonFiniteError, match="the loss is nan"):
        opt.minimize(sess)
    assert np.isfinite(sess.run(v)).all()


def test_keyboard_interrupt_from_loss_callback(sess: Any, use_resource: bool) -> None:
    vector = var([7.0, 7.0], use_resource)
    opt = optrun.IpoptInterface(tf.reduce_sum(tf.square(vector)), inequalities=[vector[0] - 1.0])
    sess.run(tf.compat.v1.global_variables_initializer())
    calls = []

    def interrupt() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        opt.minimize(sess, loss_callback=interrupt)
    assert len(calls) == 2

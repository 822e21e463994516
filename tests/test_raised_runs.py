"""Where ``minimize`` leaves the variables when it raises (a callback's exception, Ctrl-C).

Not at the optimizer's last trial point: unconstrained, at the lowest-loss point
evaluated (with ``check_finite``, the default), else at the last accepted iterate;
constrained, at the last accepted iterate; before the first iteration, at the
start point. Each run below raises from ``loss_callback`` at a trial point, so the
variables must move back from it; the expected points come from the test's own
record of what the callbacks saw, with the loss computed in NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun

START = [7.0, 7.0]


class Stop(Exception):
    """What the test's callbacks raise."""


def loss_tf(v: Any) -> Any:
    return tf.reduce_sum(tf.square(v - [1.0, -2.0])) + tf.reduce_sum(tf.pow(v, 4.0))


def loss_np(x: np.ndarray) -> float:
    return float(np.sum((x - [1.0, -2.0]) ** 2) + np.sum(x**4))


class Record:
    """Callbacks that record the points seen and raise ``error`` at the first trial point after
    ``iterations`` accepted iterates that is not one of them (and, with ``worse``, whose loss is
    above the lowest seen)."""

    def __init__(self, iterations: int, error: type[BaseException] = Stop, worse: bool = False) -> None:
        self.iterations, self.error, self.worse = iterations, error, worse
        self.evaluated: list[np.ndarray] = []
        self.accepted: list[np.ndarray] = []
        self.raised_at: np.ndarray | None = None

    def step(self, xk: np.ndarray) -> None:
        self.accepted.append(np.array(xk))

    def loss(self, value: Any) -> None:
        x = np.array(value)
        trial = not any(np.array_equal(x, a) for a in self.accepted)
        if self.worse and self.evaluated:
            trial = trial and loss_np(x) > min(map(loss_np, self.evaluated))
        if len(self.accepted) >= self.iterations and trial:
            self.raised_at = x
            raise self.error
        self.evaluated.append(x)


def run(opt: Any, v: Any, record: Record, **minimize: Any) -> None:
    with pytest.raises(record.error):
        opt.minimize(fetches=[v], loss_callback=record.loss, step_callback=record.step, **minimize)
    assert record.raised_at is not None and not np.array_equal(v_value(v, minimize), record.raised_at)


def v_value(v: Any, minimize: dict[str, Any]) -> np.ndarray:
    session = minimize.get("session")
    return np.asarray(session.run(v) if session is not None else v.numpy())


@pytest.mark.parametrize("error", [Stop, KeyboardInterrupt])
def test_unconstrained_keeps_the_lowest_loss_point_evaluated(error: type[BaseException]) -> None:
    v = tf.Variable(START, dtype=tf.float64)
    record = Record(1, error, worse=True)
    opt = optrun.ScipyOptimizerInterface(lambda: loss_tf(v), var_list=[v], jit_compile=False)
    run(opt, v, record)
    best = min(record.evaluated, key=loss_np)
    assert loss_np(best) < loss_np(np.array(START))
    np.testing.assert_array_equal(v.numpy(), best)


def test_without_the_finite_check_it_keeps_the_last_accepted_iterate() -> None:
    v = tf.Variable(START, dtype=tf.float64)
    record = Record(3)
    opt = optrun.ScipyOptimizerInterface(lambda: loss_tf(v), var_list=[v], check_finite=False)
    run(opt, v, record)
    np.testing.assert_array_equal(v.numpy(), record.accepted[-1])


def test_constrained_keeps_the_last_accepted_iterate() -> None:
    v = tf.Variable(START, dtype=tf.float64)
    record = Record(2)
    opt = optrun.ScipyOptimizerInterface(
        lambda: loss_tf(v), var_list=[v], equalities=[lambda: v[0] + v[1] - 1.0], method="SLSQP"
    )
    run(opt, v, record)
    np.testing.assert_array_equal(v.numpy(), record.accepted[-1])
    assert not np.array_equal(record.accepted[-1], START)


def test_an_error_before_the_first_iteration_leaves_the_start_point() -> None:
    v = tf.Variable(START, dtype=tf.float64)
    record = Record(0)
    record.accepted.append(np.array(START))  # so the first point past the start raises
    opt = optrun.ScipyOptimizerInterface(
        lambda: loss_tf(v), var_list=[v], equalities=[lambda: v[0] + v[1] - 1.0], method="SLSQP"
    )
    run(opt, v, record)
    np.testing.assert_array_equal(v.numpy(), START)


def test_with_bounds_it_keeps_the_last_accepted_iterate() -> None:
    # Bounds count as constraints here: a method may try points outside them.
    v = tf.Variable(START, dtype=tf.float64)
    record = Record(2)
    opt = optrun.ScipyOptimizerInterface(
        lambda: loss_tf(v), var_list=[v], var_to_bounds={v.ref(): (0.5, 10.0)}, method="trust-constr"
    )
    run(opt, v, record)
    np.testing.assert_array_equal(v.numpy(), record.accepted[-1])

"""What ``minimize``'s callbacks receive on a tf.compat.v1 graph, and the early signature error.

The same contract as TF2 mode (``tests/test_callback_contract.py``), run
through a session: ``loss_callback(*fetched)`` with one NumPy value per fetch
(none without fetches) on every loss request; a signature that cannot take
them is refused before the session runs anything.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from optrun.errors import InvalidArgumentError
from tests.callback_support import START, AtPoints, Requests
from tests.conftest import rosen_np


class Counted:
    """A Rosenbrock loss tensor with a ``py_func`` that counts how often the session runs it."""

    def __init__(self, use_resource: bool) -> None:
        self.vector = tf.compat.v1.Variable(START, name="vector", use_resource=use_resource)
        self.evaluations = 0
        v = self.vector
        tick = tf.compat.v1.py_func(self._tick, [], tf.float32, stateful=True)
        tick.set_shape([])
        rosen = tf.reduce_sum(100.0 * tf.square(v[1:] - tf.square(v[:-1])) + tf.square(1.0 - v[:-1]))
        self.loss = rosen + tick

    def _tick(self) -> np.float32:
        self.evaluations += 1
        return np.float32(0.0)


def test_without_fetches_the_loss_callback_gets_no_arguments_once_per_loss_request(
    sess: Any, use_resource: bool
) -> None:
    problem = Counted(use_resource)
    opt = Requests(problem.loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    calls: list[tuple[Any, ...]] = []
    result = opt.minimize(sess, loss_callback=lambda *args: calls.append(args))
    assert result.success
    assert calls and all(args == () for args in calls)
    assert len(calls) == opt.requests == result.nfev  # every loss request, line-search points included
    assert len(calls) > result.nit  # so not once per iteration
    assert problem.evaluations > 0


def test_two_fetches_are_two_numpy_values_at_the_point_asked_for(sess: Any, use_resource: bool) -> None:
    problem = Counted(use_resource)
    opt = AtPoints(problem.loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    seen: list[tuple[Any, ...]] = []
    steps: list[np.ndarray] = []
    opt.minimize(
        sess,
        fetches=[problem.loss, problem.vector],
        loss_callback=lambda *args: seen.append(args),
        step_callback=steps.append,
    )
    points = [START.astype(np.float64), AtPoints.SECOND, AtPoints.SECOND]
    assert len(seen) == len(points)  # the cached third request calls it too
    for args, point in zip(seen, points, strict=True):
        assert len(args) == 2
        loss_value, v_value = args
        assert isinstance(loss_value, np.generic | np.ndarray) and np.ndim(loss_value) == 0
        assert isinstance(v_value, np.ndarray) and v_value.shape == (3,)
        np.testing.assert_allclose(v_value, point, rtol=1e-6)
        assert float(loss_value) == pytest.approx(rosen_np(point), rel=1e-5)
    assert len(steps) == 1 and steps[0].dtype == np.float64
    np.testing.assert_allclose(sess.run(problem.vector), AtPoints.SECOND, rtol=1e-6)


def one(loss: Any) -> None:
    """A one-parameter callback, named so the message can be checked for its name."""


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"loss_callback": lambda loss: None},
            [
                r"^loss_callback <lambda>\(loss\) \(defined at .*test_callback_contract_v1\.py:\d+\)",
                "cannot be called with 0 positional arguments",
                "no fetches were given",
            ],
        ),
        (
            {"loss_callback": one, "fetches": "two"},
            [r"^loss_callback one\(loss\)", "fetches has 2 entries", "Give it 2 parameters"],
        ),
        (
            {"step_callback": lambda: None},
            [r"^step_callback <lambda>\(\)", "packed float64 vector x"],
        ),
    ],
    ids=["one-param-no-fetches", "one-param-two-fetches", "step-0"],
)
def test_a_callback_that_cannot_take_its_arguments_is_refused_before_the_session_runs(
    sess: Any, use_resource: bool, kwargs: dict[str, Any], expected: list[str]
) -> None:
    problem = Counted(use_resource)
    opt = Requests(problem.loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    kwargs = dict(kwargs)  # the parameters are shared by the ref and resource runs
    fetches = [problem.loss, problem.vector] if kwargs.pop("fetches", None) else None
    before = problem.evaluations
    with pytest.raises(InvalidArgumentError) as info:
        opt.minimize(sess, fetches=fetches, **kwargs)
    for pattern in expected:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))
    assert problem.evaluations == before  # the loss never ran
    assert opt.requests == 0
    np.testing.assert_array_equal(sess.run(problem.vector), START)  # the variables are as they were


@pytest.mark.parametrize(
    "callback", [lambda *args: None, max], ids=["star-args", "builtin-without-signature"]
)
def test_star_args_and_builtins_are_accepted(sess: Any, use_resource: bool, callback: Any) -> None:
    problem = Counted(use_resource)
    opt = Requests(problem.loss, options={"maxiter": 3})
    sess.run(tf.compat.v1.global_variables_initializer())
    result = opt.minimize(sess, fetches=[problem.loss, problem.loss], loss_callback=callback)
    assert result.nfev == opt.requests > 0

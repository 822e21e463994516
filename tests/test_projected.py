"""ProjectedGradientInterface: the second user of the _minimize hook."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import ProjectedGradientInterface
from tests.conftest import rosen_np


def test_bounded_sum_of_squares() -> None:
    vector = tf.Variable([7.0, 7.0])
    steps: list[np.ndarray] = []
    result = ProjectedGradientInterface(
        lambda: tf.reduce_sum(tf.square(vector)), var_to_bounds={vector.ref(): (1.0, np.inf)}
    ).minimize(step_callback=steps.append)
    assert result.success
    np.testing.assert_allclose(vector.numpy(), [1.0, 1.0], atol=1e-6)
    assert steps and all(np.all(s >= 1.0) for s in steps)  # iterates stay feasible


def test_rosenbrock_in_a_box() -> None:
    # Box [-2, 0.5] on x0 moves the optimum: with x0 <= 0.5 the best is x = [0.5, 0.25].
    v = tf.Variable(np.zeros(2))
    loss = lambda: tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)
    result = ProjectedGradientInterface(
        loss, var_to_bounds=[(v, ([-2.0, -2.0], [0.5, 2.0]))], maxiter=20000, gtol=1e-9
    ).minimize()
    np.testing.assert_allclose(v.numpy(), [0.5, 0.25], atol=1e-4)
    assert result.fun == pytest.approx(rosen_np(np.array([0.5, 0.25])), abs=1e-7)


def test_unbounded_rosenbrock_5d() -> None:
    v = tf.Variable(np.zeros(5))
    loss = lambda: tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)
    ProjectedGradientInterface(loss, maxiter=50000, gtol=1e-8).minimize()
    np.testing.assert_allclose(v.numpy(), np.ones(5), atol=1e-3)


def test_refuses_constraints_and_unknown_options() -> None:
    v = tf.Variable([1.0])
    loss = lambda: tf.reduce_sum(v * v)
    with pytest.raises(optrun.UnsupportedMethodError, match="bounds only"):
        ProjectedGradientInterface(loss, equalities=[lambda: v[0]])
    with pytest.raises(optrun.InvalidArgumentError, match=r"unknown option\(s\) \['method'\]"):
        ProjectedGradientInterface(loss, method="SLSQP")
    with pytest.raises(optrun.InvalidArgumentError, match="gtol must be a finite number > 0; got -1"):
        ProjectedGradientInterface(loss, gtol=-1)
    for key, value, said in [
        ("gtol", float("nan"), "finite number > 0"),
        ("c1", 1.5, r"must be in \(0, 1\)"),
        ("c1", float("nan"), r"must be in \(0, 1\)"),
        ("maxiter", 2.5, "whole number >= 1"),
        ("max_backtracks", float("inf"), "whole number >= 1"),
        ("maxiter", True, "must be a number"),
    ]:
        with pytest.raises(optrun.InvalidArgumentError, match=f"{key}.*{said}"):
            ProjectedGradientInterface(loss, **{key: value})
    ProjectedGradientInterface(loss, maxiter=np.int64(10), gtol=np.float64(1e-8)).minimize()
    np.testing.assert_allclose(v.numpy(), [0.0], atol=1e-8)

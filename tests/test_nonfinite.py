"""A NaN or Inf in minimize is never success: it stops, names what went bad, keeps the last good point."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

import optrun
from optrun.errors import NonFiniteError
from optrun_cli.main import app


def test_nan_at_the_start_point_names_the_loss() -> None:
    v = tf.Variable([1.0, 2.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)) + float("nan"))
    with pytest.raises(NonFiniteError, match=r"the loss is nan at evaluation 1\..*the start point"):
        opt.minimize()
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    assert isinstance(NonFiniteError("x"), FloatingPointError)


def test_nan_mid_run_keeps_the_last_accepted_iterate() -> None:
    v = tf.Variable([3.0])
    # Minimum at -2, but log(v) is NaN below 0: the line search walks into it.
    loss = lambda: tf.reduce_sum(tf.square(v + 2.0)) + 0.0 * tf.reduce_sum(tf.math.log(v))
    accepted: list[np.ndarray] = []
    opt = optrun.ScipyOptimizerInterface(loss)
    with pytest.raises(NonFiniteError, match=r"the loss is nan at evaluation (\d+)"):
        opt.minimize(step_callback=accepted.append)
    last = accepted[-1] if accepted else np.array([3.0])
    np.testing.assert_array_equal(v.numpy(), last)
    assert math.isfinite(float(loss()))


def test_nan_gradient_and_constraint_are_named() -> None:
    v = tf.Variable([0.0, 0.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.norm(v))  # d|v|/dv = v/|v| = 0/0 at 0
    with pytest.raises(NonFiniteError, match=r"the gradient of the loss is nan at 'Variable[^']*'\[0\]"):
        opt.minimize()
    w = tf.Variable([-1.0, 1.0], name="w")
    constrained = optrun.ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(w)),
        inequalities=[lambda: w[1], lambda: tf.math.log(w[0])],
        method="SLSQP",
    )
    with pytest.raises(NonFiniteError, match=r"inequalities\[1\] is nan at evaluation 1"):
        constrained.minimize()


def test_check_finite_false_lets_scipy_see_it() -> None:
    v = tf.Variable([1.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v) + float("nan"), check_finite=False)
    assert math.isnan(opt.minimize().fun)
    with pytest.raises(optrun.InvalidTypeError, match="check_finite must be True or False"):
        optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v), check_finite="yes")


def test_cli_nan_is_exit_1_with_status_nonfinite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(
        "import tensorflow as tf\n"
        "def build():\n    return tf.Variable([1.0, 2.0], name='v')\n"
        "def loss(v):\n    return tf.reduce_sum(tf.square(v)) + float('nan')\n"
    )
    (tmp_path / "s.yaml").write_text("name: nan\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    result = CliRunner().invoke(app, ["minimize", "s.yaml", "-q", "--out", "run", "--json"])
    assert result.exit_code == 1
    assert "the loss is nan at evaluation 1" in result.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "nonfinite" and record["success"] is False
    assert "the loss is nan" in record["error"]
    assert json.loads(result.stdout)["success"] is False


def test_cli_nan_mid_run_says_what_the_checkpoint_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(
        "import tensorflow as tf\n"
        "def build():\n    return tf.Variable([2.0, 2.0], dtype=tf.float64, name='v')\n"
        "def loss(v):\n    return tf.reduce_sum(tf.math.log(v))\n"  # NaN once BFGS steps below 0
    )
    (tmp_path / "s.yaml").write_text(
        "name: nan\nmodel: {builder: m.py:build}\nloss: m.py:loss\nminimize: {method: BFGS}\n"
    )
    result = CliRunner().invoke(app, ["minimize", "s.yaml", "-q", "--out", "run"])
    assert result.exit_code == 1
    # BFGS's first trial, [1.5, 1.5], is finite (the variables' best); the run saves the start.
    assert "The checkpoint keeps the start point (loss 1.38629)" in result.stderr
    assert "The variables hold" not in result.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "nonfinite" and record["fun"] == pytest.approx(2 * math.log(2.0), rel=1e-15)


def test_finite_values_whose_sum_overflows_are_not_taken_for_inf() -> None:
    import warnings

    from optrun.evaluation.point import PointCache

    # The loss 1e308 and its gradient 1e308: each finite, their float64 sum is not.
    cache = PointCache(lambda x: (np.array([1e308, 1e308]), []), (1, 0, 0), finite=lambda i: f"x[{i}]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning either
        loss, gradient = cache.loss_and_grad(np.zeros(1))
    assert (loss, gradient.tolist()) == (1e308, [1e308])
    bad = PointCache(lambda x: (np.array([1.0, -np.inf]), []), (1, 0, 0), finite=lambda i: f"x[{i}]")
    with pytest.raises(NonFiniteError, match=r"the gradient of the loss is -inf at x\[0\]"):
        bad.loss_and_grad(np.zeros(1))

"""Tiered evaluation in graph mode: one session call per point first, the cut-out function once
built; the same answer, feeds, fetches, callbacks and bounds on either tier, a finalized graph."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun


def _join_builds(*_: object) -> None:
    for thread in threading.enumerate():
        if thread.name == "optrun-tier2":
            thread.join()


@pytest.fixture(autouse=True)
def _no_build_left() -> None:
    _join_builds()


def _problem(use_resource: bool) -> tuple[Any, Any, Any]:
    """min sum((x - c)^2) + 0.1 * sum(x^4) with c fed, x in [-inf, 0.5] elementwise."""
    x = tf.compat.v1.Variable(np.zeros(6), dtype=tf.float64, use_resource=use_resource, name="x")
    c = tf.compat.v1.placeholder(tf.float64, [6], name="c")
    loss = tf.reduce_sum(tf.square(x - c)) + 0.1 * tf.reduce_sum(x**4)
    return x, c, loss


def _solve(sess: Any, use_resource: bool, jit: bool | None, monkeypatch: pytest.MonkeyPatch) -> dict:
    x, c, loss = _problem(use_resource)
    opt = optrun.ScipyOptimizerInterface(
        loss, var_to_bounds={x: (None, 0.5)}, jit_compile=jit, options={"ftol": 0.0, "gtol": 1e-12}
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.graph.finalize()  # nothing may be added to the graph from here on
    losses: list[float] = []
    steps: list[np.ndarray] = []

    def on_loss(value: float) -> None:
        losses.append(float(value))
        _join_builds()  # the run goes on once tier 2 is built

    monkeypatch.setenv("OPTRUN_TIER2", "now")
    target = np.array([-1.0, -0.5, 0.0, 0.3, 1.0, 2.0])
    result = opt.minimize(
        sess, feed_dict={c: target}, fetches=[loss], loss_callback=on_loss, step_callback=steps.append
    )
    return {"result": result, "x": sess.run(x), "losses": losses, "steps": steps}


def _by_hand(c: float) -> float:
    """The minimizer of (x - c)^2 + 0.1 x^4 on x <= 0.5: the root of 2(x - c) + 0.4 x^3, clipped."""
    roots = np.roots([0.4, 0.0, 2.0, -2.0 * c])
    real = float(roots[np.argmin(np.abs(roots.imag))].real)
    return min(real, 0.5)


def test_tiered_graph_run_switches_and_matches_fixed(
    sess: Any, use_resource: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _solve(sess, use_resource, None, monkeypatch)
    tiers = run["result"].tiers
    assert tiers["first"] == "session" and tiers["switched_at_evaluation"] is not None, tiers
    assert tiers["evaluations"]["xla function"] > 0
    expected = [_by_hand(c) for c in (-1.0, -0.5, 0.0, 0.3, 1.0, 2.0)]
    np.testing.assert_allclose(run["x"], expected, atol=1e-6)
    np.testing.assert_allclose(run["result"].x, run["x"], atol=1e-12)
    # Fetches and callbacks on either tier: the fetched loss is the value scipy got, per request.
    assert len(run["losses"]) == run["result"].nfev
    assert run["losses"][-1] == pytest.approx(run["result"].fun, rel=1e-9, abs=1e-12)
    assert len(run["steps"]) == run["result"].nit
    assert max(run["x"]) <= 0.5


def test_short_graph_run_stays_on_session(sess: Any, use_resource: bool) -> None:
    _, c, loss = _problem(use_resource)
    opt = optrun.ScipyOptimizerInterface(loss, options={"maxiter": 3})
    sess.run(tf.compat.v1.global_variables_initializer())
    result = opt.minimize(sess, feed_dict={c: np.ones(6)})
    assert result.tiers["evaluations"]["xla function"] == 0
    assert result.tiers["evaluations"]["session"] == result.nfev


@pytest.mark.parametrize("jit", [False, True])
def test_fixed_modes_do_not_tier(
    sess: Any, use_resource: bool, jit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _solve(sess, use_resource, jit, monkeypatch)
    assert run["result"].tiers["second"] == ""
    np.testing.assert_allclose(run["x"], [_by_hand(c) for c in (-1.0, -0.5, 0.0, 0.3, 1.0, 2.0)], atol=1e-6)


def test_a_failed_xla_build_leaves_the_plain_function_named_for_what_it_is(
    sess: Any, use_resource: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # XLA failing for a reason other than a missing kernel (forced here: TF compiles the ops it
    # has kernels for) leaves the cut function without XLA, which must not be reported as XLA.
    from optrun.evaluation.graph import cut

    built = cut.PrunedFunction.build.__func__

    def no_xla(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if args[5]:  # jit
            raise RuntimeError("XLA compilation failed for a forced reason")
        return built(cls, *args, **kwargs)

    monkeypatch.setattr(cut.PrunedFunction, "build", classmethod(no_xla))
    run = _solve(sess, use_resource, None, monkeypatch)
    tiers = run["result"].tiers
    assert tiers["second"] == "function" and "xla function" not in tiers["evaluations"], tiers
    assert tiers["evaluations"]["function"] > 0 and tiers["switched_at_evaluation"] is not None
    np.testing.assert_allclose(run["x"], [_by_hand(c) for c in (-1.0, -0.5, 0.0, 0.3, 1.0, 2.0)], atol=1e-6)

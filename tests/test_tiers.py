"""Tiered evaluation (the default ``jit_compile=None``): the same optimum as the fixed modes, a
switch on a long run and none on a short one, a failed XLA build that leaves the run on tier 1,
and an interrupt during the background build that leaves no thread behind.

Whether and when the switch happens depends on time, so the tests assert on the recorded tier
counts and on the optimum, never on timing. ``OPTRUN_TIER2=now`` builds tier 2 from the first
point, and a ``loss_callback`` that waits for the build makes a run outlast it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import optrun
from optrun.evaluation.tiers import Tiered, building
from tests.conftest import rosen_np

N = 30
OPTIONS = {"maxiter": 400, "ftol": 0.0, "gtol": 0.0}


def _rosen(v: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)


def _after_build(*_: object) -> None:
    """A ``loss_callback`` that waits for the tier-2 build: the run goes on once it is ready."""
    _join_builds()


def _tier_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "optrun-tier2" and t.is_alive()]


def _join_builds() -> None:
    for thread in _tier_threads():
        thread.join()


@pytest.fixture(autouse=True)
def _no_build_left() -> None:
    _join_builds()


@pytest.fixture
def tier2_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTRUN_TIER2", "now")


def test_long_run_switches_and_reaches_the_fixed_optimum(
    tier2_now: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tier 1 as the plain function: on this small graph the session tier is faster than XLA, and
    # XLA would be dropped (test_pure_graph.py).
    monkeypatch.setenv("OPTRUN_TIER1", "function")
    v = tf.Variable(np.zeros(N))
    fixed = optrun.ScipyOptimizerInterface(lambda: _rosen(v), jit_compile=False, options=OPTIONS).minimize()
    v.assign(np.zeros(N))
    opt = optrun.ScipyOptimizerInterface(lambda: _rosen(v), options=OPTIONS)
    result = opt.minimize(loss_callback=_after_build)
    tiers = result.tiers
    assert tiers["first"] == "plain" and tiers["second"] == "xla", tiers
    assert tiers["switched_at_evaluation"] is not None, tiers
    assert tiers["evaluations"]["xla"] > 0
    assert tiers["evaluations"]["plain"] == tiers["switched_at_evaluation"]
    # The optimum: numpy's Rosenbrock (all ones), as for the fixed mode.
    np.testing.assert_allclose(result.x, np.ones(N), atol=1e-5)
    np.testing.assert_allclose(result.x, fixed.x, atol=1e-5)
    assert result.fun == pytest.approx(rosen_np(result.x), abs=1e-12)
    assert opt.xla is True  # XLA serves at the end


def test_a_run_that_ends_while_tier2_builds_says_so(tier2_now: None) -> None:
    v = tf.Variable(np.zeros(N))
    result = optrun.ScipyOptimizerInterface(lambda: _rosen(v), options={"maxiter": 1}).minimize()
    tiers = result.tiers
    if tiers["evaluations"]["xla"] == 0:  # the build (started at the first point) had not served
        assert tiers["note"], tiers  # why not: still building, or not built
    _join_builds()


def test_short_run_never_builds_tier2() -> None:
    v = tf.Variable(np.zeros(N))
    result = optrun.ScipyOptimizerInterface(lambda: _rosen(v), options={"maxiter": 5}).minimize()
    assert result.tiers["evaluations"] == {"plain": result.nfev, "xla": 0}
    assert result.tiers["switched_at_evaluation"] is None
    # Why, in either case: the run ended before it had spent a compile, or the rest could not pay.
    assert result.tiers["note"] in (
        "xla not built: the run ended before it could pay",
        "xla not built: the evaluations still to come could not pay for it",
    )
    assert not _tier_threads()
    reference = scipy.optimize.minimize(
        scipy.optimize.rosen,
        np.zeros(N),
        jac=scipy.optimize.rosen_der,
        method="L-BFGS-B",
        options={"maxiter": 5},
    )
    np.testing.assert_allclose(result.x, reference.x, rtol=1e-8, atol=1e-10)


def test_gradient_free_method_stays_on_tier1(tier2_now: None) -> None:
    v = tf.Variable(np.zeros(3))
    result = optrun.ScipyOptimizerInterface(
        lambda: _rosen(v), method="Nelder-Mead", options={"maxiter": 50}
    ).minimize()
    assert result.tiers["evaluations"]["xla"] == 0
    assert "gains nothing" in result.tiers["note"]


def test_constrained_slsqp_tiered_equals_fixed(tier2_now: None) -> None:
    # min |v|^2 s.t. v0 + v1 = 1 and v1 >= 0.8: the optimum (0.2, 0.8) by hand.
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    def run(jit: bool | None) -> dict:
        v.assign([3.0, -2.0])
        opt = optrun.ScipyOptimizerInterface(
            lambda: tf.reduce_sum(v**2),
            equalities=[lambda: v[0] + v[1] - 1.0],
            inequalities=[lambda: v[1] - 0.8],
            jit_compile=jit,
        )
        return opt.minimize(loss_callback=_after_build)

    tiered, fixed = run(None), run(False)
    np.testing.assert_allclose(tiered.x, [0.2, 0.8], atol=1e-6)
    np.testing.assert_allclose(tiered.x, fixed.x, atol=1e-6)
    assert sum(tiered.tiers["evaluations"].values()) >= 1


def test_failed_xla_build_warns_once_and_keeps_tier1(
    tier2_now: None, caplog: pytest.LogCaptureFixture
) -> None:
    v = tf.Variable([2.0, 3.0], dtype=tf.float64)

    def loss() -> tf.Tensor:  # a py function: XLA cannot compile it (stateless: no side effect)
        shifted = tf.numpy_function(lambda a: a - 1.0, [v], tf.float64, stateful=False)
        return tf.reduce_sum(tf.square(v)) + 0.0 * tf.reduce_sum(shifted)

    with caplog.at_level("WARNING", logger="optrun"):
        result = optrun.ScipyOptimizerInterface(loss).minimize(loss_callback=_after_build)
        _join_builds()
    assert caplog.text.count("xla not used") == 1
    # One short line naming the op, not TensorFlow's kilobytes of node names.
    (record,) = [r for r in caplog.records if "xla not used" in r.getMessage()]
    assert "XLA cannot compile PyFunc" in record.getMessage()
    assert "\n" not in record.getMessage() and "function_node" not in record.getMessage()
    assert result.tiers["evaluations"]["xla"] == 0
    np.testing.assert_allclose(result.x, [0.0, 0.0], atol=1e-6)


def test_interrupt_during_build_leaves_no_thread(tier2_now: None) -> None:
    rng = np.random.default_rng(0)
    weights = [tf.Variable(rng.normal(size=(8, 32))), tf.Variable(rng.normal(size=(32, 1)))]
    data = tf.constant(rng.normal(size=(64, 8)))

    def loss() -> tf.Tensor:
        return tf.reduce_mean(tf.tanh(tf.tanh(data @ weights[0]) @ weights[1]) ** 2)

    calls = {"n": 0}

    def interrupt(*_: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the build started at the first point and is (most likely) running
            raise KeyboardInterrupt

    opt = optrun.ScipyOptimizerInterface(loss, var_list=weights)
    with pytest.raises(KeyboardInterrupt):
        opt.minimize(loss_callback=interrupt)
    assert not _tier_threads()
    assert opt.tiers is not None and opt.tiers["switched_at_evaluation"] is None


def test_fetches_callbacks_and_bounds_are_the_same_on_either_tier(tier2_now: None) -> None:
    # min sum((v - c)^2) with v <= 0.25 elementwise: the optimum is min(c, 0.25), by hand.
    c = np.linspace(-1.0, 1.0, 8)
    v = tf.Variable(np.zeros(8))
    total = tf.Variable(0.0, dtype=tf.float64, trainable=False)  # a fetched variable outside var_list

    def run(jit: bool | None) -> tuple[dict, list[float], list[np.ndarray]]:
        v.assign(np.zeros(8))
        total.assign(2.0)
        fetched: list[float] = []
        steps: list[np.ndarray] = []

        def on_loss(loss_value: float, total_value: float) -> None:
            assert total_value == 2.0
            fetched.append(float(loss_value))
            _after_build()

        opt = optrun.ScipyOptimizerInterface(
            lambda: tf.reduce_sum((v - c) ** 2),
            var_list=[v],
            var_to_bounds=[(v, (None, 0.25))],
            jit_compile=jit,
            options={"ftol": 0.0, "gtol": 1e-12},
        )
        loss_fetch = lambda: tf.reduce_sum((v - c) ** 2)
        result = opt.minimize(fetches=[loss_fetch, total], loss_callback=on_loss, step_callback=steps.append)
        return result, fetched, steps

    tiered, fetched, steps = run(None)
    fixed, fixed_fetched, fixed_steps = run(False)
    assert tiered.tiers["switched_at_evaluation"] is not None, tiered.tiers
    np.testing.assert_allclose(tiered.x, np.minimum(c, 0.25), atol=1e-8)
    np.testing.assert_allclose(v.numpy(), fixed.x, atol=1e-8)
    # The fetched loss is the value scipy saw, on every request, on either tier.
    assert len(fetched) == tiered.nfev and fetched[-1] == pytest.approx(tiered.fun, abs=1e-12)
    assert len(steps) == tiered.nit and len(fixed_steps) == fixed.nit
    assert fixed_fetched[-1] == pytest.approx(fixed.fun, abs=1e-12)


def test_warm_compile_cache_is_a_directory_with_programs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.evaluation.compile_cache import FLAG, compile_cache_warm

    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    assert compile_cache_warm() is False  # no cache in use
    monkeypatch.setenv("TF_XLA_FLAGS", f"{FLAG}={tmp_path}")
    assert compile_cache_warm() is False  # empty
    (tmp_path / "program").write_bytes(b"x")
    assert compile_cache_warm() is True


@pytest.mark.parametrize(
    ("variable", "value", "listed"),
    [
        ("OPTRUN_TIER2", "sometimes", "auto, now or never"),
        ("OPTRUN_GRAPPLER", "no", "once, tensorflow or off"),
        ("OPTRUN_SAFE_CALL", "true", "0 or 1"),
        ("OPTRUN_TIER1", "session", "auto or function"),
    ],
)
def test_a_bad_switch_is_refused_when_the_interface_is_built(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, listed: str
) -> None:
    from optrun.evaluation.switches import SwitchError

    monkeypatch.setenv(variable, value)
    v = tf.Variable(np.zeros(2))
    with pytest.raises(SwitchError, match=f"{variable} must be {listed}; got '{value}'") as caught:
        optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v**2))  # before any minimize
    assert isinstance(caught.value, optrun.InvalidArgumentError)
    assert (caught.value.variable, caught.value.value) == (variable, value)
    monkeypatch.setenv(variable, " ")  # empty counts as unset
    assert optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v**2)).minimize().success


def test_agreement_with_nan_and_inf_compares_the_finite_entries_at_their_own_scale() -> None:
    import warnings

    from optrun.evaluation.agreement import close

    def pair(*values: float) -> tuple[np.ndarray, list[np.ndarray]]:
        return np.array(values), []

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns when a NaN or Inf reaches atol
        assert close(pair(np.nan, 1.0), pair(np.nan, 1.0), 1e-6)
        assert close(pair(np.inf, 1.0), pair(np.inf, 1.0), 1e-6)
        # An Inf elsewhere must not make every finite difference look small.
        assert not close(pair(np.inf, 2.0), pair(np.inf, 1.0), 1e-6)
        assert not close(pair(np.nan, 2.0), pair(np.nan, 1.0), 1e-6)


def _packed(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """A stand-in tier: ``[sum(x^2) | 2x]``, worked out by hand."""
    return np.concatenate([[float(x @ x)], 2.0 * x]), []


def test_a_run_that_never_builds_keeps_no_copy_of_tier1_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.evaluation.tiers import Tiered

    monkeypatch.setenv("OPTRUN_TIER2", "never")
    tiered = Tiered(_packed, lambda: None, ("plain", "xla"), compile_estimate=0.0)
    tiered.begin(budget=100)
    for k in range(5):
        tiered(np.full(3, float(k)))
    # Each copy would hold the Jacobian rows (m x n): only a build being checked may keep them.
    assert tiered._recorded == []
    assert tiered.report.note == "xla not built: OPTRUN_TIER2=never"


def test_background_check_uses_the_point_the_build_started_at(monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.evaluation.tiers import Candidate, Tiered

    monkeypatch.setenv("OPTRUN_TIER2", "now")
    seen: list[np.ndarray] = []

    def wrong(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        seen.append(np.array(x))
        packed, fetched = _packed(x)
        packed[0] += 1.0  # a loss off by one: must never serve
        return packed, fetched

    tiered = Tiered(_packed, lambda: Candidate(wrong, wrong), ("plain", "xla"), compile_estimate=0.0)
    tiered.begin(budget=100)
    start = np.array([1.0, 2.0, 3.0])
    tiered(start)
    _join_builds()
    assert [x.tolist() for x in seen] == [start.tolist()]
    assert tiered.report.note == "xla not used: xla disagrees with plain at a checked point"
    assert tiered._recorded == []  # let go once checked
    tiered.boundary(start)
    assert tiered.tier == "plain"


def test_the_frames_frozen_before_the_background_compile_cover_every_function_called() -> None:
    from optrun.evaluation.stack_traces import freeze

    @tf.function
    def inner(a: tf.Tensor) -> tf.Tensor:
        return a * 2.0

    def body(x: tf.Tensor) -> tf.Tensor:
        _, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y + tf.reduce_sum(x)), [0, 0.0])
        y = tf.cond(y > 0, lambda: y * 2, lambda: y)
        return y + inner(tf.reduce_sum(x))

    spec = [tf.TensorSpec([2], tf.float32)]
    plain = tf.function(body, input_signature=spec, autograph=False).get_concrete_function()
    xla = tf.function(plain, input_signature=spec, jit_compile=True, autograph=False).get_concrete_function()
    # The XLA wrapper, the plain trace, the loop's condition and body, the two branches, ``inner``.
    assert freeze(xla) == 7
    assert xla(tf.constant([1.0, 2.0])).numpy() == pytest.approx(2 * 9.0 + 6.0)


def test_a_background_build_is_known_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPTRUN_TIER2", raising=False)
    release = threading.Event()
    started = threading.Event()

    def build() -> None:
        started.set()
        release.wait(10)

    first = lambda x: (np.array([float(np.sum(x))]), [])
    tiered = Tiered(first, build, ("plain", "xla"), compile_estimate=0.0)  # type: ignore[arg-type]
    tiered.begin(None)
    assert not building()
    try:
        tiered(np.zeros(2))
        tiered(np.ones(2))  # two points spent, more than the estimate: the build starts
        assert started.wait(10) and building()
    finally:
        release.set()
        tiered.end(raised=True)  # waits for the build
    assert not building()


def test_the_compile_estimate_counts_the_operations_of_called_functions() -> None:
    from optrun.evaluation.compile_estimate import (
        COMPILE_PER_OP,
        COMPILE_PER_TRACE,
        compile_estimate,
        graph_ops,
    )

    @tf.function
    def inner(x: tf.Tensor) -> tf.Tensor:
        body = lambda i, a: (i + 1, a * tf.sin(a) + tf.cos(a) / (1.0 + a * a))
        return tf.while_loop(lambda i, a: i < 10, body, [0, x])[1]

    outer = tf.function(lambda x: inner(x) * 2.0).get_concrete_function(tf.TensorSpec([], tf.float64))
    outer_only = sum(op.type != "Const" for op in outer.graph.get_operations())
    # The loop's body (sin, cos, mul, add, div, ...) is in the library, not the outer graph.
    assert graph_ops(outer) >= outer_only + 8
    assert compile_estimate(outer, 10.0) == COMPILE_PER_OP * graph_ops(outer)  # a slow trace: the cap
    assert compile_estimate(outer, 1e-6) == COMPILE_PER_TRACE * 1e-6  # a fast one: the trace


def test_a_build_thread_that_cannot_start_leaves_the_run_on_the_first_tier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPTRUN_TIER2", raising=False)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    first = lambda x: (np.array([float(np.sum(x))]), [])
    tiered = Tiered(first, lambda: None, ("plain", "xla"), compile_estimate=0.0)  # type: ignore[arg-type]
    tiered.begin(None)
    for point in (np.zeros(2), np.ones(2), np.full(2, 2.0)):
        assert tiered(point)[0][0] == 2 * point[0]
    assert not building()
    assert "can't start new thread" in tiered.report.note and tiered.tier == "plain"
    tiered.end(raised=True)  # nothing to wait for, and no error

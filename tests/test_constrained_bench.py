"""The large constrained bench's problem and bookkeeping (bench/constrained_bench.py); no timing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import constrained_bench as cb


def test_problem_is_feasible_but_not_at_the_start() -> None:
    problem = cb.make_problem(200)
    assert problem.violation(problem.feasible) < 1e-12
    assert problem.bound_excess(problem.feasible) == 0.0
    assert problem.violation(problem.x0()) > 1e-2
    assert problem.constraints(problem.x0()).shape == (cb.N_LINEAR + cb.N_NONLINEAR,)


def test_problem_is_seeded() -> None:
    one, two = cb.make_problem(50), cb.make_problem(50)
    assert np.array_equal(one.a, two.a) and np.array_equal(one.d, two.d)


def test_derivatives_match_finite_differences() -> None:
    problem = cb.make_problem(30)
    x = np.random.default_rng(1).uniform(-1.5, 1.5, size=30)
    step = 1e-6
    eye = np.eye(30)
    grad = [(problem.objective(x + step * e) - problem.objective(x - step * e)) / (2 * step) for e in eye]
    jac = [(problem.constraints(x + step * e) - problem.constraints(x - step * e)) / (2 * step) for e in eye]
    np.testing.assert_allclose(problem.gradient(x), grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(problem.jacobian(x), np.array(jac).T, rtol=1e-6, atol=1e-9)


def test_bound_excess() -> None:
    problem = cb.make_problem(3)
    assert problem.bound_excess(np.array([0.0, 2.5, -2.0])) == pytest.approx(0.5)
    assert problem.bound_excess(np.array([-2.25, 0.0, 2.0])) == pytest.approx(0.25)


def test_memory_predictions() -> None:
    assert cb.predicted_bytes("ipopt", 10**6) is None
    assert cb.predicted_bytes("anchor", 10**6) is None
    # SLSQP's workspace: about 10.5 n^2 float64 values.
    assert cb.predicted_bytes("slsqp", 100_000) == pytest.approx(84 * 100_000**2, rel=1e-3)
    assert cb.predicted_bytes("trust-constr", 10_000) == cb.TRUST_CONSTR_BYTES_PER_N2 * 10_000**2


def test_pivot_order_variant_is_the_other_one() -> None:
    assert cb.other_pivot_order({}) == 0
    assert cb.other_pivot_order({"mumps_pivot_order": 7}) == 0
    assert cb.other_pivot_order({"mumps_pivot_order": 0}) == 7
    defaults = {"mumps_pivot_order": 0}
    assert cb.ipopt_options("ipopt-order", 5, defaults) == {"max_iter": 5, "mumps_pivot_order": 7}
    assert cb.ipopt_options("anchor", None, defaults) == {}


def test_describe_and_per_iteration() -> None:
    run = {
        "seconds": 2.0,
        "nit": 10,
        "status": 0,
        "violation": 1e-15,
        "bound_excess": 2e-8,
        "fun": 1.5,
        "steady": 0.15,
        "peak_gib": 0.875,
    }
    assert cb.per_iteration(run) == 0.15
    assert cb.per_iteration({**run, "steady": math.nan}) == 0.2
    assert math.isnan(cb.per_iteration({"error": "not done in 60 s"}))
    text = cb.describe(run)
    assert "10 iterations, 150.0 ms/iteration, status 0" in text and "bounds exceeded by 2e-08" in text
    assert text.endswith("f 1.5, peak RSS 0.875 GiB")
    assert cb.describe({"error": "not done in 60 s", "nit": 3}) == "not done in 60 s (3 iterations done)"
    assert cb.describe({"error": "out of memory"}) == "out of memory"


def test_a_size_that_cannot_fit_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cb, "available_bytes", lambda: 8 * 2**30)
    found = cb.fresh("slsqp", 100_000)
    assert found["error"].startswith("out of memory (would need 782 GiB; 8 GiB available)")


def test_capped_target_states_memory_against_the_anchor_in_jacobian_rows() -> None:
    anchor = {"seconds": 10.0, "nit": 10, "steady": 0.6, "peak_gib": 0.75}
    run = {"seconds": 10.0, "nit": 10, "steady": 0.6, "peak_gib": 0.75 + 40 / 1024}
    # 10 rows of 100,000 float64 values: 7.6 MB; 40 MB more is 5.2x that.
    assert cb._target("ipopt", run, anchor, cb.CAPPED_N) == (
        "1.00x the anchor per iteration (<= 1.2x); peak RSS +40 MB against the anchor's, "
        "5.2x the Jacobian rows (8 MB)"
    )


def test_workset_row_in_units_of_the_jacobian_rows() -> None:
    # n = 1,000: the 10 rows are 80,000 bytes; 240,000 bytes are 3.0x that, and 30 vectors of n.
    row = cb._workset_row({"workset_bytes": 240_000}, 1_000)
    assert "3.0x the Jacobian rows (0.1 MB)" in row["setup"]
    assert "30 float64 vectors of length n" in row["setup"]
    assert math.isnan(row["us"]) and math.isnan(row["ratio"]) and row["case"] == ""
    failed = cb._workset_row({"error": "not done in 60 s"}, 1_000)
    assert failed["setup"].endswith(": not done in 60 s")

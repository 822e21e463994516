"""The tier policy of :mod:`optrun.evaluation.tiers` on plain NumPy evaluators: when tier 2 is built, when it
serves, and what is reported. (The real TF tiers are exercised in test_tiers.py and v1.)"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from optrun.evaluation import pace
from optrun.evaluation import tiers as tiers_module
from optrun.evaluation.tiers import Candidate, Tiered


class Clock:
    """A fake ``time.perf_counter``: only the slow tier's evaluations advance it."""

    now = 0.0


@pytest.fixture(autouse=True)
def _fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    Clock.now = 0.0
    monkeypatch.setattr(tiers_module, "perf_counter", lambda: Clock.now)
    monkeypatch.setattr(pace, "perf_counter", lambda: Clock.now)


def _quadratic(scale: float = 1.0, delay: float = 0.0):
    def evaluate(x: np.ndarray) -> tuple[np.ndarray, list]:
        Clock.now += delay
        return np.concatenate([[scale * float(x @ x)], 2 * scale * x]), []

    return evaluate


def _tiered(candidate: Candidate | None, estimate: float, delay: float = 0.001) -> Tiered:
    return Tiered(_quadratic(delay=delay), lambda: candidate, ("slow", "fast"), compile_estimate=estimate)


def _run(tiers: Tiered, points: int, budget: int | None) -> None:
    tiers.begin(budget)
    for i in range(points):
        x = np.full(3, float(i + 1))
        tiers(x)
        if tiers._thread is not None:  # the test waits for the build, a solver would not
            tiers._thread.join()
        tiers.boundary(x)  # an iteration ends at every point


def test_a_run_whose_budget_cannot_pay_never_builds() -> None:
    tiers = _tiered(Candidate(_quadratic(), _quadratic()), estimate=0.005)
    _run(tiers, 8, budget=9)  # 1 ms a point: 5 ms spent after 5 points, 4 ms left < 3 x 5 ms
    assert tiers.report.evaluations == {"slow": 8, "fast": 0}
    assert "could not pay" in tiers.report.note


def test_the_pace_that_must_pay_for_a_build_leaves_out_the_slow_first_point() -> None:
    # The first point also starts tier 1 up (tracing, graph set-up): 40 ms, then 1 ms a point.
    first = _quadratic(delay=0.001)
    calls = [0]

    def starting(x: np.ndarray) -> tuple[np.ndarray, list]:
        calls[0] += 1
        Clock.now += 0.039 if calls[0] == 1 else 0.0
        return first(x)

    tiers = Tiered(starting, lambda: Candidate(_quadratic(), _quadratic()), ("slow", "fast"), 0.040)
    _run(tiers, 60, budget=61)
    # By hand: decided at the second point (the first alone gives no pace): 59 points left at
    # 1 ms = 59 ms < 3 x 40 ms. With the first point in the pace (41 ms / 2 = 20.5 ms a point)
    # they would have looked like 1.2 s, and a build would have paid.
    assert tiers.report.evaluations == {"slow": 60, "fast": 0}
    assert "could not pay" in tiers.report.note


def test_a_build_must_be_paid_three_times_over() -> None:
    tiers = _tiered(Candidate(_quadratic(), _quadratic()), estimate=0.010)
    # 1 ms a point: 10 ms spent after 10 points, then 25 left = 25 ms: 2 builds' worth, not 3.
    _run(tiers, 35, budget=35)
    assert tiers.report.evaluations == {"slow": 35, "fast": 0}
    assert "could not pay" in tiers.report.note
    longer = _tiered(Candidate(_quadratic(), _quadratic()), estimate=0.010)
    _run(longer, 45, budget=45)  # 35 ms left at the tenth point: more than 3 builds' worth
    assert longer.report.evaluations["fast"] > 0


def test_runs_on_one_interface_add_up_and_then_switch() -> None:
    tiers = _tiered(Candidate(_quadratic(), _quadratic()), estimate=0.012)
    _run(tiers, 5, budget=None)  # ~5 ms: not yet
    assert tiers._thread is None and tiers.report.switched_at_evaluation is None
    _run(tiers, 10, budget=None)  # 5 + ~8 ms: built, then switched at an iteration's end
    report = tiers.report
    assert report.switched_at_evaluation is not None and 1 <= report.switched_at_evaluation < 10
    assert report.evaluations["slow"] == report.switched_at_evaluation
    assert report.evaluations["fast"] == 10 - report.switched_at_evaluation
    _run(tiers, 3, budget=5)  # the next run is served by tier 2 from its first point
    assert tiers.report.evaluations == {"slow": 0, "fast": 3} and tiers.report.switched_at_evaluation == 0


def test_earlier_runs_count_as_evaluations_still_to_come() -> None:
    tiers = _tiered(Candidate(_quadratic(), _quadratic()), estimate=0.010)
    _run(tiers, 20, budget=20)  # by hand: 10 ms spent at the tenth point, 10 left = 10 ms < 3 x 10 ms
    assert tiers.report.evaluations == {"slow": 20, "fast": 0}
    assert "could not pay" in tiers.report.note
    # The next run's first point: 19 left + 20 made before = 39 ms >= 30 ms (19 ms alone would not).
    _run(tiers, 20, budget=20)
    assert tiers.report.switched_at_evaluation == 1
    assert tiers.report.evaluations == {"slow": 1, "fast": 19}


def test_a_disagreeing_tier_is_refused_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    wrong = _quadratic(scale=1.01)
    tiers = _tiered(Candidate(wrong, wrong), estimate=0.0)
    with caplog.at_level(logging.WARNING, logger="optrun"):
        _run(tiers, 6, budget=None)
    assert tiers.report.evaluations == {"slow": 6, "fast": 0}
    assert caplog.text.count("fast not used: fast disagrees with slow") == 1


def test_no_tier_for_the_problem_is_said_quietly(caplog: pytest.LogCaptureFixture) -> None:
    tiers = _tiered(None, estimate=0.0)
    with caplog.at_level(logging.WARNING, logger="optrun"):
        _run(tiers, 4, budget=None)
    assert tiers.report.note == "fast not available for this problem" and not caplog.text


def test_a_build_that_raises_leaves_tier1_serving(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Candidate:
        raise RuntimeError("cannot compile: unsupported op PyFunc\nmore lines")

    tiers = Tiered(_quadratic(), broken, ("slow", "fast"), compile_estimate=0.0)
    with caplog.at_level(logging.WARNING, logger="optrun"):
        _run(tiers, 4, budget=None)
    assert tiers.report.note == "fast not used: cannot compile: unsupported op PyFunc"
    assert tiers.report.evaluations == {"slow": 4, "fast": 0} and caplog.text.count("not used") == 1


def test_a_tier_2_slower_than_tier_1_is_dropped_at_an_iteration_end(caplog: pytest.LogCaptureFixture) -> None:
    # Tier 1: 1 ms a point; the built tier 2: 2 ms a point, beyond the 1.1x allowed.
    tiers = _tiered(Candidate(_quadratic(), _quadratic(delay=0.002)), estimate=0.0)
    with caplog.at_level(logging.INFO, logger="optrun"):
        _run(tiers, 20, budget=None)
    report = tiers.report
    assert report.switched_at_evaluation is not None
    # Both tiers timed at PROBATION points after the switch, dropped at the iteration's end.
    assert report.evaluations["fast"] == pace.PROBATION
    assert report.evaluations["slow"] == 20 - pace.PROBATION and tiers.tier == "slow"
    assert report.note == (
        f"fast dropped after evaluation {report.switched_at_evaluation + pace.PROBATION}: slower than "
        "slow here (its fastest point 2 ms, slow's 1 ms)"
    )
    assert caplog.text.count("fast dropped") == 1
    assert not [r for r in caplog.records if r.levelno > logging.INFO]
    _run(tiers, 5, budget=None)  # the next run stays on tier 1 and builds nothing again
    assert tiers.report.evaluations == {"slow": 5, "fast": 0} and "dropped" in tiers.report.note


def test_a_tier_2_within_the_margin_is_kept() -> None:
    # 1.05 ms against 1 ms: within MARGIN (1.1x), so noise cannot flip a run back and forth.
    tiers = _tiered(Candidate(_quadratic(), _quadratic(delay=0.00105)), estimate=0.0)
    _run(tiers, 20, budget=None)
    switched = tiers.report.switched_at_evaluation
    assert tiers.tier == "fast" and switched is not None and tiers.report.evaluations["fast"] == 20 - switched
    assert tiers.report.note == ""


def test_a_fallback_tier_2_is_reported_under_its_own_name() -> None:
    tiers = _tiered(Candidate(_quadratic(), _quadratic(), name="fallback"), estimate=0.0)
    _run(tiers, 6, budget=None)
    report = tiers.report.as_dict()
    # Built at the second point, switched at its end: the other four points on the fallback.
    assert report["second"] == "fallback" and report["evaluations"] == {"slow": 2, "fallback": 4}, report

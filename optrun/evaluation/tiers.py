"""Tiered evaluation: start on the evaluation that is cheapest to start, switch once a faster one pays.

With ``jit_compile=None`` (the default) a backend serves the first points
from **tier 1**, the evaluation with the least start-up (a plain
``tf.function`` in TF2; in graph mode, one session callable). **Tier 2**
(XLA in TF2; in graph mode, the subgraph cut out into a function) costs a
compile before its first point, which a short run never earns back. So:

* tier 2 is built only once the interface has spent, on tier 1, about what the build is
  expected to cost (``compile_estimate``; counted over all its runs, so a short run repeated
  on one interface gets there too), and only while the evaluations still to come at tier 1's
  speed (its pace after the first point, which also starts tier 1 up) are worth at least
  :data:`PAYBACK` such builds. Still to come: the current run's remaining budget, plus as many
  as the interface's earlier runs made (used before, it is likely used as much again). A
  short or nearly finished first run never starts it;
* it is built in a background thread while the solver goes on on tier 1
  (at normal priority: on the bench's 2-core PINN, a lowest-priority build
  was starved long enough to cost more than it saved); it is tried there,
  off the solver's path, at the points tier 1 evaluated from the build's
  start on (at least the point the build started at), and must agree with them;
* the solver switches only between iterations (:meth:`Tiered.boundary`),
  after tier 2 has also agreed with tier 1 at the current point;
* for its first points after the switch both tiers evaluate each point,
  timed, and if tier 2 is slower after all, tier 1 serves again from the next
  iteration on (:mod:`optrun.evaluation.pace`);
* a build that fails or disagrees is logged once and the run stays on tier 1.

``OPTRUN_TIER2=now`` builds tier 2 from the first point on, whatever the budget;
``OPTRUN_TIER2=never`` keeps tier 1 throughout. With a warm compilation cache the
wait above is skipped (the compile is then mostly a load), not the budget check.

When ``minimize`` returns normally, a build still running goes on and serves
the next ``minimize``; when it raises, the build is waited for (no thread outlives it).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from optrun.causes import build_failure
from optrun.evaluation import switches
from optrun.evaluation.agreement import close
from optrun.evaluation.pace import Pace
from optrun.evaluation.point import Evaluator
from optrun.evaluation.tier_report import TierReport

logger = logging.getLogger("optrun")

Result = tuple[np.ndarray, list[Any]]
#: Tier 2 is built only when the remaining tier-1 time is worth at least this many builds. XLA is
#: often only 10-25% faster per point on compute-bound losses (the bench's PINNs), and a build
#: slows tier 1 while it runs, so a build that 2 would allow there can cost more than it saves.
PAYBACK = 3.0
#: At most this many distinct points of tier 1 are kept for the background check (the first at least).
CHECKED_POINTS = 2
_BUILDS: set[threading.Thread] = set()  # background builds now running, in any interface


def building() -> bool:
    """Whether a tier-2 build is running in the background (it wants a core of its own)."""
    return bool(_BUILDS)


@dataclass
class Candidate:
    """A built tier 2: ``trial`` runs with no side effect on the user's variables (safe in the
    background thread); ``evaluator`` is what the solver calls after the switch; ``name``, its
    name in the report where not the one :class:`Tiered` was given (a fallback)."""

    trial: Callable[[np.ndarray], Result]
    evaluator: Evaluator
    rtol: float = 1e-3
    name: str = ""


class Tiered:
    """An :data:`~optrun.evaluation.point.Evaluator` that serves tier 1 until tier 2 is ready and agrees.

    Args:
        first: tier 1.
        build: builds tier 2 (called in the background thread); None when the problem has none.
        names: the two tiers' names for the report, e.g. ``("plain", "xla")``.
        compile_estimate: seconds tier 2 is expected to take to build.
        start_now: build tier 2 from the first evaluation on, if the evaluations still to come
            can pay for it (a warm compilation cache, a function checked in an earlier run).
        held: why tier 2 is never built for this problem (e.g. the loss has side effects); empty: it may be.
    """

    def __init__(
        self,
        first: Evaluator,
        build: Callable[[], Candidate | None],
        names: tuple[str, str],
        compile_estimate: float,
        start_now: bool = False,
        held: str = "",
    ) -> None:
        self._first = first
        self._build = build
        self._estimate = compile_estimate
        policy = switches.read(switches.TIER2)
        self._forced = policy == "now"
        self._start_now = start_now
        self._held = f"{switches.TIER2}=never" if policy == "never" else held
        # Tier 1's outputs the background check compares tier 2 with (recorded while it runs).
        self._recorded: list[tuple[np.ndarray, Result]] = []
        self._checking = False
        self._last: tuple[np.ndarray, Result] | None = None
        self._thread: threading.Thread | None = None
        self._ready: Candidate | None = None
        self._failed = ""
        self._second: Evaluator | None = None
        self._speeds = Pace()
        self.budget: int | None = None  # evaluations the current run may still make
        self.report = TierReport(*names, evaluations={names[0]: 0, names[1]: 0})
        # Over the interface's life (a run repeated on one interface pays for a build too) ...
        self._spent = 0.0
        self._count = 0
        self._first_s = 0.0  # the first evaluation, which also starts tier 1 up
        # ... and in the current run.
        self._run_count = 0
        self._started_at = 0.0

    @property
    def tier(self) -> str:
        """The tier now serving."""
        return self.report.second if self._second is not None else self.report.first

    @property
    def path(self) -> str:
        """The tier now serving (the name the fixed modes' evaluators give as ``path``)."""
        return self.tier

    def begin(self, budget: int | None) -> None:
        """A new ``minimize`` starts: counts start anew; ``budget`` is its evaluation limit, if known."""
        self.budget = budget
        self._run_count, self._started_at = 0, perf_counter()
        names = (self.report.first, self.report.second)
        note = self.report.note if self._failed else ""
        self.report = TierReport(*names, evaluations={names[0]: 0, names[1]: 0}, note=note)
        if self._second is not None:  # verified in an earlier minimize: serve it from the start
            self.report.switched_at_evaluation, self.report.switched_after_s = 0, 0.0

    def __call__(self, x: np.ndarray) -> Result:
        if self._second is not None:
            self.report.evaluations[self.report.second] += 1
            if not self._speeds.on_probation:
                return self._second(x)
            return self._speeds.both(self._first, self._second, x)
        started = perf_counter()
        result = self._first(x)
        took = perf_counter() - started
        self._spent += took
        self._count += 1
        if self._count == 1:
            self._first_s = took
        self._run_count += 1
        self.report.evaluations[self.report.first] += 1
        self._last = (np.array(x, np.float64), result)
        if self._thread is None and not self.report.note:
            self._maybe_start()
        elif self._checking:
            self._record(*self._last)
        return result

    def _record(self, x: np.ndarray, result: Result) -> None:
        """Keeps a copy of tier 1's output at ``x`` for the background check. Only while a build
        runs: each copy holds the Jacobian rows (m x n), which a run that never builds should not
        pay for."""
        if len(self._recorded) < CHECKED_POINTS and not any(np.array_equal(x, p) for p, _ in self._recorded):
            self._recorded.append((x, _copy(result)))

    def _maybe_start(self) -> None:
        second = self.report.second
        if self._held:
            self.report.note = f"{second} not built: {self._held}"
            return
        if self.budget == 0:
            self.report.note = f"{second} not built: this method gains nothing from it"
            return
        if not self._forced:
            if not self._start_now and (self._spent < self._estimate or self._count < 2):
                return  # not yet: a run that ends before it has spent this much has nothing to gain
            remaining = math.inf if self.budget is None else self.budget - self._run_count
            # An interface run before is likely run as much again, and a build serves those runs too.
            remaining += self._count - self._run_count
            if remaining * self._pace() < PAYBACK * self._estimate:
                self.report.note = f"{second} not built: the evaluations still to come could not pay for it"
                return
        assert self._last is not None
        self._checking = True
        self._record(*self._last)
        thread = threading.Thread(target=self._work, name="optrun-tier2", daemon=False)
        _BUILDS.add(thread)
        try:
            thread.start()
        except RuntimeError as error:  # no thread to be had (a limit, interpreter shutdown)
            _BUILDS.discard(thread)
            self._checking, self._recorded = False, []
            self._fail(build_failure(error))
            return
        self._thread = thread

    def _pace(self) -> float:
        """Seconds per tier-1 evaluation, not counting the first, which also started tier 1 up
        (on the bench's PINN, as long as many others together)."""
        if self._count == 1:  # a warm cache decides at the first point: it is all there is
            return self._spent
        return (self._spent - self._first_s) / (self._count - 1)

    def _work(self) -> None:
        try:
            self._check()
        finally:
            self._checking, self._recorded = False, []
            _BUILDS.discard(threading.current_thread())

    def _check(self) -> None:
        try:
            candidate = self._build()
            if candidate is None:
                self.report.note = f"{self.report.second} not available for this problem"
                logger.debug("%s; the run goes on with %s", self.report.note, self.report.first)
                self._failed = self.report.note
                return
            for x, expected in list(self._recorded):
                if not close(candidate.trial(x), expected, candidate.rtol):
                    self._fail(f"{self.report.second} disagrees with {self.report.first} at a checked point")
                    return
            self._ready = candidate
        except Exception as error:  # noqa: BLE001 - any failure: stay on tier 1, say why once
            self._fail(build_failure(error))

    def _fail(self, why: str) -> None:
        self._failed = why
        self.report.note = f"{self.report.second} not used: {why}"
        logger.warning("%s; the run goes on with %s", self.report.note, self.report.first)

    def boundary(self, xk: np.ndarray) -> None:
        """Between iterations: switches to tier 2 when it is ready and agrees at ``xk``; goes
        back to tier 1 when tier 2 turned out slower."""
        if self._second is not None:
            if self._speeds.keep_second() is False:
                self._drop_second()
            return
        ready = self._ready
        if ready is None or self._last is None:
            return
        x, expected = self._last
        if not np.array_equal(x, xk):  # check at the current point only when tier 1 has it
            return
        try:
            agrees = close(ready.evaluator(x), expected, ready.rtol)
        except Exception as error:  # noqa: BLE001
            self._ready = None
            self._fail(build_failure(error))
            return
        if not agrees:
            self._ready = None
            self._fail(f"{self.report.second} disagrees with {self.report.first} at the current point")
            return
        self._second, self._ready = ready.evaluator, None  # lets the trial's shadow copies go
        self.report.rename_second(ready.name or self.report.second)
        self.report.switched_at_evaluation = self._run_count
        self.report.switched_after_s = perf_counter() - self._started_at

    def _drop_second(self) -> None:
        first, second = self.report.first, self.report.second
        self.report.dropped_at_evaluation = done = sum(self.report.evaluations.values())
        self._second = None
        self._failed = self.report.note = (
            f"{second} dropped after evaluation {done}: slower than {first} here (its fastest point "
            f"{self._speeds.second_best * 1e3:.3g} ms, {first}'s {self._speeds.first_best * 1e3:.3g} ms)"
        )
        logger.info("%s; the run goes on with %s", self.report.note, first)

    def end(self, raised: bool) -> None:
        """``minimize`` ends: after an error or an interrupt, waits for a running build."""
        if raised and self._thread is not None:
            self._thread.join()
        if self._second is None and not self.report.note:
            self.report.note = (
                f"{self.report.second} still building when the run ended (it serves the next run)"
                if self._thread is not None
                else f"{self.report.second} not built: the run ended before it could pay"
            )


def _copy(result: Result) -> Result:
    packed, fetched = result
    return np.array(packed), [np.array(f) for f in fetched]

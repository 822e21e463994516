"""The state of one ``minimize`` run, kept beside the external optimizer.

What :meth:`optrun.interfaces.external.ExternalOptimizerInterface.minimize`
tracks while a subclass's ``_minimize`` runs: the last accepted iterate (from
``step_callback``), the evaluation tiers (a faster tier may take over only at
an iteration boundary, see :mod:`optrun.evaluation.tiers`), where a run
that raises (a non-finite stop, a callback's error, Ctrl-C) leaves the
variables, and which tier served the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from optrun.errors import InvalidArgumentError, NonFiniteError
from optrun.evaluation.point import PointCache
from optrun.evaluation.tier_report import TierReport
from optrun.evaluation.tiers import Tiered


class RunState:
    """One run's bookkeeping; made once the run's point cache exists, before the optimizer starts.

    Args:
        cache: the run's point cache (its evaluator may be :class:`Tiered`).
        initial: the packed start point.
        constrained: whether the problem has constraints or bounds (a point outside them, which
            some methods try, is not one to keep).
        budget: the most evaluations the run may make, if known (tiering weighs a faster tier
            against it).
    """

    def __init__(self, cache: PointCache, initial: np.ndarray, constrained: bool, budget: int | None) -> None:
        self.cache = cache
        self.initial = initial
        self.constrained = constrained
        #: The last iterate step_callback accepted, and its iteration (0: the start point).
        self.accepted = initial
        self.iteration = 0
        self.tiers = cache.evaluator if isinstance(cache.evaluator, Tiered) else None
        if self.tiers is not None:
            self.tiers.begin(budget)

    def step_callback(
        self, user: Callable[[np.ndarray], Any], check_finite: bool
    ) -> Callable[[np.ndarray], Any]:
        """The ``step_callback`` for ``_minimize``: ``user`` itself unless the run must see each iterate.

        It must when tiers may switch (at iteration boundaries only), and where a run that raises
        keeps the last accepted iterate (:meth:`kept`): with constraints or bounds, or without the
        finite check (which tracks the lowest-loss point at no per-iteration cost).
        """
        if self.tiers is None and not self.constrained and check_finite:
            return user

        def step(xk: np.ndarray) -> None:
            self.accepted, self.iteration = np.array(xk, np.float64), self.iteration + 1
            if self.tiers is not None:
                self.tiers.boundary(xk)
            user(xk)

        return step

    def end(self, raised: bool, backend: Any) -> dict[str, Any]:
        """Ends the tiers (if any); returns which tier served (``ExternalOptimizerInterface.tiers``).

        Args:
            raised: whether the run ended with an exception.
            backend: the interface's backend (its ``xla`` names a fixed mode's tier).
        """
        if self.tiers is not None:
            self.tiers.end(raised)
            return self.tiers.report.as_dict()
        # Graph mode's fixed modes name their path ("function" or "session").
        xla = getattr(backend, "xla", None)
        mode: str = (
            "xla" if xla else "plain" if xla is False else getattr(self.cache.evaluator, "path", "session")
        )
        return TierReport(mode, "", {mode: self.cache.evaluations}).as_dict()

    def kept(self) -> tuple[np.ndarray, str]:
        """Where a run that raises leaves the variables, and what that point is.

        With constraints or bounds: the last accepted iterate (a point the optimizer took, not one
        of its trials, which may break them). Without: the lowest-loss point evaluated, that
        iterate or better, tracked by the cache at no per-iteration cost (with ``check_finite``;
        else the last accepted iterate). Before either: the start point.
        """
        if not self.constrained and self.cache.best_x is not None:
            return (
                self.cache.best_x,
                f"the finite point of lowest loss evaluated ({self.cache.best_loss:.6g})",
            )
        if self.iteration:
            return np.asarray(self.accepted, np.float64), (
                f"the last accepted iterate (iteration {self.iteration})"
            )
        return np.asarray(self.initial, np.float64), "the start point"

    def nonfinite_stop(self, error: NonFiniteError, advice: str) -> tuple[np.ndarray, NonFiniteError]:
        """Where a non-finite stop leaves the variables (:meth:`kept`), and the error that says so.

        Args:
            error: what the point cache raised.
            advice: the interface's way out (its ``nonfinite_advice``).
        """
        keep, where = self.kept()
        look = f"Look for log(0), 0/0 or an overflow in the loss and constraints, or {advice}"
        stop = NonFiniteError(f"minimize stopped: {error}. The variables hold {where}. {look}")
        # As data, for a caller that keeps another point (the CLI's checkpoint) to say it its way.
        stop.reason, stop.advice = str(error), look
        return keep, stop

    def solution(self, result: Any, owner: str, backend: Any) -> np.ndarray:
        """The packed solution ``_minimize`` returned: ``result.x``, or ``result`` itself.

        Args:
            result: what ``_minimize`` returned.
            owner: the interface's class name, for the error.
            backend: the interface's backend; on an error it gets :meth:`kept` back.

        Raises:
            InvalidArgumentError: it is not a flat vector of the packed length (a longer one would
                otherwise be cut to fit without a word).
        """
        found = getattr(result, "x", result)
        try:
            point = np.asarray(found, np.float64)
        except (TypeError, ValueError):
            point = None
        if point is not None and point.shape == self.initial.shape:
            return point
        keep, where = self.kept()
        backend.assign(keep)
        got = f"shape {point.shape}" if point is not None else f"{type(found).__name__}"
        raise InvalidArgumentError(
            f"{owner}._minimize returned {got} ({found!r:.60}) as its solution; it must return a "
            f"flat vector of {self.initial.size} values (the packed variables), or a result whose .x "
            f"is one, such as scipy's OptimizeResult. The variables hold {where}."
        )

"""Whether tier 2 is faster than tier 1, judged on the solver's own points.

Tier 2 is built because it is expected to be faster per point, but on some
problems and machines it is not: XLA on a CPU can lose to TensorFlow's own
kernels (``python -m bench slowxla``: the bench's PINN with TensorFlow held to
one intra-op thread). So for the first :data:`PROBATION` points after the
switch both tiers evaluate each point, one after the other (in turns, which
goes first), and tier 2 is kept unless the fastest of its times is more than
:data:`MARGIN` times the fastest of tier 1's::

    keep  <=>  min(t2[1..PROBATION]) <= MARGIN * min(t1[1..PROBATION])

Timed side by side, at the same points and in the same moments, a slow spell
of a shared machine falls on both; the fastest, not the mean, since a time is
the evaluation's cost plus whatever interrupted it. Tier 2's first calls may
check a thin call path against the public one (:mod:`optrun.evaluation.fastcall`),
which the minimum over several points leaves out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from optrun.evaluation.point import Evaluator

#: Points after the switch that both tiers evaluate, timed, before tier 2 is judged.
PROBATION = 6
#: Tier 2 stays unless its fastest point took more than this many times tier 1's fastest.
MARGIN = 1.10


@dataclass
class Pace:
    """The fastest time of each tier over the points timed so far, in seconds (plain data)."""

    first_best: float = math.inf
    second_best: float = math.inf
    timed: int = 0

    @property
    def on_probation(self) -> bool:
        """Whether points are still being timed on both tiers."""
        return self.timed < PROBATION

    def both(self, first: Evaluator, second: Evaluator, x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """Evaluates ``x`` on both tiers, timed, in turns which goes first; returns tier 2's result."""
        times: list[float] = [0.0, 0.0]
        results: list[Any] = [None, None]
        for tier in (0, 1) if self.timed % 2 == 0 else (1, 0):
            started = perf_counter()
            results[tier] = (first, second)[tier](x)
            times[tier] = perf_counter() - started
        self.pair(*times)
        return results[1]

    def pair(self, first_s: float, second_s: float) -> None:
        """One point, evaluated by both tiers: their times."""
        self.timed += 1
        self.first_best = min(self.first_best, first_s)
        self.second_best = min(self.second_best, second_s)

    def keep_second(self) -> bool | None:
        """None while on probation; then whether tier 2 is fast enough to keep."""
        if self.on_probation:
            return None
        return not self.second_best > MARGIN * self.first_best

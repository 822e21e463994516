"""Whether tier 2 is faster than tier 1, judged on the solver's own evaluations.

Tier 2 is built because it is expected to be faster per point, but on some
problems and machines it is not: XLA on a CPU can lose to TensorFlow's own
kernels (on the bench's PINN with TensorFlow held to one intra-op thread, the
XLA evaluation took about 1.5x as long as the plain one). So after the switch
the first :data:`PROBATION` evaluations of tier 2 are timed, and tier 2 is kept
unless the fastest of them took more than :data:`MARGIN` times the fastest
tier-1 evaluation::

    keep  <=>  min(t2[1..PROBATION]) <= MARGIN * min(t1[2..])

The fastest, not the mean: on a shared machine a time is the evaluation's cost
plus whatever interrupted it. Tier 1's first evaluation also starts it up
(tracing, Grappler), so it counts only while it is the only one. Tier 2's
first calls may check a thin call path against the public one
(:mod:`optrun.evaluation.fastcall`), which the minimum over several leaves out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Tier 2's evaluations timed after the switch before it is judged.
PROBATION = 6
#: Tier 2 stays unless its fastest point took more than this many times tier 1's fastest.
MARGIN = 1.10


@dataclass
class Pace:
    """The fastest evaluation seen on each tier, in seconds (plain data)."""

    first_best: float = math.inf  # tier 1, leaving out its first evaluation
    first_start: float = math.inf  # tier 1's first evaluation, used while it is the only one
    second_best: float = math.inf
    second_timed: int = 0

    def first(self, seconds: float, starting: bool) -> None:
        """A tier-1 evaluation took ``seconds``; ``starting``: it was the interface's first."""
        if starting:
            self.first_start = seconds
        else:
            self.first_best = min(self.first_best, seconds)

    @property
    def on_probation(self) -> bool:
        """Whether tier 2's evaluations are still being timed."""
        return self.second_timed < PROBATION

    def second(self, seconds: float) -> None:
        """A tier-2 evaluation during the probation took ``seconds``."""
        self.second_timed += 1
        self.second_best = min(self.second_best, seconds)

    @property
    def tier1_s(self) -> float:
        """Tier 1's fastest evaluation (its first, if that is all there is)."""
        return self.first_best if math.isfinite(self.first_best) else self.first_start

    def keep_second(self) -> bool | None:
        """None while on probation; then whether tier 2 is fast enough to keep."""
        if self.on_probation:
            return None
        return not self.second_best > MARGIN * self.tier1_s

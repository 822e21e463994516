"""When a periodic checkpoint is due: every ``every_steps`` steps (training steps or minimize
iterations), or once ``every_seconds`` have passed since the last checkpoint or the session's
start, whichever comes first.

The clock is read only between steps, so a checkpoint never falls inside one.
"""

from __future__ import annotations

import time


class SaveClock:
    """Says at each step whether the run's next periodic checkpoint is due.

    Args:
        every_steps: A checkpoint at each multiple of this step count; None: not by steps.
        every_seconds: A checkpoint once this much wall time has passed since the last one;
            None: not by time.
        timed: False where every process must save at the same step (a multi-worker run, whose
            saves are collective): the clocks of its workers would disagree, so only
            ``every_steps`` counts there.
    """

    def __init__(self, every_steps: int | None, every_seconds: float | None, timed: bool = True) -> None:
        self.every_steps = every_steps
        self.every_seconds = every_seconds if timed else None
        self._since = time.monotonic()

    def due(self, step: int) -> bool:
        """Whether to checkpoint after ``step``."""
        if self.every_steps and step % self.every_steps == 0:
            return True
        return self.every_seconds is not None and time.monotonic() - self._since >= self.every_seconds

    def saved(self) -> None:
        """Starts the wait for the next timed checkpoint (any checkpoint counts, periodic or not)."""
        self._since = time.monotonic()

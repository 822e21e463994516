"""What the TF2 and tf.compat.v1 tests of ``minimize``'s callbacks share.

``Requests`` counts scipy's loss requests between scipy and optrun's
``loss_grad_func``; ``AtPoints`` asks for the loss at known points, so a test
knows what each callback must have seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import optrun

START = np.array([-1.2, 1.0, 0.5], np.float32)


class Requests(optrun.ScipyOptimizerInterface):
    """Counts scipy's loss requests itself, between scipy and optrun's ``loss_grad_func``."""

    requests = 0

    def _minimize(self, initial_val, loss_grad_func, **rest):  # type: ignore[no-untyped-def, override]
        def counted(x: np.ndarray) -> Any:
            self.requests += 1
            return loss_grad_func(x)

        return super()._minimize(initial_val=initial_val, loss_grad_func=counted, **rest)


class AtPoints(optrun.ExternalOptimizerInterface):
    """Asks for the loss at the start, at ``SECOND``, and at ``SECOND`` again (a cache hit)."""

    SECOND = np.array([0.5, 2.0, -1.0])

    def _minimize(self, initial_val, loss_grad_func, step_callback, optimizer_kwargs, **unused):  # type: ignore[no-untyped-def, override]
        loss_grad_func(initial_val)
        loss_grad_func(self.SECOND.copy())
        loss_grad_func(self.SECOND.copy())
        step_callback(self.SECOND.copy())
        return self.SECOND

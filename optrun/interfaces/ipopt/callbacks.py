"""IPOPT's callbacks (cyipopt's ``problem_obj``) over optrun's evaluation functions.

One loss-and-gradient call per point serves both ``objective`` and
``gradient``; constraints and their dense Jacobian rows come from the same
cached evaluation (:mod:`optrun.evaluation.point`). ``intermediate`` counts the
iterations, keeps IPOPT's figures of the iteration (``info``: the barrier
parameter ``mu``, the infeasibilities, ...) and hands each new iterate to
``step_callback``.

An exception in any callback (Ctrl-C included) must end the solve. cyipopt
would store it, give IPOPT a value the callback never set, and let IPOPT go on
until its next ``intermediate``. Here the first exception is kept and IPOPT is
steered out without another evaluation: ``objective`` returns a value any line
search accepts and ``constraints`` a feasible one, so the iteration ends;
``gradient`` and ``jacobian`` raise cyipopt's evaluation error, on which IPOPT
stops at once; ``intermediate`` returns False. Measured: at most three
callbacks run after the exception. The caller raises it once ``solve`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from optrun.interfaces.external import LossGradFunc, no_step
from optrun.interfaces.ipopt.options import import_cyipopt

#: The arguments of IPOPT's intermediate callback, in the order cyipopt passes them.
INTERMEDIATE = (
    "alg_mod",  # 0: regular iteration, 1: restoration phase
    "iter_count",
    "obj_value",
    "inf_pr",
    "inf_du",
    "mu",
    "d_norm",
    "regularization_size",
    "alpha_du",
    "alpha_pr",
    "ls_trials",
)


class IpoptCallbacks:
    """cyipopt's ``problem_obj`` for ``n`` variables and ``m`` constraint rows (see the module docs).

    Args:
        loss_grad: ``x -> (loss, gradient)``; called once per distinct point.
        values: ``x -> constraint values``, one per kind present (equalities, then inequalities).
        jacobians: ``x -> Jacobian rows`` of the same kinds, in the same order.
        n, m: the number of variables and of constraint rows.
        step: called with IPOPT's iterate after each iteration (:func:`no_step`: skipped).
        tick: called before each evaluation (the deferred BLAS limit), or None.

    Attributes:
        problem: the ``cyipopt.Problem`` (set after it is built), for the current iterate.
        error: the first exception a callback raised, or None.
        nit: IPOPT's iteration count at the last ``intermediate``.
        nfev: points where the loss and gradient were computed.
        stopped: whether ``step`` raised ``StopIteration``, which ends the solve as a user's stop.
        info: the last ``intermediate``'s arguments by name (:data:`INTERMEDIATE`), updated
            in place before ``step`` runs, so that ``step`` can read them.
    """

    def __init__(
        self,
        loss_grad: LossGradFunc,
        values: list[Callable[[np.ndarray], np.ndarray]],
        jacobians: list[Callable[[np.ndarray], np.ndarray]],
        n: int,
        m: int,
        step: Callable[[np.ndarray], Any],
        tick: Callable[[], None] | None,
    ) -> None:
        self._loss_grad, self._values, self._jacobians = loss_grad, values, jacobians
        self._n, self._m, self._step, self._tick = n, m, step, tick
        self._key: bytes | None = None
        self._loss, self._grad = 0.0, np.zeros(n)
        self._last_x: np.ndarray | None = None
        self.problem: Any = None
        self.error: BaseException | None = None
        self.nit = 0
        self.nfev = 0
        self.stopped = False  # step raised StopIteration: IPOPT ends with User_Requested_Stop
        self.info: dict[str, float] = {}

    def _guarded(self, compute: Callable[[], Any]) -> tuple[bool, Any]:
        """``(True, compute())``, or ``(False, None)`` once anything has raised."""
        if self.error is None:
            try:
                return True, compute()
            except BaseException as error:  # noqa: BLE001 - raised again once IPOPT returns
                self.error = error
        return False, None

    def _at(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and gradient at ``x``, computed once per point whichever IPOPT asks for first."""
        key = x.tobytes()
        if key != self._key:
            if self._tick is not None:
                self._tick()
            self.nfev += 1
            self._loss, self._grad = self._loss_grad(x)
            self._key, self._last_x = key, x
        return self._loss, self._grad

    def objective(self, x: np.ndarray) -> float:
        ok, value = self._guarded(lambda: self._at(x)[0])
        return value if ok else -1e100  # accepted by any line search: the iteration ends, IPOPT stops

    def gradient(self, x: np.ndarray) -> np.ndarray:
        ok, value = self._guarded(lambda: self._at(x)[1])
        if not ok:
            raise import_cyipopt().CyIpoptEvaluationError("stopping")  # IPOPT stops at once
        return value

    def loss_at(self, x: np.ndarray) -> float:
        """The loss at ``x``: the evaluation's own where IPOPT's last point was ``x``, as it is
        after a normal end (IPOPT's ``obj_val`` is 0 where it stopped before an iteration)."""
        return float(self._at(np.asarray(x, np.float64))[0])

    def constraints(self, x: np.ndarray) -> np.ndarray:
        # m = 0 too: IPOPT asks with fixed_variable_treatment make_constraint.
        ok, value = self._guarded(
            lambda: np.concatenate([f(x) for f in self._values]) if self._values else np.zeros(0)
        )
        return value if ok else np.zeros(self._m)  # feasible: nothing holds the iteration back

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        # Dense, row by row: what jacobian() returns, raveled.
        rows = np.repeat(np.arange(self._m, dtype=np.int32), self._n)
        return rows, np.tile(np.arange(self._n, dtype=np.int32), self._m)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        ok, value = self._guarded(lambda: self._rows(x))
        if not ok:
            raise import_cyipopt().CyIpoptEvaluationError("stopping")
        return value

    def _rows(self, x: np.ndarray) -> np.ndarray:
        # Each block is a fresh array: one kind is passed on as it is, as a second copy of
        # m x n rows would raise the peak of every evaluation.
        blocks = [j(x) for j in self._jacobians]
        if len(blocks) == 1:
            return blocks[0].ravel()
        return np.concatenate([b.ravel() for b in blocks]) if blocks else np.zeros(0)  # m = 0

    def intermediate(self, alg_mod: int, iter_count: int, *figures: float) -> bool:
        self.nit = int(iter_count)
        self.info.update(zip(INTERMEDIATE, (alg_mod, iter_count, *figures), strict=False))
        if iter_count > 0 and self._step is not no_step:  # iteration 0 is the start point
            self._guarded(lambda: self._step(self._current_x()))
        if isinstance(self.error, StopIteration):  # a stop asked for, as scipy's callbacks may
            self.error, self.stopped = None, True
        return self.error is None and not self.stopped

    def _current_x(self) -> np.ndarray:
        """IPOPT's iterate (Ipopt >= 3.14); else the last point evaluated, usually that iterate."""
        try:
            current = self.problem.get_current_iterate()
        except RuntimeError:
            current = None
        if current is not None:
            return np.array(current["x"], np.float64)
        return np.array(self._last_x if self._last_x is not None else np.zeros(self._n), np.float64)

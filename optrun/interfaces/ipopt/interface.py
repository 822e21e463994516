"""``IpoptInterface``: IPOPT (interior point, through cyipopt) over TF variables.

IPOPT solves::

    min f(x)   subject to   cl <= g(x) <= cu,   lb <= x <= ub

and the interface maps optrun's problem onto it:

* ``g(x) = [e_1(x), ..., e_p(x), h_1(x), ..., h_q(x)]``: equalities first, with
  ``cl = cu = 0``; then inequalities ``h_j(x) >= 0``, with ``cl = 0`` and
  ``cu = +inf``;
* ``lb``, ``ub`` from ``var_to_bounds``; an unbounded side (``-inf``/``+inf``)
  becomes ``-/+2e19``, beyond IPOPT's ``nlp_lower/upper_bound_inf`` (``-/+1e19``),
  which IPOPT reads as no bound;
* the Jacobian of ``g`` is dense: ``(p + q) * n`` entries, rows in that order.
  Above :data:`MAX_JACOBIAN_ENTRIES`, or where it would not fit in the memory
  available (:mod:`optrun.interfaces.ipopt.jacobian`), the constructor refuses,
  as sparse Jacobians are not supported yet;
* no Hessian: ``hessian_approximation`` is ``limited-memory`` (L-BFGS), so
  ``n`` is not limited by a dense Hessian as in cyipopt's ``minimize_ipopt``.

IPOPT's multipliers come back in ``result.multipliers`` with IPOPT's sign
convention, at a solution::

    grad f(x) + J_g(x)^T mult_g - mult_x_L + mult_x_U = 0

so ``mult_x_L, mult_x_U >= 0``, and an active inequality ``h_j >= 0`` has
``mult_g[p + j] <= 0``.

IPOPT asks for ``f`` and ``grad f`` separately; both come from one call of the
loss-and-gradient function, once per point (so ``loss_callback`` runs once per
point too), and constraints and Jacobians from the same cached evaluation (see
:mod:`optrun.interfaces.external`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from optrun.errors import InvalidArgumentError, MissingDependencyError
from optrun.evaluation.bounds import PackedBounds
from optrun.evaluation.point import stack
from optrun.interfaces.external import ExternalOptimizerInterface, GradFunc, LossGradFunc, ValueFunc
from optrun.interfaces.ipopt.callbacks import IpoptCallbacks
from optrun.interfaces.ipopt.defaults import with_defaults
from optrun.interfaces.ipopt.jacobian import MAX_JACOBIAN_ENTRIES, check_jacobian_size
from optrun.interfaces.ipopt.options import (
    DEFAULT_MAX_ITER,
    check_options,
    import_cyipopt,
    option_table,
)
from optrun.interfaces.threads import blas_limit_for, check_blas_threads, deferred, limited_blas
from optrun.suggest import close_match

__all__ = ["MAX_JACOBIAN_ENTRIES", "IpoptInterface", "MissingDependencyError"]

logger = logging.getLogger("optrun")

#: An unbounded side, as IPOPT reads it (any value beyond nlp_lower/upper_bound_inf).
IPOPT_INF = 2e19
#: IPOPT's statuses that count as a solution.
SUCCESS_STATUSES = frozenset({0, 1, 6})  # Solve_Succeeded, Solved_To_Acceptable_Level, Feasible_Point_Found
_STATUS_MESSAGES = {-5: "Maximum wall time exceeded."}  # new in Ipopt 3.14; cyipopt has no text for it
_KEYWORDS = ("options", "jit_compile", "blas_threads", "check_finite")
_ELSEWHERE = {
    "method": "IpoptInterface always runs IPOPT; method= is ScipyOptimizerInterface's",
    "tol": "IPOPT's tolerance is an option: options={'tol': ...}",
    "bounds": "use var_to_bounds instead",
    "constraints": "pass equalities= and inequalities= instead",
    "callback": "pass step_callback to minimize() instead",
}


class IpoptInterface(ExternalOptimizerInterface):
    """Minimizes over TF variables with IPOPT (cyipopt: the ipopt extra).

    For instance:

    ```python
    vector = tf.Variable([7., 7.])
    opt = IpoptInterface(
        lambda: tf.reduce_sum(tf.square(vector)),
        equalities=[lambda: vector[1] - 1.],
        inequalities=[lambda: vector[0] - 1.],
        options={"tol": 1e-10})
    result = opt.minimize()   # vector is now [1., 1.]; result.multipliers["mult_g"]
    ```

    Args:
        loss: as for :class:`ExternalOptimizerInterface`.
        var_list: as for :class:`ExternalOptimizerInterface`.
        equalities: as for :class:`ExternalOptimizerInterface`.
        inequalities: as for :class:`ExternalOptimizerInterface`.
        var_to_bounds: as for :class:`ExternalOptimizerInterface`.
        options: IPOPT's options by name (``{"max_iter": 200, "tol": 1e-9}``),
            checked against the installed IPOPT's own list at construction. The
            interface sets ``print_level 0`` and ``sb yes`` (quiet),
            ``option_file_name ""`` (no ``./ipopt.opt``),
            ``hessian_approximation limited-memory`` and ``mumps_pivot_order 0``
            (AMD; measured faster for the dense constraint rows given here)
            unless given here, and with an ``output_file``, ``file_print_level 5``
            (IPOPT's default). A file option IPOPT could not use (an
            ``output_file`` it cannot write, an ``option_file_name`` that is
            missing or holds a bad line) is refused here too.
        jit_compile: as for :class:`ExternalOptimizerInterface`.
        check_finite: as for :class:`ExternalOptimizerInterface`. With
            ``check_finite=False`` IPOPT sees NaN and Inf itself: it cuts the
            step back at a non-finite trial point, and stops with status -13
            (Invalid_Number_Detected) where it cannot.
        blas_threads: ``"auto"`` (one thread), a whole number or
            ``"unlimited"``: the BLAS pools (IPOPT's MUMPS uses BLAS) while
            IPOPT runs, see :mod:`optrun.interfaces.threads`.

    ``minimize`` returns a ``scipy.optimize.OptimizeResult`` with ``x``, ``fun``,
    ``success``, ``status`` (IPOPT's return status), ``message``, ``nit``,
    ``nfev`` (points where the loss was computed), ``constraints`` (``g(x)``) and
    ``multipliers`` (``mult_g``, ``mult_x_L``, ``mult_x_U``; see the module docs).
    ``step_callback`` gets IPOPT's iterate after each iteration; there,
    :attr:`iteration_info` holds IPOPT's figures of that iteration (``mu``, ...).

    Raises:
        MissingDependencyError: cyipopt is not installed.
        InvalidArgumentError: a bad option, or a dense Jacobian too large.
    """

    #: The way out a non-finite stop's message offers.
    nonfinite_advice = (
        "pass check_finite=False to let IPOPT see non-finite values (it cuts the step back at them)."
    )

    def __init__(
        self,
        loss: Callable[[], Any],
        var_list: Any = None,
        equalities: Any = None,
        inequalities: Any = None,
        var_to_bounds: Any = None,
        *,
        options: dict[str, Any] | None = None,
        jit_compile: bool | None = None,
        blas_threads: int | str = "auto",
        check_finite: bool = True,
        **unknown: Any,
    ) -> None:
        import_cyipopt()  # first: without the extra, nothing else can be checked
        self._info: dict[str, float] = {}
        if unknown:
            raise InvalidArgumentError(_unknown_keyword(unknown))
        self.blas_threads = check_blas_threads(blas_threads)
        checked = check_options(options)
        super().__init__(
            loss,
            var_list,
            equalities,
            inequalities,
            var_to_bounds,
            jit_compile=jit_compile,
            check_finite=check_finite,
            options=checked,
        )
        check_jacobian_size(len(self._equalities) + len(self._inequalities), self.layout.size)

    @property
    def method(self) -> str:
        """``"ipopt"``: the name IPOPT's return codes are read under (:mod:`optrun.runner.outcome`)."""
        return "ipopt"

    @property
    def iteration_info(self) -> dict[str, float]:
        """IPOPT's figures of its latest iteration, as its intermediate callback gets them.

        Keys: ``iter_count``, ``obj_value``, ``inf_pr`` and ``inf_du`` (primal and
        dual infeasibility), ``mu`` (the barrier parameter), ``d_norm``,
        ``regularization_size``, ``alpha_du``, ``alpha_pr``, ``ls_trials`` and
        ``alg_mod`` (1 in the restoration phase). Read it from ``step_callback``;
        empty before the first iteration of a :meth:`minimize`.
        """
        return dict(self._info)

    @property
    def options(self) -> dict[str, str | int | float]:
        """The options IPOPT gets: the interface's defaults updated with the user's."""
        return with_defaults(self.optimizer_kwargs["options"])

    def _evaluation_budget(self) -> int | None:
        # Each iteration evaluates at least once: max_iter bounds the evaluations from below.
        return int(self.options.get("max_iter", DEFAULT_MAX_ITER)) + 1

    def _minimize(
        self,
        initial_val: np.ndarray,
        loss_grad_func: LossGradFunc,
        equality_funcs: list[ValueFunc],
        equality_grad_funcs: list[GradFunc],
        inequality_funcs: list[ValueFunc],
        inequality_grad_funcs: list[GradFunc],
        packed_bounds: PackedBounds | None,
        step_callback: Callable[[np.ndarray], Any],
        optimizer_kwargs: dict[str, Any],
    ) -> scipy.optimize.OptimizeResult:
        cyipopt = import_cyipopt()
        options = with_defaults(optimizer_kwargs["options"])
        x0 = np.asarray(initial_val, np.float64)
        n, p, q = x0.size, len(equality_funcs), len(inequality_funcs)
        # Beyond the user's own nlp_*_bound_inf too, so that "unbounded" stays unbounded.
        inf = max(IPOPT_INF, 2 * abs(float(options.get("nlp_upper_bound_inf", 0.0))))
        minf = min(-IPOPT_INF, -2 * abs(float(options.get("nlp_lower_bound_inf", 0.0))))
        lb, ub = np.full(n, minf), np.full(n, inf)
        if packed_bounds is not None:
            lb = np.where(np.isneginf(packed_bounds.lower), minf, packed_bounds.lower)
            ub = np.where(np.isposinf(packed_bounds.upper), inf, packed_bounds.upper)
        # "auto" is one thread, as for scipy: IPOPT and MUMPS use a BLAS of their own that this
        # limit does not reach, and at n = 10,000 one thread and unlimited took the same time
        # (bench "constrained").
        with limited_blas(blas_limit_for(self.blas_threads, "ipopt"), deferred(self.blas_threads)) as tick:
            callbacks = IpoptCallbacks(
                loss_grad_func,
                [stack(f) for f in (equality_funcs, inequality_funcs) if f],
                [stack(f, jacobian=True) for f in (equality_grad_funcs, inequality_grad_funcs) if f],
                n,
                p + q,
                step_callback,
                tick,
            )
            problem = cyipopt.Problem(
                n=int(n),
                m=int(p + q),
                problem_obj=callbacks,
                lb=lb,
                ub=ub,
                cl=np.zeros(p + q),
                cu=np.concatenate([np.zeros(p), np.full(q, inf)]),
            )
            callbacks.problem = problem
            self._info = callbacks.info  # the same dict, updated as IPOPT iterates
            for key, value in options.items():
                problem.add_option(key, value)
            x, info = problem.solve(x0)
            if callbacks.error is not None:  # Ctrl-C, a callback's error, a non-finite evaluation
                raise callbacks.error
            fun = callbacks.loss_at(x)  # under the BLAS limit: an evaluation, where x is a new point
        status = int(info["status"])
        message = _STATUS_MESSAGES.get(status) or info["status_msg"].decode("utf-8", "replace")
        if callbacks.stopped:
            message = "`step_callback` raised `StopIteration`."
        result = scipy.optimize.OptimizeResult(
            x=np.asarray(x, np.float64),
            fun=fun,
            success=status in SUCCESS_STATUSES,
            status=status,
            message=message,
            nit=callbacks.nit,
            nfev=callbacks.nfev,
            constraints=np.asarray(info["g"], np.float64),
            multipliers={
                key: np.asarray(info[key], np.float64) for key in ("mult_g", "mult_x_L", "mult_x_U")
            },
        )
        logger.info(
            "IPOPT terminated with:\n  Message: %s\n  Objective function value: %f\n"
            "  Number of iterations: %s\n  Number of functions evaluations: %s",
            message,
            result.fun,
            result.nit,
            result.nfev,
        )
        return result


def _unknown_keyword(given: dict[str, Any]) -> str:
    name = sorted(given)[0]
    if name in _ELSEWHERE:
        return f"IpoptInterface got {name}={given[name]!r:.60}: {_ELSEWHERE[name]}"
    if name in option_table():
        return f"IpoptInterface got {name}={given[name]!r:.60}: IPOPT options go in options={{{name!r}: ...}}"
    close = close_match(name, _KEYWORDS)
    hint = f"did you mean {close!r}?" if close else f"it takes {', '.join(_KEYWORDS)}"
    return f"IpoptInterface got an unknown keyword {name}={given[name]!r:.60}; {hint}"

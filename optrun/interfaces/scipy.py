"""``ScipyOptimizerInterface``: ``scipy.optimize.minimize`` over TF variables.

Every callable handed to scipy reads one cached, compiled evaluation (see
:mod:`optrun.interfaces.external`), so SLSQP asking for ``f``, ``grad f``, all
constraint values and all constraint Jacobians at one point costs one TF
call. Constraints are stacked into one vector-valued constraint per kind, in
the form each method takes (see :mod:`optrun.interfaces.constraints`);
Jacobians always come from autodiff. The method and its options are checked
at construction (see :mod:`optrun.interfaces.method_options`).
"""

from __future__ import annotations

import inspect
import logging
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from optrun.errors import InvalidArgumentError, InvalidTypeError, UnsupportedMethodError
from optrun.evaluation.bounds import ElementwiseBounds, PackedBounds, gives_bounds
from optrun.interfaces.constraints import scipy_constraints
from optrun.interfaces.external import ExternalOptimizerInterface, GradFunc, LossGradFunc, ValueFunc, no_step
from optrun.interfaces.method_options import (
    BOUNDED,
    CONSTRAINED,
    DEFAULT_CONSTRAINED_METHOD,
    DEFAULT_LIMITS,
    DEFAULT_METHOD,
    GRADIENT_FREE,
    KEEP_START_DTYPE,
    check_hessian,
    check_options,
    check_sizes,
    method_name,
    tnc_maxiter,
)
from optrun.interfaces.objective import as_tf1_gave, per_iteration, ticking
from optrun.interfaces.threads import blas_limit_for, check_blas_threads, deferred, limited_blas

logger = logging.getLogger("optrun")

_FORBIDDEN = {
    "fun": "the loss is the first argument of the interface",
    "x0": "the start point is the variables' current values",
    "args": "the loss is a zero-argument callable; close over what it needs",
    "jac": "the interface computes exact gradients with TF autodiff",
    "constraints": "pass equalities= and inequalities= instead",
}
_MINIMIZE_KEYWORDS = set(inspect.signature(scipy.optimize.minimize).parameters)


class ScipyOptimizerInterface(ExternalOptimizerInterface):
    """Minimizes over TF variables with ``scipy.optimize.minimize``.

    Example::

        vector = tf.Variable([7., 7.])
        opt = ScipyOptimizerInterface(
            lambda: tf.reduce_sum(tf.square(vector)),
            equalities=[lambda: vector[1] - 1.],
            inequalities=[lambda: vector[0] - 1.],
            method="SLSQP")
        result = opt.minimize()   # vector is now [1., 1.]

    ``method`` defaults to L-BFGS-B, or to SLSQP when there are constraints
    (scipy's own rule). Any other keyword (``method``, ``options``, ``tol``,
    ``hess``, ...) goes to ``scipy.optimize.minimize``; ``jac`` and
    ``constraints`` are set by the interface. ``bounds`` (scipy's, one pair
    per element of the packed vector) and ``callback`` (called after
    ``step_callback``) are taken as TF 1.0 passed them on; prefer
    ``var_to_bounds``, keyed by variable.
    ``blas_threads`` (``"auto"``, a whole number or ``"unlimited"``) caps the
    BLAS thread pools while scipy runs, see :mod:`optrun.interfaces.threads`.
    See :class:`ExternalOptimizerInterface` for the other arguments.
    """

    def __init__(
        self,
        loss: Callable[[], Any],
        var_list: Any = None,
        equalities: Any = None,
        inequalities: Any = None,
        var_to_bounds: Any = None,
        *,
        jit_compile: bool | None = None,
        blas_threads: int | str = "auto",
        check_finite: bool = True,
        **optimizer_kwargs: Any,
    ) -> None:
        self.blas_threads = check_blas_threads(blas_threads)
        for key, advice in _FORBIDDEN.items():
            if key in optimizer_kwargs:
                raise InvalidArgumentError(
                    f"ScipyOptimizerInterface sets {key!r} itself; {advice} (got {key}="
                    f"{optimizer_kwargs[key]!r:.60})"
                )
        unknown = sorted(set(optimizer_kwargs) - _MINIMIZE_KEYWORDS)
        if unknown:
            raise InvalidArgumentError(
                f"unknown scipy.optimize.minimize keyword(s) {unknown}; it takes "
                f"{sorted(_MINIMIZE_KEYWORDS - set(_FORBIDDEN))} (method options such as maxiter "
                "go in options={...})"
            )
        _check_tol(optimizer_kwargs.get("tol"))
        if optimizer_kwargs.get("callback") is not None and not callable(optimizer_kwargs["callback"]):
            raise InvalidTypeError(f"callback must be callable; got {optimizer_kwargs['callback']!r:.60}")
        if optimizer_kwargs.get("bounds") is not None:  # scipy's own, per element, as TF 1.0 passed it
            if gives_bounds(var_to_bounds):
                raise InvalidArgumentError("pass var_to_bounds or bounds=, not both")
            var_to_bounds = ElementwiseBounds(optimizer_kwargs["bounds"])
        constrained = _given(equalities) or _given(inequalities)
        if "method" not in optimizer_kwargs:
            optimizer_kwargs["method"] = DEFAULT_CONSTRAINED_METHOD if constrained else DEFAULT_METHOD
        name = method_name(optimizer_kwargs["method"])
        if name == "tnc":
            optimizer_kwargs["options"] = tnc_maxiter(optimizer_kwargs.get("options"))
        if name is not None:
            check_options(optimizer_kwargs["method"], name, optimizer_kwargs.get("options"))
            check_hessian(
                optimizer_kwargs["method"], name, optimizer_kwargs.get("hess"), optimizer_kwargs.get("hessp")
            )
        if name is not None and constrained and name not in CONSTRAINED:
            raise UnsupportedMethodError(
                f"method {optimizer_kwargs['method']!r} cannot handle equality or inequality "
                "constraints (scipy would silently ignore them); use SLSQP, trust-constr, "
                "COBYLA or COBYQA."
            )
        if name is not None and gives_bounds(var_to_bounds) and name not in BOUNDED:  # before any op
            raise UnsupportedMethodError(
                f"method {optimizer_kwargs['method']!r} does not support bounds; use one of "
                f"{', '.join(sorted(BOUNDED))}, or drop the bounds."
            )
        super().__init__(
            loss,
            var_list,
            equalities,
            inequalities,
            var_to_bounds,
            jit_compile=jit_compile,
            check_finite=check_finite,
            **optimizer_kwargs,
        )
        if name is not None:  # options shaped by the number of variables, now that it is known
            check_sizes(name, self.optimizer_kwargs.get("options"), self.layout.size)

    def _needs_gradients(self) -> bool:
        return method_name(self.optimizer_kwargs["method"]) not in GRADIENT_FREE

    def _evaluation_budget(self) -> int | None:
        """The most evaluations the method may make, from its options or scipy's defaults."""
        name = method_name(self.optimizer_kwargs["method"])
        if name in GRADIENT_FREE:
            # Their runs are dominated by the method's own work per point, and their paths turn on
            # the last digits of each value: a faster, slightly different evaluation rarely pays.
            return 0
        options = self.optimizer_kwargs.get("options") or {}
        limits = [options[key] for key in ("maxfun", "maxfev", "maxiter") if options.get(key)]
        default = DEFAULT_LIMITS.get(name or "")
        if not limits and default is None:
            return None
        # Each iteration takes at least one evaluation: maxiter bounds evaluations from below,
        # which errs on the side of not building a faster tier.
        return int(min([*limits, *([default] if default else [])])) + 1

    @property
    def method(self) -> str:
        """The scipy method this interface runs."""
        method = self.optimizer_kwargs["method"]
        return method if isinstance(method, str) else getattr(method, "__name__", repr(method))

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
        kwargs = dict(optimizer_kwargs)
        method = kwargs.pop("method")
        kwargs.pop("bounds", None)  # packed at construction, as var_to_bounds are
        also = kwargs.pop("callback", None)  # TF 1.0 passed scipy's callback on: called after step_callback
        name = method_name(method)
        jac = None if name in GRADIENT_FREE else True
        fun = as_tf1_gave(loss_grad_func, jac, typed=self.start_dtype != np.float64)
        start = np.asarray(initial_val)
        if name not in KEEP_START_DTYPE:
            start = start.astype(np.float64)
        constraints = scipy_constraints(
            name, equality_funcs, equality_grad_funcs, inequality_funcs, inequality_grad_funcs
        )
        bounds = None
        if packed_bounds is not None:
            bounds = scipy.optimize.Bounds(packed_bounds.lower, packed_bounds.upper)
        callback = None
        if step_callback is not no_step or also is not None:  # scipy's bookkeeping only when used
            callback = per_iteration(step_callback, also)

        if constraints:
            kwargs["constraints"] = constraints
        with limited_blas(blas_limit_for(self.blas_threads, name), deferred(self.blas_threads)) as tick:
            result = scipy.optimize.minimize(
                ticking(fun, tick),
                start,
                method=method,
                jac=jac,
                bounds=bounds,
                callback=callback,
                **kwargs,
            )
        # A custom method's result may hold only x: what it lacks is logged as n/a.
        logger.info(
            "Optimization terminated with:\n  Message: %s\n  Objective function value: %s\n"
            "  Number of iterations: %s\n  Number of functions evaluations: %s",
            getattr(result, "message", "n/a"),
            _as_f(getattr(result, "fun", "n/a")),
            *(getattr(result, key, "n/a") for key in ("nit", "nfev")),
        )
        return result


def _check_tol(tol: Any) -> None:
    """Refuses a ``tol`` scipy would fail on mid-run (a string) or misread (negative, NaN)."""
    if tol is None:
        return
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise InvalidTypeError(f"tol must be a number >= 0 (scipy's termination tolerance); got {tol!r:.60}")
    if not float(tol) >= 0:
        raise InvalidArgumentError(f"tol must be >= 0 (scipy's termination tolerance); got {tol!r}")


def _as_f(value: Any) -> Any:
    """A number as TF1 logged the objective (``%f``); anything else as it is."""
    return f"{value:f}" if isinstance(value, numbers.Real) else value


def _given(constraints: Any) -> bool:
    """Whether any constraint was given: not ``bool()``, which a tensor passed in place of a list
    refuses in a graph (the base class then says what to pass)."""
    return constraints is not None and not (isinstance(constraints, (list, tuple)) and not constraints)

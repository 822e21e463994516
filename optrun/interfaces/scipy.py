"""``ScipyOptimizerInterface``: ``scipy.optimize.minimize`` over TF variables.

Every callable handed to scipy reads one cached, compiled evaluation (see
:mod:`optrun.interfaces.external`), so SLSQP asking for ``f``, ``grad f``, all
constraint values and all constraint Jacobians at one point costs one TF
call. Constraints are stacked into one vector-valued constraint per kind, in
the form each method takes: dicts for SLSQP, COBYLA and COBYQA,
``NonlinearConstraint`` for trust-constr; Jacobians always come from autodiff.
"""

from __future__ import annotations

import inspect
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from optrun.errors import InvalidArgumentError, UnsupportedMethodError
from optrun.evaluation.packing import PackedBounds
from optrun.evaluation.point import stack
from optrun.interfaces.external import ExternalOptimizerInterface, GradFunc, LossGradFunc, ValueFunc, no_step
from optrun.interfaces.threads import blas_limit_for, check_blas_threads, limited_blas
from optrun.suggest import close_match, suggest

logger = logging.getLogger("optrun")

DEFAULT_METHOD = "L-BFGS-B"
DEFAULT_CONSTRAINED_METHOD = "SLSQP"

_FORBIDDEN = {
    "fun": "the loss is the first argument of the interface",
    "x0": "the start point is the variables' current values",
    "args": "the loss is a zero-argument callable; close over what it needs",
    "jac": "the interface computes exact gradients with TF autodiff",
    "callback": "pass step_callback to minimize() instead",
    "constraints": "pass equalities= and inequalities= instead",
    "bounds": "use var_to_bounds instead",
}
_MINIMIZE_KEYWORDS = set(inspect.signature(scipy.optimize.minimize).parameters)
_CONSTRAINED = {"slsqp", "cobyla", "cobyqa", "trust-constr"}
_BOUNDED = {"nelder-mead", "l-bfgs-b", "tnc", "slsqp", "powell", "trust-constr", "cobyla", "cobyqa"}
_GRADIENT_FREE = {"nelder-mead", "powell", "cobyla", "cobyqa"}
_KNOWN = _BOUNDED | {"bfgs", "cg", "newton-cg", "dogleg", "trust-ncg", "trust-exact", "trust-krylov"}


def _method_name(method: Any) -> str | None:
    """Lower-case scipy method name, or None for a custom callable method."""
    if callable(method):
        return None
    if not isinstance(method, str) or method.lower() not in _KNOWN:
        close = close_match(method.lower(), _KNOWN) if isinstance(method, str) else None
        # IPOPT is not scipy's: a near miss of its name is pointed to its interface.
        ipopt = isinstance(method, str) and close_match(method.lower(), ["ipopt"]) is not None
        raise InvalidArgumentError(
            f"method must be one of scipy.optimize.minimize's methods "
            f"({', '.join(sorted(_KNOWN))}) or a callable; got {method!r}"
            + (
                "; for IPOPT use optrun.IpoptInterface (in a spec, method: ipopt)"
                if ipopt
                else (f"; did you mean {close!r}?" if close else "")
            )
        )
    return method.lower()


#: scipy's own limit (maxfun, maxiter or maxfev) where it does not depend on the problem's size.
_DEFAULT_LIMITS = {"l-bfgs-b": 15000, "tnc": 15000, "slsqp": 100, "cobyla": 1000, "trust-constr": 1000}

_COUNTS = ("maxiter", "maxfun", "maxfev", "maxls", "maxcor")


def _check_options(method: str, name: str, options: Any) -> None:
    """Runs the method on a 1-D quadratic with the user's options, to refuse bad ones up front.

    scipy only warns about unknown option names, and only once the real run
    has started; a wrong type fails deep inside it. Count limits are capped so
    the check costs a few evaluations of x^2.
    """
    if options is None:
        return
    if not isinstance(options, dict):
        raise InvalidArgumentError(f"options must be a dict of {method} options; got {options!r:.60}")
    for key in _COUNTS:
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidArgumentError(f"options['{key}'] must be a whole number >= 1; got {value!r}")
    trial = {**options, **{key: min(options[key], 3) for key in _COUNTS if key in options}}
    trial.pop("disp", None)
    trial.pop("iprint", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if name in _GRADIENT_FREE:
                scipy.optimize.minimize(lambda x: float(x @ x), np.ones(1), method=method, options=trial)
            else:
                scipy.optimize.minimize(
                    lambda x: (float(x @ x), 2 * x), np.ones(1), jac=True, method=method, options=trial
                )
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(f"options {options} do not work with {method}: {error}") from None
    unknown = [str(w.message) for w in caught if "Unknown solver options" in str(w.message)]
    if unknown:
        names = [n.strip() for n in unknown[0].split(":", 1)[1].split(",")]
        known = _option_names(method)
        hints = (
            "; ".join(f"{n}: {suggest(n, known, 'option')}" for n in names) if known else "check the spelling"
        )
        raise InvalidArgumentError(f"{method} {unknown[0][0].lower()}{unknown[0][1:]}; {hints}")


def _option_names(method: str) -> list[str]:
    """The option names scipy documents for ``method`` (empty when it cannot say)."""
    try:
        text = scipy.optimize.show_options("minimize", method, disp=False)
    except (ValueError, TypeError):
        return []
    return re.findall(r"^(\w+) : ", text or "", re.M)


def _tnc_maxiter(options: Any) -> Any:
    """TF1-era code gives TNC ``maxiter``; scipy renamed it ``maxfun`` and now ignores it with a warning."""
    if not isinstance(options, dict) or "maxiter" not in options:
        return options
    if "maxfun" in options:
        raise InvalidArgumentError(
            f"TNC takes maxfun (scipy's name) or maxiter (TF1's), not both; got maxiter="
            f"{options['maxiter']!r} and maxfun={options['maxfun']!r}"
        )
    options = dict(options)
    options["maxfun"] = options.pop("maxiter")
    logger.info("TNC: options['maxiter'] is scipy's maxfun now; passing maxfun=%r", options["maxfun"])
    return options


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
    ``hess``, ...) goes to ``scipy.optimize.minimize``; ``jac``,
    ``callback``, ``constraints`` and ``bounds`` are set by the interface.
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
        constrained = bool(equalities) or bool(inequalities)
        if "method" not in optimizer_kwargs:
            optimizer_kwargs["method"] = DEFAULT_CONSTRAINED_METHOD if constrained else DEFAULT_METHOD
        name = _method_name(optimizer_kwargs["method"])
        if name == "tnc":
            optimizer_kwargs["options"] = _tnc_maxiter(optimizer_kwargs.get("options"))
        if name is not None:
            _check_options(optimizer_kwargs["method"], name, optimizer_kwargs.get("options"))
        if name is not None and constrained and name not in _CONSTRAINED:
            raise UnsupportedMethodError(
                f"method {optimizer_kwargs['method']!r} cannot handle equality or inequality "
                "constraints (scipy would silently ignore them); use SLSQP, trust-constr, "
                "COBYLA or COBYQA."
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
        if name is not None and self.packed_bounds is not None and name not in _BOUNDED:
            raise UnsupportedMethodError(
                f"method {optimizer_kwargs['method']!r} does not support bounds; use one of "
                f"{', '.join(sorted(_BOUNDED))}, or drop var_to_bounds."
            )

    def _needs_gradients(self) -> bool:
        return _method_name(self.optimizer_kwargs["method"]) not in _GRADIENT_FREE

    def _evaluation_budget(self) -> int | None:
        """The most evaluations the method may make, from its options or scipy's defaults."""
        name = _method_name(self.optimizer_kwargs["method"])
        if name in _GRADIENT_FREE:
            # Their runs are dominated by the method's own work per point, and their paths turn on
            # the last digits of each value: a faster, slightly different evaluation rarely pays.
            return 0
        options = self.optimizer_kwargs.get("options") or {}
        limits = [options[key] for key in ("maxfun", "maxfev", "maxiter") if options.get(key)]
        default = _DEFAULT_LIMITS.get(name or "")
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
        name = _method_name(method)
        if name in _GRADIENT_FREE:
            fun: Callable[[np.ndarray], Any] = lambda x: loss_grad_func(x)[0]  # noqa: E731
            jac: bool | None = None
        else:
            fun, jac = loss_grad_func, True
        constraints = _constraints(
            name, equality_funcs, equality_grad_funcs, inequality_funcs, inequality_grad_funcs
        )
        bounds = None
        if packed_bounds is not None:
            bounds = scipy.optimize.Bounds(packed_bounds.lower, packed_bounds.upper)
        callback = None
        if step_callback is not no_step:  # scipy's per-iteration bookkeeping only when it is used

            def callback(xk: np.ndarray, *_: Any) -> None:
                step_callback(np.array(xk, np.float64))

        if constraints:
            kwargs["constraints"] = constraints
        with limited_blas(blas_limit_for(self.blas_threads, name)) as tick:
            result = scipy.optimize.minimize(
                _ticking(fun, tick),
                np.asarray(initial_val, np.float64),
                method=method,
                jac=jac,
                bounds=bounds,
                callback=callback,
                **kwargs,
            )
        logger.info(
            "Optimization terminated with:\n  Message: %s\n  Objective function value: %f\n"
            "  Number of iterations: %s\n  Number of functions evaluations: %s",
            result.message,
            result.fun,
            result.get("nit", "n/a"),
            result.get("nfev", "n/a"),
        )
        return result


def _ticking(
    fun: Callable[[np.ndarray], Any], tick: Callable[[], None] | None
) -> Callable[[np.ndarray], Any]:
    """``fun``, calling ``tick`` before each evaluation (``fun`` itself when there is no tick)."""
    if tick is None:
        return fun

    def ticked(x: np.ndarray) -> Any:
        tick()
        return fun(x)

    return ticked


def _constraints(
    name: str | None,
    eq_funcs: list[ValueFunc],
    eq_grads: list[GradFunc],
    ineq_funcs: list[ValueFunc],
    ineq_grads: list[GradFunc],
) -> list[Any]:
    """One stacked constraint per kind, in the form ``name`` accepts."""
    out: list[Any] = []
    if name == "trust-constr":
        if eq_funcs:
            out.append(scipy.optimize.NonlinearConstraint(stack(eq_funcs), 0.0, 0.0, jac=stack(eq_grads)))
        if ineq_funcs:
            out.append(
                scipy.optimize.NonlinearConstraint(stack(ineq_funcs), 0.0, np.inf, jac=stack(ineq_grads))
            )
        return out
    if eq_funcs:
        values, jacobian = stack(eq_funcs), stack(eq_grads)
        if name == "cobyla":
            # COBYLA takes inequalities only: e(x) == 0 as e(x) >= 0 and -e(x) >= 0.
            out.append({"type": "ineq", "fun": values, "jac": jacobian})
            out.append({"type": "ineq", "fun": lambda x: -values(x), "jac": lambda x: -jacobian(x)})
        else:
            out.append({"type": "eq", "fun": values, "jac": jacobian})
    if ineq_funcs:
        out.append({"type": "ineq", "fun": stack(ineq_funcs), "jac": stack(ineq_grads)})
    return out

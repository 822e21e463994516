"""``ProjectedGradientInterface``: a second, dependency-free external optimizer.

It proves the :meth:`ExternalOptimizerInterface._minimize` hook with a user
other than scipy, and is handy for large bound-constrained problems where a
cheap iteration matters more than a quasi-Newton model.

Method: spectral (Barzilai-Borwein) projected gradient with Armijo
backtracking along the projection arc. With ``P`` the projection on the box,

    x_{k+1} = P(x_k - t_k g_k),   t_k = alpha_k / 2^m,
    accepted when f(x_{k+1}) <= f(x_k) + c1 * g_k . (x_{k+1} - x_k),
    alpha_{k+1} = (s.s) / (s.y),  s = x_{k+1} - x_k,  y = g_{k+1} - g_k,

and it stops when ``||P(x - g) - x||_inf <= gtol``.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from optrun.errors import InvalidArgumentError, UnsupportedMethodError
from optrun.evaluation.bounds import PackedBounds
from optrun.interfaces.external import ExternalOptimizerInterface, GradFunc, LossGradFunc, ValueFunc

logger = logging.getLogger("optrun")

_DEFAULTS: dict[str, float] = {"maxiter": 10_000, "gtol": 1e-6, "c1": 1e-4, "max_backtracks": 50}


class ProjectedGradientInterface(ExternalOptimizerInterface):
    """Bound-constrained minimization by spectral projected gradient.

    Keyword options: ``maxiter`` (10000), ``gtol`` (1e-6, on the projected
    gradient's max-norm), ``c1`` (1e-4, Armijo constant) and
    ``max_backtracks`` (50). Bounds come from ``var_to_bounds``; general
    equality and inequality constraints are not supported.

    ``minimize`` returns a ``scipy.optimize.OptimizeResult`` (plain data).
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
        check_finite: bool = True,
        **optimizer_kwargs: Any,
    ) -> None:
        if equalities or inequalities:
            raise UnsupportedMethodError(
                "ProjectedGradientInterface handles bounds only; for equality or inequality "
                "constraints use ScipyOptimizerInterface(method='SLSQP' or 'trust-constr')."
            )
        unknown = sorted(set(optimizer_kwargs) - set(_DEFAULTS))
        if unknown:
            raise InvalidArgumentError(
                f"ProjectedGradientInterface got unknown option(s) {unknown}; known: {sorted(_DEFAULTS)}"
            )
        for key, value in optimizer_kwargs.items():
            _check_option(key, value)
        super().__init__(
            loss,
            var_list,
            None,
            None,
            var_to_bounds,
            jit_compile=jit_compile,
            check_finite=check_finite,
            **optimizer_kwargs,
        )

    def _minimize(
        self,
        initial_val: np.ndarray,
        loss_grad_func: LossGradFunc,
        equality_funcs: list[ValueFunc],
        equality_grad_funcs: list[GradFunc],
        inequality_funcs: list[ValueFunc],
        inequality_grad_funcs: list[GradFunc],
        packed_bounds: PackedBounds | None,
        step_callback: Callable[[np.ndarray], Any] | None,
        optimizer_kwargs: dict[str, Any],
    ) -> OptimizeResult:
        opts = {**_DEFAULTS, **optimizer_kwargs}

        def project(x: np.ndarray) -> np.ndarray:
            return packed_bounds.clip(x) if packed_bounds is not None else x

        def evaluate(point: np.ndarray) -> tuple[float, np.ndarray]:  # float64, graph mode too
            value, gradient = loss_grad_func(point)
            return float(value), np.asarray(gradient, np.float64)

        x = project(np.asarray(initial_val, np.float64))
        f, g = evaluate(x)
        nfev, nit, status, message = 1, 0, 1, "maximum number of iterations reached"
        alpha = 1.0 / max(float(np.max(np.abs(g), initial=0.0)), 1.0)
        while nit < opts["maxiter"]:
            if np.max(np.abs(project(x - g) - x), initial=0.0) <= opts["gtol"]:
                status, message = 0, "projected gradient below gtol"
                break
            step = alpha
            for _ in range(int(opts["max_backtracks"])):
                x_new = project(x - step * g)
                f_new, g_new = evaluate(x_new)
                nfev += 1
                if np.isfinite(f_new) and f_new <= f + opts["c1"] * float(g @ (x_new - x)):
                    break
                step *= 0.5
            else:
                status, message = 2, "line search failed to decrease the loss"
                break
            s, y = x_new - x, g_new - g
            sy = float(s @ y)
            alpha = float(np.clip(float(s @ s) / sy, 1e-10, 1e10)) if sy > 0 else 1e10
            x, f, g = x_new, f_new, g_new
            nit += 1
            if step_callback is not None:
                step_callback(x.copy())
        logger.info("Projected gradient: %s after %d iterations, f=%g", message, nit, f)
        return OptimizeResult(
            x=x, fun=f, jac=g, nit=nit, nfev=nfev, status=status, success=status == 0, message=message
        )


def _check_option(key: str, value: Any) -> None:
    """``maxiter`` and ``max_backtracks`` whole numbers >= 1, ``gtol`` a finite number > 0, ``c1``
    in (0, 1), as Armijo's condition needs; NumPy's numbers as Python's."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(f"{key} must be a number; got {value!r}")
    if key in ("maxiter", "max_backtracks"):
        if not isinstance(value, numbers.Integral) or int(value) < 1:
            raise InvalidArgumentError(f"{key} must be a whole number >= 1; got {value!r}")
    elif key == "c1" and not 0 < float(value) < 1:
        raise InvalidArgumentError(f"c1 (Armijo's constant) must be in (0, 1); got {value!r}")
    elif not (math.isfinite(value) and float(value) > 0):
        raise InvalidArgumentError(f"{key} must be a finite number > 0; got {value!r}")

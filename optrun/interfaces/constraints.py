"""Constraints in the form each scipy method takes, stacked one per kind.

The interface hands ``_minimize`` one callable per constraint and one per
Jacobian row; scipy gets them stacked into one vector-valued constraint per
kind (equalities, inequalities): dicts for SLSQP, COBYLA and COBYQA,
``NonlinearConstraint`` for trust-constr. Every stacked callable reads the
same cached evaluation, so stacking costs no extra TF call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize

from optrun.evaluation.point import stack
from optrun.interfaces.external import GradFunc, ValueFunc


def scipy_constraints(
    name: str | None,
    eq_funcs: list[ValueFunc],
    eq_grads: list[GradFunc],
    ineq_funcs: list[ValueFunc],
    ineq_grads: list[GradFunc],
) -> list[Any]:
    """One stacked constraint per kind, in the form the method ``name`` (lower case) accepts."""
    out: list[Any] = []
    if name == "trust-constr":
        if eq_funcs:
            out.append(
                scipy.optimize.NonlinearConstraint(
                    stack(eq_funcs), 0.0, 0.0, jac=stack(eq_grads, jacobian=True)
                )
            )
        if ineq_funcs:
            out.append(
                scipy.optimize.NonlinearConstraint(
                    stack(ineq_funcs), 0.0, np.inf, jac=stack(ineq_grads, jacobian=True)
                )
            )
        return out
    if eq_funcs:
        values, jacobian = stack(eq_funcs), stack(eq_grads, jacobian=True)
        if name == "cobyla":
            # COBYLA takes inequalities only: e(x) == 0 as e(x) >= 0 and -e(x) >= 0.
            out.append({"type": "ineq", "fun": values, "jac": jacobian})
            out.append({"type": "ineq", "fun": lambda x: -values(x), "jac": lambda x: -jacobian(x)})
        else:
            out.append({"type": "eq", "fun": values, "jac": jacobian})
    if ineq_funcs:
        out.append({"type": "ineq", "fun": stack(ineq_funcs), "jac": stack(ineq_grads, jacobian=True)})
    return out

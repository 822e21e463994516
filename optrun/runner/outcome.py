"""How a minimize run ended, in one word: scipy's per-method status codes mapped to optrun's statuses.

scipy reports an integer ``status`` whose meaning differs per method (L-BFGS-B's
1 is a limit reached, trust-constr's 1 is convergence), with ``success`` and a
message. :func:`classify` turns them into one of :data:`STOP_STATUSES`; the
run's ``result.json`` keeps scipy's code and message beside the word. The
codes are those of scipy 1.17's sources (``scipy/optimize``): ``_lbfgsb_py``,
``_slsqp_py``, ``_tnc``, ``_optimize`` (Nelder-Mead, Powell, CG, BFGS,
Newton-CG), ``_trustregion`` (dogleg, trust-ncg, trust-krylov, trust-exact),
``_trustregion_constr``, ``_cobyla_py`` (PRIMA's infos) and ``_cobyqa_py``.

No TensorFlow here.
"""

from __future__ import annotations

import math

CONVERGED = "converged"
#: ``maxiter`` / ``maxfun`` (the spec's budget) used up: exit 0, like train at ``max_steps``.
BUDGET_REACHED = "budget_reached"
#: The method could make no more progress (a line search failed, precision was lost).
STALLED = "stalled"
#: The constraints (or bounds) could not be met.
INFEASIBLE = "infeasible"
NONFINITE = "nonfinite"
#: Stopped on request: Ctrl-C or SIGTERM, or a callback asking scipy to stop.
INTERRUPTED = "interrupted"
#: User code raised, or scipy refused its input.
ERROR = "error"
#: Train: stopped early by ``RunOptions.stop_check`` (a sweep's pruner), cleanly; not a success.
PRUNED = "pruned"

STOP_STATUSES = (CONVERGED, BUDGET_REACHED, STALLED, INFEASIBLE, NONFINITE, INTERRUPTED, ERROR)
#: The statuses a run succeeds with (exit 0).
SUCCESSFUL = frozenset({CONVERGED, BUDGET_REACHED})
#: The largest constraint violation still counted as feasible, when scipy's code does not say.
FEASIBILITY_TOL = 1e-6
#: In :data:`CODES`: scipy's verdict rests on its own tolerance for the violation alone; optrun's
#: (``tolerance``) decides, ``converged`` or ``infeasible``. Never a run's status itself.
BY_VIOLATION = "by_violation"

_GRADIENT = {0: CONVERGED, 1: BUDGET_REACHED, 2: STALLED, 3: NONFINITE}  # CG, BFGS: maxiter, pr_loss, nan
_TRUST = {0: CONVERGED, 1: BUDGET_REACHED, 2: STALLED, 3: STALLED}  # bad approximation, linalg error
_COBYLA = {  # PRIMA's infos
    0: CONVERGED,  # SMALL_TR_RADIUS
    1: CONVERGED,  # FTARGET_ACHIEVED
    2: STALLED,  # TRSUBP_FAILED
    3: BUDGET_REACHED,  # MAXFUN_REACHED (COBYLA's maxiter counts evaluations)
    20: BUDGET_REACHED,  # MAXTR_REACHED
    -1: NONFINITE,  # NAN_INF_X
    -2: NONFINITE,  # NAN_INF_F
    -3: NONFINITE,  # NAN_INF_MODEL
    6: INFEASIBLE,  # NO_SPACE_BETWEEN_BOUNDS
    7: STALLED,  # DAMAGING_ROUNDING
    8: STALLED,  # ZERO_LINEAR_CONSTRAINT
    30: INTERRUPTED,  # CALLBACK_TERMINATE
}
#: scipy's ``status`` per method (lower-case name) -> optrun's word.
CODES: dict[str, dict[int, str]] = {
    # 1: iteration or evaluation limit; 2: ABNORMAL (line search), WARNING (rounding errors),
    # ERROR (bad input, bounds with low > high) or a callback's halt: told apart by the message.
    "l-bfgs-b": {0: CONVERGED, 1: BUDGET_REACHED, 2: STALLED},
    "slsqp": {
        0: CONVERGED,
        2: INFEASIBLE,  # more equality constraints than independent variables
        3: STALLED,  # more than 3*n iterations in the LSQ subproblem
        4: INFEASIBLE,  # inequality constraints incompatible
        5: STALLED,  # singular matrix E in the LSQ subproblem
        6: STALLED,  # singular matrix C in the LSQ subproblem
        7: STALLED,  # rank-deficient equality constraint subproblem (HFTI)
        8: STALLED,  # positive directional derivative for linesearch: infeasible when violated
        9: BUDGET_REACHED,  # iteration limit reached
    },
    "trust-constr": {
        0: BUDGET_REACHED,  # maxiter (its message says function evaluations)
        1: CONVERGED,  # gtol
        2: CONVERGED,  # xtol
        3: INTERRUPTED,  # the callback raised StopIteration
        4: BY_VIOLATION,  # converged, but the violation exceeds its gtol (1e-8, finer than float32 meets)
    },
    "tnc": {
        -1: INFEASIBLE,  # lower bound > upper bound
        0: CONVERGED,  # local minimum (|pg| ~= 0)
        1: CONVERGED,  # |f_n - f_(n-1)| ~= 0
        2: CONVERGED,  # |x_n - x_(n-1)| ~= 0
        3: BUDGET_REACHED,  # maxfun (optrun passes maxiter on as maxfun)
        4: STALLED,  # line search failed
        5: STALLED,  # every lower bound equals its upper bound: nothing can move
        6: STALLED,  # unable to progress
        7: INTERRUPTED,  # the user asked to stop
    },
    "nelder-mead": {0: CONVERGED, 1: BUDGET_REACHED, 2: BUDGET_REACHED},  # maxfev, maxiter
    "powell": {0: CONVERGED, 1: BUDGET_REACHED, 2: BUDGET_REACHED, 3: NONFINITE, 4: INFEASIBLE},
    "cg": _GRADIENT,
    "bfgs": _GRADIENT,
    # 3: the CG iterations did not converge (Hessian not positive definite) or a NaN; 5: callback.
    "newton-cg": {0: CONVERGED, 1: BUDGET_REACHED, 2: STALLED, 3: STALLED, 5: INTERRUPTED},
    "dogleg": _TRUST,
    "trust-ncg": _TRUST,
    "trust-krylov": _TRUST,
    "trust-exact": _TRUST,
    "cobyla": _COBYLA,
    "cobyqa": {
        0: CONVERGED,  # RADIUS_SUCCESS
        1: CONVERGED,  # TARGET_SUCCESS
        2: CONVERGED,  # FIXED_SUCCESS: every variable fixed by its bounds
        3: INTERRUPTED,  # CALLBACK_SUCCESS
        4: CONVERGED,  # FEASIBLE_SUCCESS
        5: BUDGET_REACHED,  # MAX_EVAL_WARNING
        6: BUDGET_REACHED,  # MAX_ITER_WARNING
        -1: INFEASIBLE,  # INFEASIBLE_ERROR
        -2: STALLED,  # LINALG_ERROR
    },
    # optrun.IpoptInterface: IPOPT 3.14's ApplicationReturnStatus (IpReturnCodes_inc.h).
    "ipopt": {
        0: CONVERGED,  # Solve_Succeeded
        1: CONVERGED,  # Solved_To_Acceptable_Level
        2: INFEASIBLE,  # Infeasible_Problem_Detected
        3: STALLED,  # Search_Direction_Becomes_Too_Small
        4: STALLED,  # Diverging_Iterates
        5: INTERRUPTED,  # User_Requested_Stop
        6: CONVERGED,  # Feasible_Point_Found (a square problem)
        -1: BUDGET_REACHED,  # Maximum_Iterations_Exceeded
        -2: STALLED,  # Restoration_Failed
        -3: STALLED,  # Error_In_Step_Computation
        -4: BUDGET_REACHED,  # Maximum_CpuTime_Exceeded
        -5: BUDGET_REACHED,  # Maximum_WallTime_Exceeded
        -10: INFEASIBLE,  # Not_Enough_Degrees_Of_Freedom (more equalities than variables)
        -11: ERROR,  # Invalid_Problem_Definition
        -12: ERROR,  # Invalid_Option
        -13: NONFINITE,  # Invalid_Number_Detected
        -100: ERROR,  # Unrecoverable_Exception
        -101: ERROR,  # NonIpopt_Exception_Thrown
        -102: ERROR,  # Insufficient_Memory
        -199: ERROR,  # Internal_Error
    },
}
#: Phrases of scipy's messages that mean a limit, for a method (or code) not in :data:`CODES`.
_LIMIT_WORDS = ("maximum number", "limit", "exceeded", "exceeds", "maxiter", "maxfun", "maxfev")


def _lbfgsb(message: str) -> str:
    """L-BFGS-B's status 2, told apart by its message (``ABNORMAL: ...``, ``ERROR: ...``)."""
    text = message.upper()
    if "CALLBACK" in text:
        return INTERRUPTED
    if text.startswith("ERROR"):
        return INFEASIBLE if "FEASIBLE" in text else ERROR
    return STALLED


def _guess(success: bool, message: str) -> str:
    """For a method optrun does not know: scipy's success, else the message's words."""
    if success:
        return CONVERGED
    text = message.lower()
    if "nan" in text.split() or "non-finite" in text:
        return NONFINITE
    return BUDGET_REACHED if any(word in text for word in _LIMIT_WORDS) else STALLED


def classify(
    method: str,
    status: int | None,
    success: bool,
    message: str,
    *,
    fun: float,
    violation: float | None = None,
    tolerance: float = FEASIBILITY_TOL,
) -> str:
    """The word for how scipy's minimize ended (one of :data:`STOP_STATUSES`).

    Args:
        method: the scipy method, any case (``L-BFGS-B``, ``slsqp``).
        status: scipy's ``status`` (None when the result has none).
        success: scipy's ``success``.
        message: scipy's ``message``.
        fun: the loss at the returned point.
        violation: the largest constraint violation there (0 or None: none).
        tolerance: the violation above which a point counts as infeasible,
            where scipy's code leaves it open (SLSQP's exit mode 8 is what
            incompatible constraints usually give).

    Returns:
        ``nonfinite`` when the loss is NaN or Inf, else the method's code
        mapped (see :data:`CODES`); a stall, a budget used up (or an unsuccessful
        "convergence", as COBYLA reports an unmet constraint) at a point that
        violates the constraints is ``infeasible``.
    """
    if not math.isfinite(fun) or "nan result" in message.lower():  # Newton-CG says NaN with its 3
        return NONFINITE
    name = method.lower()
    known = CODES.get(name, {})
    word = known.get(status, "") if status is not None else ""
    if word == STALLED and name == "l-bfgs-b":
        word = _lbfgsb(message)
    if not word:
        word = _guess(success, message)
    violated = violation is not None and violation > tolerance
    if word == BY_VIOLATION:
        return INFEASIBLE if violated else CONVERGED
    if word == CONVERGED and not success:  # scipy's own verdict stands: not a success
        word = INFEASIBLE if violated else STALLED
    # Out of budget at a point that breaks the constraints is no success: the answer is not one.
    if word in (STALLED, BUDGET_REACHED) and violated:
        word = INFEASIBLE
    return word


def succeeded(status: str) -> bool:
    """Whether a run that ended with ``status`` succeeded (exit 0): converged, or used its budget."""
    return status in SUCCESSFUL


def would_export(model: object, kind: str) -> bool:
    """Whether ``checkpoint.export: kind`` writes something for ``model`` (``auto``: a Keras model)."""
    if kind == "auto":
        import keras

        return isinstance(model, keras.Model)
    return kind != "none"


def withheld_export(checkpoint: str | None) -> str:
    """Why a run that went non-finite wrote no export, and which checkpoint keeps its weights.

    Those weights are finite: train never applies a non-finite update, and minimize
    keeps its last accepted point (or the start point).
    """
    kept = f"; the checkpoint {checkpoint} keeps the weights from before it (finite)" if checkpoint else ""
    return f"not written: the run diverged (a non-finite loss, gradient or constraint){kept}"

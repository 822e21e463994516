"""scipy.optimize.minimize's ``method`` and ``options``: which methods there are, what each
handles, and the options checked before a run.

:class:`optrun.interfaces.scipy.ScipyOptimizerInterface` refuses a bad method
or option at construction, and ``optrun validate`` (:mod:`optrun.runner.checks`)
places the same problems at their YAML keys; both read them here.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize

from optrun.errors import InvalidArgumentError
from optrun.suggest import close_match, suggest

logger = logging.getLogger("optrun")

DEFAULT_METHOD = "L-BFGS-B"
DEFAULT_CONSTRAINED_METHOD = "SLSQP"

#: The methods (lower case) that take equality and inequality constraints.
CONSTRAINED = {"slsqp", "cobyla", "cobyqa", "trust-constr"}
#: The methods that take bounds.
BOUNDED = {"nelder-mead", "l-bfgs-b", "tnc", "slsqp", "powell", "trust-constr", "cobyla", "cobyqa"}
#: The methods that never ask for a gradient.
GRADIENT_FREE = {"nelder-mead", "powell", "cobyla", "cobyqa"}
#: The methods that work in the start point's dtype, so that a float32 start (TF1's, for float32
#: graph variables) changes their path; scipy's SLSQP and TNC refuse one, L-BFGS-B makes it float64.
KEEP_START_DTYPE = {"bfgs", "cg", "newton-cg", "nelder-mead", "powell"}
#: Every method scipy.optimize.minimize names (lower case).
KNOWN = BOUNDED | {"bfgs", "cg", "newton-cg", "dogleg", "trust-ncg", "trust-exact", "trust-krylov"}

#: The methods that use ``hess=`` and ``hessp=`` (scipy only warns that others ignore them).
USES_HESS = {"newton-cg", "dogleg", "trust-ncg", "trust-krylov", "trust-exact", "trust-constr"}
USES_HESSP = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}
#: What a user is pointed to instead of a method that needs second derivatives.
_GRADIENT_ONLY = "a method that needs only the gradient, such as L-BFGS-B, BFGS, Newton-CG or trust-constr"
#: The methods that cannot run without ``hess=`` (or, where they take one, ``hessp=``).
NEEDS_HESSIAN = {"dogleg", "trust-ncg", "trust-krylov", "trust-exact"}

#: scipy's own limit (maxfun, maxiter or maxfev) where it does not depend on the problem's size.
DEFAULT_LIMITS = {"l-bfgs-b": 15000, "tnc": 15000, "slsqp": 100, "cobyla": 1000, "trust-constr": 1000}

#: The options whose shape follows the number of variables n, by method, each of a kind of
#: :data:`_SHAPES`. Only the problem knows n: :func:`check_options` tries them on as many variables
#: as they are for, :func:`check_sizes` checks that number against the problem's.
SIZED = {
    "nelder-mead": {"initial_simplex": "simplex"},
    "powell": {"direc": "square"},
    "bfgs": {"hess_inv0": "square"},
    "tnc": {"scale": "vector", "offset": "vector"},
    "newton-cg": {"eps": "number or vector"},
}
#: What each kind of :data:`SIZED` option is, in words and as a shape for n variables.
_SHAPES: dict[str, tuple[str, Callable[[int], tuple[int, ...]]]] = {
    "simplex": ("an array of shape (n + 1, n): n + 1 points of n values", lambda n: (n + 1, n)),
    "square": ("an array of shape (n, n)", lambda n: (n, n)),
    "vector": ("an array of shape (n,): a value per variable", lambda n: (n,)),
    "number or vector": ("a number, or an array of shape (n,): a value per variable", lambda n: (n,)),
}

_COUNTS = ("maxiter", "maxfun", "maxfev", "maxls", "maxcor")
#: The largest count scipy's compiled methods take (a C int).
_MAX_COUNT = 2**31 - 1


def method_name(method: Any) -> str | None:
    """Lower-case scipy method name, or None for a custom callable method."""
    if callable(method):
        return None
    if not isinstance(method, str) or method.lower() not in KNOWN:
        close = close_match(method.lower(), KNOWN) if isinstance(method, str) else None
        # IPOPT is not scipy's: a near miss of its name is pointed to its interface.
        ipopt = isinstance(method, str) and close_match(method.lower(), ["ipopt"]) is not None
        raise InvalidArgumentError(
            f"method must be one of scipy.optimize.minimize's methods "
            f"({', '.join(sorted(KNOWN))}) or a callable; got {method!r}"
            + (
                "; for IPOPT use optrun.IpoptInterface (in a spec, method: ipopt)"
                if ipopt
                else (f"; did you mean {close!r}?" if close else "")
            )
        )
    return method.lower()


def check_hessian(method: str, name: str, hess: Any, hessp: Any) -> None:
    """Refuses a method that needs a Hessian without one, and ``hess``/``hessp`` that it ignores.

    scipy raises the first only once the run starts, and only warns about the second.
    """
    # dogleg and trust-exact take only a callable; trust-ncg and trust-krylov also scipy's
    # finite-difference strings and update strategies, or a Hessian-vector product.
    given = callable(hess) if name not in USES_HESSP else hess is not None or hessp is not None
    if name in NEEDS_HESSIAN and not given:
        what = "hess= (or hessp=, a Hessian-vector product)" if name in USES_HESSP else "hess="
        raise InvalidArgumentError(
            f"method {method!r} needs second derivatives: pass {what}, a callable of the packed "
            f"float64 x, or use {_GRADIENT_ONLY} (got hess={hess!r:.40})."
        )
    for key, value, users in (("hess", hess, USES_HESS), ("hessp", hessp, USES_HESSP)):
        if value is not None and name not in users:
            raise InvalidArgumentError(
                f"method {method!r} does not use {key}= (scipy would ignore it); use one of "
                f"{', '.join(sorted(users))}, or drop {key}."
            )


def hessian_in_a_spec(method: str, name: str | None) -> str | None:
    """What a spec naming ``method`` is told when it needs second derivatives, which a spec
    cannot give (``hess`` is a callable); None for the other methods."""
    if name not in NEEDS_HESSIAN:
        return None
    return (
        f"method {method!r} needs second derivatives (hess=), which a spec cannot give; use {_GRADIENT_ONLY}."
    )


def sized_options(name: str, options: dict[str, Any]) -> dict[str, int]:
    """The options of ``options`` whose shape follows the number of variables (see :data:`SIZED`),
    each with the number of variables it is for.

    Raises:
        InvalidArgumentError: an option of a shape that fits no number of variables, or two
            options for different numbers.
    """
    found: dict[str, int] = {}
    for key, kind in SIZED.get(name, {}).items():
        value = options.get(key)
        if value is None:
            continue  # the method's default
        what, shape = _SHAPES[kind]
        try:
            given: tuple[int, ...] | None = np.shape(np.asarray(value, dtype=float))
        except (TypeError, ValueError):
            given = None  # not numbers, or rows of different lengths
        if given is not None and kind.startswith("number") and len(given) <= 1 and math.prod(given) == 1:
            continue  # one number, which scipy takes for every variable
        count = given[-1] if given else 0
        if given is None or count < 1 or shape(count) != given:
            shown = f" (shape {given})" if given is not None else ""
            raise InvalidArgumentError(
                f"options['{key}'] must be {what}, for n variables; got {value!r:.80}{shown}"
            )
        found[key] = count
    if len(set(found.values())) > 1:
        said = " and ".join(f"{key} is for {_variables(count)}" for key, count in found.items())
        raise InvalidArgumentError(f"options {said}: give each for the problem's number of variables")
    return found


def spec_method(minimize: Mapping[str, Any]) -> Any:
    """The method a spec's ``minimize`` section runs: its own, else the interface's default for
    its constraints (SLSQP with equalities or inequalities, in ``constraints`` or ``data``)."""
    if minimize.get("method") is not None:
        return minimize["method"]
    kinds = ("equalities", "inequalities")
    parts = [minimize.get(part) for part in ("constraints", "data")]
    constrained = any(isinstance(part, Mapping) and any(part.get(k) for k in kinds) for part in parts)
    return DEFAULT_CONSTRAINED_METHOD if constrained else DEFAULT_METHOD


def check_sizes(name: str, options: Any, size: int) -> None:
    """The options whose shape follows the number of variables (see :data:`SIZED`) against the
    problem's ``size`` (its variables' elements, packed); an option of a shape that fits no number
    of variables is :func:`check_options`' to refuse.

    Raises:
        InvalidArgumentError: an option made for another number of variables.
    """
    if not isinstance(options, dict):
        return
    for key in SIZED.get(name, {}):
        try:
            count = sized_options(name, {key: options.get(key)}).get(key)
        except InvalidArgumentError:
            continue  # check_options says what is wrong with it
        if count is not None and count != size:
            shape = _SHAPES[SIZED[name][key]][1]
            raise InvalidArgumentError(
                f"options['{key}'] is for {_variables(count)} (shape {shape(count)}), but the problem has "
                f"{_variables(size)} (every element of the variables minimized, packed): give an array "
                f"of shape {shape(size)}; got {options[key]!r:.80}"
            )


def _variables(count: int) -> str:
    return f"{count} variable{'s' if count != 1 else ''}"


def check_options(method: str, name: str, options: Any) -> None:
    """Runs the method on a small quadratic with the user's options, to refuse bad ones up front.

    scipy only warns about unknown option names, and only once the real run
    has started; a wrong type fails deep inside it. Count limits are capped so
    the check costs a few evaluations of x^2. The quadratic has one variable, or
    as many as the options whose shape follows the number of variables are for
    (Nelder-Mead's ``initial_simplex``, see :data:`SIZED`): the problem's own
    number is not known here, :func:`check_sizes` checks them against it.
    """
    if options is None:
        return
    if not isinstance(options, dict):
        raise InvalidArgumentError(f"options must be a dict of {method} options; got {options!r:.60}")
    for key in _COUNTS:
        value = options.get(key)
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if value is not None and not (whole and 1 <= int(value) <= _MAX_COUNT):
            raise InvalidArgumentError(
                f"options['{key}'] must be a whole number from 1 to {_MAX_COUNT}; got {value!r}"
            )
    for key, value in options.items():  # tolerances: scipy would take text, or NaN, and fail mid-run
        if str(key).endswith("tol") and value is not None and not _tolerance(value):
            raise InvalidArgumentError(f"options['{key}'] must be a number; got {value!r}")
    trial = {**options, **{key: min(options[key], 3) for key in _COUNTS if options.get(key) is not None}}
    trial.pop("disp", None)
    trial.pop("iprint", None)
    start = np.ones(max([1, *sized_options(name, options).values()]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if name in GRADIENT_FREE:
                square = lambda x: float(x @ x)  # noqa: E731
                result = scipy.optimize.minimize(square, start, method=method, options=trial)
            else:
                # Methods that need a Hessian get x^2's, whether or not the user passed one.
                hess = (lambda x: 2.0 * np.eye(x.size)) if name in NEEDS_HESSIAN else None
                result = scipy.optimize.minimize(
                    lambda x: (float(x @ x), 2 * x),
                    start,
                    jac=True,
                    hess=hess,
                    method=method,
                    options=trial,
                )
            # L-BFGS-B reports bad input as a result ("ERROR: FACTR < 0"), not as an exception.
            message = str(getattr(result, "message", ""))
            if not result.success and message.upper().startswith("ERROR"):
                raise ValueError(message)
        except (TypeError, ValueError, OverflowError) as error:
            raise InvalidArgumentError(f"options {options} do not work with {method}: {error}") from None
    unknown = [str(w.message) for w in caught if "Unknown solver options" in str(w.message)]
    if unknown:
        names = [n.strip() for n in unknown[0].split(":", 1)[1].split(",")]
        known = option_names(method)
        hints = (
            "; ".join(f"{n}: {suggest(n, known, 'option')}" for n in names) if known else "check the spelling"
        )
        raise InvalidArgumentError(f"{method} {unknown[0][0].lower()}{unknown[0][1:]}; {hints}")


def option_names(method: str) -> list[str]:
    """The option names scipy documents for ``method`` (empty when it cannot say)."""
    try:
        text = scipy.optimize.show_options("minimize", method, disp=False)
    except (ValueError, TypeError):
        return []
    return re.findall(r"^(\w+) : ", text or "", re.M)


def scipy_key(method: str, key: str) -> str:
    """The option the interface hands scipy for ``key``: TNC's ``maxiter`` is ``maxfun`` (see
    :func:`tnc_maxiter`)."""
    return "maxfun" if method.lower() == "tnc" and key == "maxiter" else key


def tnc_maxiter(options: Any) -> Any:
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


def _tolerance(value: Any) -> bool:
    """Whether ``value`` can be a tolerance: a real number, not NaN (not a bool). A negative one
    means something to some methods (TNC: its default); L-BFGS-B's refusal is caught by the trial."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)

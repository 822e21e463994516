"""``minimize.method: ipopt``: IPOPT (:class:`optrun.IpoptInterface`) from a spec.

The spec's constraints, bounds, ``jit_compile`` and ``blas_threads`` mean for
ipopt what they mean for scipy's methods. ``minimize.options`` holds IPOPT's
options, checked by :func:`optrun.interfaces.ipopt.options.check_options` one key at a
time, so that each problem is placed at its key; ``maxiter`` (scipy's name,
and what ``--maxiter`` sets) is IPOPT's ``max_iter``. ``minimize.tol`` is
scipy's: IPOPT's tolerance is its option ``tol``.

No TensorFlow here: ``optrun validate`` checks a spec's IPOPT options before
any model is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optrun.errors import InvalidArgumentError, spec_error
from optrun.interfaces.ipopt.options import DEFAULT_MAX_ITER, LIBRARY_OPTIONS, check_options, import_cyipopt
from optrun.runner.evaluations_done import counts_evaluations
from optrun.spec.load import LoadedSpec

IPOPT = "ipopt"
#: scipy's name for the iteration limit (``--maxiter`` sets it) -> IPOPT's.
_ALIASES = {"maxiter": "max_iter"}

Path = tuple[Any, ...]


def is_ipopt(method: Any) -> bool:
    """Whether the spec's ``minimize.method`` names IPOPT (any case)."""
    return isinstance(method, str) and method.lower() == IPOPT


def ipopt_options(options: dict[str, Any]) -> dict[str, Any]:
    """The spec's options under IPOPT's names (``maxiter`` -> ``max_iter``), as given."""
    return {_ALIASES.get(key, key): value for key, value in options.items()}


def problems(options: Any, tol: Any = None) -> list[tuple[Path, str]]:
    """What is wrong with ``minimize.options`` and ``minimize.tol`` for ipopt, each at its YAML path.

    Raises:
        MissingDependencyError: the ipopt extra is not installed. Not a spec
            problem: the one line that says how to install it is all there is to say.
    """
    import_cyipopt()
    found: list[tuple[Path, str]] = []
    if tol is not None:
        found.append(
            (
                ("minimize", "tol"),
                "is scipy's tolerance, not IPOPT's; for ipopt, give it as minimize.options.tol",
            )
        )
    if not isinstance(options, dict):
        return found  # the schema stage reports it
    for key, value in options.items():
        name = _ALIASES.get(key, key) if isinstance(key, str) else key
        if name != key and name in options:
            found.append((("minimize", "options", key), f"{key} is IPOPT's {name}, given too; keep one"))
            continue
        given = {name: value}
        if name == "linear_solver":  # whether it loads depends on where its library is said to be
            given.update({k: options[k] for k in LIBRARY_OPTIONS if k in options})
        try:
            check_options(given)  # the library's own check, did-you-mean included
        except InvalidArgumentError as error:
            # Its place is the key now: "options: " and "options['tol'] " would say it twice.
            message = str(error).removeprefix("options: ").removeprefix(f"options[{name!r}] ")
            found.append((("minimize", "options", key), message))
    return found


def checked_options(loaded: LoadedSpec) -> dict[str, Any]:
    """The spec's IPOPT options, under IPOPT's names, once :func:`problems` finds none.

    Raises:
        MissingDependencyError: the ipopt extra is not installed.
        ConfigError: the problems, each at its key and line.
    """
    spec = loaded.spec.minimize
    options, tol = (dict(spec.options), spec.tol) if spec is not None else ({}, None)
    found = problems(options, tol)
    if found:
        raise spec_error(loaded, found)
    return ipopt_options(options)


def iteration_budget(method: str, options: dict[str, Any]) -> tuple[str, int | None]:
    """The option that limits a run's iterations (scipy's ``maxiter``, IPOPT's ``max_iter``) and
    the spec's value of it (None: unset; for IPOPT, its default, a budget a resume counts down)."""
    key = "max_iter" if is_ipopt(method) else "maxiter"
    value = (ipopt_options(options) if key == "max_iter" else options).get(key)
    if key == "max_iter" and value is None:
        value = DEFAULT_MAX_ITER
    return key, value if isinstance(value, int) and not isinstance(value, bool) and value else None


def limits(method: str, options: dict[str, Any]) -> tuple[int | None, int | None]:
    """``(iterations, evaluations)``: the limits the spec's options set for ``method``, None if unset.

    ``maxiter`` counts iterations, except where scipy counts evaluations with it
    (COBYLA) or renamed it (TNC: the interface passes it on as ``maxfun``);
    ``maxfun`` / ``maxfev`` count evaluations. IPOPT's ``max_iter`` counts iterations.
    """
    if is_ipopt(method):
        return iteration_budget(method, options)[1], None
    iterations, evaluations = options.get("maxiter"), options.get("maxfun", options.get("maxfev"))
    if counts_evaluations(method):
        iterations, evaluations = None, evaluations or iterations
    return (
        iterations if isinstance(iterations, int) else None,
        evaluations if isinstance(evaluations, int) else None,
    )


def barrier(interface: Any) -> float | None:
    """IPOPT's barrier parameter ``mu`` at its latest iteration (None for scipy's methods)."""
    mu = getattr(interface, "iteration_info", {}).get("mu")
    return None if mu is None else float(mu)


def solver_fields(method: str, result: Any) -> dict[str, Any]:
    """result.json's word from the solver: ``scipy_status``, or ``ipopt_status``."""
    code = result.get("status")
    return {f"{'ipopt' if is_ipopt(method) else 'scipy'}_status": None if code is None else int(code)}


def multipliers(method: str, result: Any) -> dict[str, Any]:
    """``{"multipliers": {"mult_g": [...], "mult_x_L": [...], "mult_x_U": [...]}}`` for IPOPT (IPOPT's
    sign convention, see :mod:`optrun.interfaces.ipopt.interface`), else nothing."""
    found = result.get("multipliers") if is_ipopt(method) else None
    if not isinstance(found, dict):
        return {}
    return {"multipliers": {key: np.asarray(value, np.float64).tolist() for key, value in found.items()}}

"""IPOPT's options, checked in Python before IPOPT sees them.

IPOPT prints its own complaint about a bad option straight to the process's
stdout (C level, before any ``print_level`` applies) and cyipopt then raises a
bare ``TypeError``. So the names, types, ranges and allowed values are read
once per process from IPOPT's own documentation (a throwaway one-variable
solve with ``print_options_documentation yes``, written to a temporary file in
Doxygen form, about 5 ms), and every option is checked against that table:
IPOPT only ever gets values it accepts.

Needs the ``ipopt`` extra (cyipopt); no TensorFlow here.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optrun.errors import InvalidArgumentError, MissingDependencyError
from optrun.interfaces.ipopt.option_files import check_files
from optrun.suggest import close_match, suggest

#: IPOPT's status for an option it refused at the solve (a linear solver it could not load).
INVALID_OPTION = -12
#: IPOPT's default iteration limit (its ``max_iter``).
DEFAULT_MAX_ITER = 3000
#: The range of IPOPT's integer options (C ints).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: The one line a missing extra gets.
INSTALL_HINT = (
    'IPOPT needs the ipopt extra: pip install "/path/to/optrun[ipopt]" from a checkout, or just its '
    'package: pip install "cyipopt-wheels>=1.7.0.dev0"'
)


def import_cyipopt() -> Any:
    """The ``cyipopt`` module, or :class:`MissingDependencyError` with the install line."""
    try:
        import cyipopt
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    return cyipopt


@dataclass(frozen=True)
class OptionSpec:
    """One IPOPT option: its kind (``real``, ``integer`` or ``string``), range or allowed values."""

    name: str
    kind: str
    low: float = -math.inf
    low_strict: bool = False
    high: float = math.inf
    high_strict: bool = False
    #: A string option's allowed values; None: any string (a file name).
    values: tuple[str, ...] | None = None

    def range_text(self) -> str:
        """``0 < tol``, ``0 <= print_level <= 12``: IPOPT's own notation."""
        left = f"{self.low:g} {'<' if self.low_strict else '<='} " if self.low > -math.inf else ""
        right = f" {'<' if self.high_strict else '<='} {self.high:g}" if self.high < math.inf else ""
        return f"{left}{self.name}{right}" if left or right else "any value"


#: Registered by IPOPT but left out of its documentation.
_HIDDEN = {"sb": OptionSpec("sb", "string", values=("yes", "no"))}
_BLOCK = re.compile(r"\\anchor OPT_(\w+)\n(.*?)</blockquote>", re.S)
_KIND = re.compile(r"this (real|integer|string) option")
_RANGE = re.compile(r"valid range for this \w+ option is (.*?) and its default value")
_NUMBER = r"[-+]?[\d.]+(?: &middot; 10<sup>[-+]\d+</sup>|<sup>[-+]\d+</sup>)?"
_SIDE = re.compile(rf"^(?:({_NUMBER}) (<|&le;) )?\w+(?: (<|&le;) ({_NUMBER}))?$")
_VALUE = re.compile(r"^ - ([^:\s]+):", re.M)


def _number(text: str) -> float:
    """``10<sup>+20</sup>`` -> 1e20, ``5 &middot; 10<sup>+06</sup>`` -> 5e6."""
    text = text.replace(" &middot; 10<sup>", "e").replace("10<sup>", "1e").replace("</sup>", "")
    return float(text)


def _parse(name: str, body: str) -> OptionSpec:
    kind_match = _KIND.search(body)
    kind = kind_match.group(1) if kind_match else "string"
    if kind == "string":
        values = tuple(_VALUE.findall(body.split("Possible values:", 1)[-1]))
        return OptionSpec(name, kind, values=None if not values or "*" in values else values)
    where = _RANGE.search(body)
    side = _SIDE.match(where.group(1)) if where else None
    if side is None:  # "unrestricted", or a form this parser does not know: IPOPT still checks
        return OptionSpec(name, kind)
    low, low_op, high_op, high = side.groups()
    return OptionSpec(
        name,
        kind,
        low=_number(low) if low else -math.inf,
        low_strict=low_op == "<",
        high=_number(high) if high else math.inf,
        high_strict=high_op == "<",
    )


class _Square:
    """min x . x: the throwaway problem IPOPT is asked about itself with."""

    def objective(self, x: Any) -> float:
        return float(x @ x)

    def gradient(self, x: Any) -> Any:
        return 2 * x


def _ask(settings: dict[str, Any], file_print_level: int) -> tuple[int, str]:
    """A one-variable solve that stops before its first iteration; its status and what IPOPT
    wrote to its output file (nothing reaches stdout)."""
    cyipopt = import_cyipopt()
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="optrun-ipopt-") as folder:
        path = Path(folder) / "out.txt"
        problem = cyipopt.Problem(n=1, m=0, problem_obj=_Square())
        quiet: dict[str, Any] = {
            "sb": "yes",  # no banner on stdout
            "print_level": 0,
            "option_file_name": "",  # not ./ipopt.opt
            "output_file": str(path),
            "file_print_level": file_print_level,
            "max_iter": 0,
            "hessian_approximation": "limited-memory",
        }
        for key, value in {**quiet, **settings}.items():
            problem.add_option(key, value)
        _, info = problem.solve(np.ones(1))
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return int(info["status"]), text


@functools.lru_cache(maxsize=1)
def option_table() -> dict[str, OptionSpec]:
    """Every IPOPT option by name, from the installed IPOPT's documentation (cached)."""
    _, text = _ask(
        {
            "print_options_documentation": "yes",
            "print_advanced_options": "yes",
            "print_options_mode": "doxygen",  # the form that names each option's type
        },
        file_print_level=5,
    )
    table = {name: _parse(name, body) for name, body in _BLOCK.findall(text)}
    return {**_HIDDEN, **table}


#: Options that say where IPOPT loads a linear solver from at run time, by the solvers they serve.
LIBRARY_OPTIONS = {"hsllib": ("ma27", "ma57", "ma77", "ma86", "ma97"), "pardisolib": ("pardiso",)}


def check_linear_solver(options: dict[str, Any]) -> None:
    """Raises :class:`InvalidArgumentError` when ``options['linear_solver']`` cannot be loaded.

    IPOPT lists every solver it can load at run time (HSL's, Pardiso) whether or not their
    libraries are there, and only finds out at the solve, as "Invalid option encountered". So a
    solver other than the built-in MUMPS is tried on a throwaway problem, with the options that
    say where its library is (``hsllib``, ``pardisolib``), before the interface is built.
    """
    solver = options.get("linear_solver")
    if solver is None or solver == "mumps":
        return
    related = {key: options[key] for key in ("linear_solver", *LIBRARY_OPTIONS) if key in options}
    status, text = _ask(related, file_print_level=1)
    if status != INVALID_OPTION:
        return
    said = re.search(r"Exception message: (.+)", text)
    library = next((key for key, solvers in LIBRARY_OPTIONS.items() if solver in solvers), None)
    where = (
        f"give the path of a library that has it as options[{library!r}]"
        if library
        else "it needs a solver built into IPOPT"
    )
    raise InvalidArgumentError(
        f"options['linear_solver'] is {solver!r}, which IPOPT could not load"
        f"{': ' + said.group(1).strip().rstrip('.') if said else ''}. The ipopt extra's IPOPT has MUMPS "
        f"('mumps', the default); for {solver!r}, {where}"
    )


#: Options the interface fixes, and why.
_FIXED = {
    "hessian_approximation": (
        "limited-memory",
        "IpoptInterface gives IPOPT first derivatives only (no Hessian callback)",
    ),
}


def _coerce(spec: OptionSpec, value: Any) -> str | int | float:
    """``value`` as the Python type cyipopt passes on for ``spec``'s kind (YAML's strings and
    booleans included), or :class:`InvalidArgumentError`."""
    where = f"options[{spec.name!r}]"
    if spec.kind == "string":
        if isinstance(value, bool) and spec.values and "yes" in spec.values:
            return "yes" if value else "no"  # YAML 1.1 reads yes/no as booleans
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{where} must be a string; got {value!r:.60}")
        if spec.values is None:
            return value
        lowered = {v.lower(): v for v in spec.values}
        if value.lower() in lowered:
            return lowered[value.lower()]
        raise InvalidArgumentError(
            f"{where} must be one of {', '.join(spec.values)}; got {value!r}: "
            f"{suggest(value, spec.values, 'value')}"
        )
    number: float | int
    kind = "a whole number" if spec.kind == "integer" else "a number"
    try:
        # numbers.Real: NumPy's scalars too (np.int64, np.float32).
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
            raise ValueError
        number = float(value)  # a string too: YAML 1.1 reads 1e-8 as one
    except ValueError:
        raise InvalidArgumentError(f"{where} must be {kind}; got {value!r:.60}") from None
    if spec.kind == "integer":
        if not number.is_integer():
            raise InvalidArgumentError(f"{where} must be a whole number; got {value!r}")
        number = int(number)
        if not INT_MIN <= number <= INT_MAX:  # IPOPT's integers are C ints
            raise InvalidArgumentError(
                f"{where} is out of IPOPT's range for integers ({INT_MIN:,} to {INT_MAX:,}); got {value!r}"
            )
    elif math.isnan(number):
        raise InvalidArgumentError(f"{where} must be a number; got {value!r}")
    low_ok = number > spec.low if spec.low_strict else number >= spec.low
    high_ok = number < spec.high if spec.high_strict else number <= spec.high
    if not (low_ok and high_ok):
        raise InvalidArgumentError(f"{where} must satisfy {spec.range_text()}; got {value!r}")
    return number


def check_options(options: Any) -> dict[str, str | int | float]:
    """Validates IPOPT options; returns them with each value in the type IPOPT takes.

    Raises:
        InvalidArgumentError: not a dict, an unknown name (with a did-you-mean),
            a value of the wrong type, out of range or not among the allowed
            values, or an option the interface fixes.
    """
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidArgumentError(
            f"options must be a dict of IPOPT options such as {{'max_iter': 100}}; got {options!r:.60}"
        )
    table = option_table()
    checked: dict[str, str | int | float] = {}
    for name, value in options.items():
        spec = table.get(name) if isinstance(name, str) else None
        if spec is None:
            close = close_match(str(name), table)
            raise InvalidArgumentError(
                f"options: {name!r} is not an IPOPT option; "
                + (
                    f"did you mean {close!r}?"
                    if close
                    else "see IPOPT's option list (coin-or.github.io/Ipopt)"
                )
            )
        checked[name] = _coerce(spec, value)
        fixed = _FIXED.get(name)
        if fixed is not None and str(checked[name]).lower() != fixed[0]:
            raise InvalidArgumentError(f"options[{name!r}] must be {fixed[0]!r}: {fixed[1]}; got {value!r}")
    check_linear_solver(checked)
    check_files(checked, check_options, ("linear_solver", *LIBRARY_OPTIONS))
    return checked

"""The search space: parameters from ``--param`` flags and the spec's ``sweep.params``.

Each parameter is a spec field by the dotted path ``--set`` takes, and its values
(:class:`optrun.spec.sweep.Space`). Optuna sees it under that path as the parameter's
name; a trial passes its values to the run as ``--set`` overrides (:func:`overrides`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optrun.errors import Problem, line_of
from optrun.spec.sweep import Scalar, Space, parse_space

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


@dataclass(frozen=True)
class Param:
    """One searched field: its dotted ``path``, its values, and where it was given.

    ``place`` names it in messages: ``--param PATH`` for a flag, ``sweep.params.PATH``
    for the spec's section (with ``line``).
    """

    path: str
    space: Space
    place: str
    line: int | None = None

    def problem(self, message: str) -> Problem:
        """A problem of this parameter, at its place."""
        return Problem(self.place, message, self.line)

    def text(self) -> str:
        """``path=values``, as a ``--param`` flag would give it."""
        return f"{self.path}={self.space.text}"


def _path_problem(path: str) -> str | None:
    parts = path.split(".")
    if not path or any(not part for part in parts):
        return f"{path!r}: expected a dotted field path such as train.optimizer.args.learning_rate"
    if ":" in path:
        return (
            f"{path!r}: a field path holds no ':'; the values' kind comes after the '=': "
            "PATH=KIND:..., e.g. train.optimizer.args.learning_rate=log:1e-4..1e-1"
        )
    if parts[0] == "sweep":
        return f"{path!r}: a sweep cannot search its own settings (sweep.*); search fields of the run"
    return None


def parse_flag(text: str) -> Param:
    """``PATH=VALUES`` (``train.optimizer.args.learning_rate=log:1e-4..1e-1``) as a parameter.

    Raises:
        ValueError: the flag has no ``=``, a bad path, or values of the wrong syntax.
    """
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep:
        raise ValueError(
            f"{text!r}: expected PATH=VALUES, e.g. train.optimizer.args.learning_rate=log:1e-4..1e-1"
        )
    why = _path_problem(path)
    if why is not None:
        raise ValueError(why)
    return Param(path, parse_space(values), f"--param {path}")


def collect(
    section: dict[str, Any] | None, flags: list[str], lines: dict[tuple[Any, ...], int]
) -> tuple[list[Param], list[Problem]]:
    """The parameters of the spec's ``sweep.params`` then the ``--param`` flags (a flag replaces
    the section's entry for the same path; two flags for one path are a problem), and every
    problem of their syntax.

    The section's syntax problems are the schema's to report (with their lines), so only
    its paths are checked here.
    """
    params: dict[str, Param] = {}
    problems: list[Problem] = []
    for path, value in (section or {}).items():
        key = ("sweep", "params", path)
        why = _path_problem(str(path))
        if why is not None:
            problems.append(Problem(f"sweep.params.{path}", why, line_of(key, lines)))
            continue
        try:
            params[path] = Param(path, parse_space(value), f"sweep.params.{path}", line_of(key, lines))
        except ValueError:
            continue  # the schema says it, at its line
    flagged: set[str] = set()
    for text in flags:
        try:
            param = parse_flag(text)
        except ValueError as error:
            problems.append(Problem(f"--param {text.partition('=')[0].strip() or text}", str(error)))
            continue
        if param.path in flagged:
            problems.append(param.problem(f"{param.path!r} is given twice; give each --param PATH once"))
            continue
        flagged.add(param.path)
        params[param.path] = param
    return list(params.values()), problems


def override(path: str, value: Scalar) -> str:
    """The ``--set`` text giving ``path`` the value (JSON, which the spec's YAML reader reads back)."""
    return f"{path}={json.dumps(value)}"


def overrides(params: dict[str, Any]) -> list[str]:
    """A trial's parameter values as ``--set`` overrides."""
    return [override(path, value) for path, value in params.items()]


def distributions(params: list[Param]) -> dict[str, BaseDistribution]:
    """Optuna's distribution of each parameter, by its path."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, BaseDistribution] = {}
    for param in params:
        space = param.space
        if space.kind == "choice":
            found[param.path] = CategoricalDistribution(list(space.choices))
        elif space.integer:
            assert space.low is not None and space.high is not None
            found[param.path] = IntDistribution(
                int(space.low), int(space.high), log=space.log, step=int(space.step or 1)
            )
        else:
            assert space.low is not None and space.high is not None
            found[param.path] = FloatDistribution(
                float(space.low),
                float(space.high),
                log=space.log,
                step=None if space.step is None else float(space.step),
            )
    return found


def grid(params: list[Param]) -> dict[str, list[Scalar]] | None:
    """Every parameter's values, when all are finite (for ``sampler: grid``); else None."""
    values = {param.path: param.space.grid() for param in params}
    if any(v is None for v in values.values()):
        return None
    return {path: list(v) for path, v in values.items() if v is not None}


def grid_size(params: list[Param]) -> int | None:
    """How many points the full grid has (None: a parameter is not finite)."""
    found = grid(params)
    if found is None:
        return None
    size = 1
    for values in found.values():
        size *= len(values)
    return size

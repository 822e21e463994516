"""Checking a search space before any trial runs: every value against the spec's own model.

Each parameter's values are set into the spec as ``--set`` would set them, one at a time
(a range's ends, and a point inside it that is not a whole number), and the spec is
validated by its pydantic model: an unknown field, or a value its field does not take,
is a problem of that parameter, said once, with what the model said. Every problem of
every parameter is collected, so one :class:`~optrun.errors.ConfigError` lists them all
(exit 2), as ``optrun validate`` does.
"""

from __future__ import annotations

import copy

from optrun.errors import ConfigError, Problem
from optrun.spec.load import RawSpec, apply_overrides, check_schema
from optrun.spec.sweep import Scalar
from optrun.suggest import suggest
from optrun.sweep.space import Param, grid_size, override

#: What a trial's result can be scored by: result.json's keys, and the metrics a run logs.
OBJECTIVES = {
    "train": ("final_loss", "loss", "steps", "time_s", "skipped_nonfinite"),
    "minimize": (
        "fun",
        "loss",
        "constraint_violation",
        "nit",
        "nfev",
        "time_s",
        "compile_s",
        "solve_s",
        "mu",
    ),
}
DEFAULT_OBJECTIVE = {"train": "final_loss", "minimize": "fun"}


def _said(param: Param, value: Scalar, problem: Problem) -> str:
    message = problem.message.removesuffix(" (from --set)")
    where = "" if problem.path in (param.path, "(top level)", "") else f"{problem.path}: "
    if message.startswith("unknown key"):
        return f"{where}{message} (a parameter must be a field the spec may hold)"
    shown = f"{value:.6g}" if isinstance(value, float) else repr(value)
    return f"the value {shown} does not fit {'the field' if not where else where.rstrip(': ')}: {message}"


def value_problems(raw: RawSpec, params: list[Param]) -> list[Problem]:
    """One problem per parameter that names an unknown field or has a value the model refuses."""
    base = {key: value for key, value in raw.data.items() if key != "sweep"}
    problems: list[Problem] = []
    for param in params:
        for value in param.space.probes():
            data = copy.deepcopy(base)
            try:
                apply_overrides(data, [override(param.path, value)])
                check_schema(RawSpec(data, raw.base_dir, raw.source, raw.lines, {param.path}))
            except ConfigError as error:
                first = error.problems[0] if error.problems else Problem("", str(error))
                if error.source == "--set":  # the path runs through a scalar or past a list's end
                    problems.append(
                        param.problem(first.message.replace(repr(override(param.path, value)), ""))
                    )
                else:
                    problems.append(param.problem(_said(param, value, first)))
                break
    return problems


def objective_problem(kind: str, objective: str) -> Problem | None:
    """A problem when ``objective`` is nothing a ``kind`` trial reports."""
    known = OBJECTIVES[kind]
    if objective in known:
        return None
    other = "minimize" if kind == "train" else "train"
    if objective in OBJECTIVES[other]:
        why = f"{objective!r} is what a {other} run reports; a {kind} trial reports {', '.join(known)}"
    else:
        why = f"a {kind} trial reports no {objective!r}; {suggest(objective, known, 'objective')}"
    return Problem("--objective", why)


def sampler_problems(sampler: str, params: list[Param]) -> list[Problem]:
    """Where the sampler cannot search the space: grid needs finite values, cmaes numeric ranges."""
    problems = []
    if sampler == "grid":
        for param in params:
            if param.space.grid() is None:
                problems.append(
                    param.problem(
                        f"the grid sampler needs finitely many values; {param.space.text!r} is a continuous "
                        "range (give choice:..., an int range, or float:LOW..HIGH:STEP)"
                    )
                )
    elif sampler == "cmaes":
        for param in params:
            if param.space.kind == "choice":
                problems.append(
                    param.problem(
                        f"the cmaes sampler searches numeric ranges only; {param.space.text!r} is a choice "
                        "(use --sampler tpe, or search a range)"
                    )
                )
    return problems


def budget_problem(
    sampler: str, params: list[Param], trials: int | None, timeout: float | None
) -> Problem | None:
    """A problem when the sweep has no budget (the grid's own size is one)."""
    if trials is None and timeout is None and not (sampler == "grid" and grid_size(params)):
        return Problem(
            "--trials", "the sweep needs a budget: give --trials N and/or --timeout SECONDS (or sweep.trials)"
        )
    return None

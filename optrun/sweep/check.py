"""Checking a search space before any trial runs: every value against the spec's own model.

Each parameter's values are set into the spec as ``--set`` would set them, one at a time
(a range's ends, and a point inside it that is not a whole number), and the spec is
validated by its pydantic model: an unknown field, or a value its field does not take,
is a problem of that parameter, said once, with what the model said. Every problem of
every parameter is collected, so one :class:`~optrun.errors.ConfigError` lists them all
(exit 2), as ``optrun validate`` does.

What the schema cannot know (a free mapping such as ``train.optimizer.args`` or
``model.params``) is checked by :func:`deep_problems` in the sweep's first worker process,
which imports TensorFlow and the user's code anyway: the Keras optimizer's name and
arguments, scipy's method and options, and the arguments each user function takes, as
``optrun validate`` checks them before it builds the model.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import TYPE_CHECKING, Any

from optrun.errors import ConfigError, Problem
from optrun.spec.load import RawSpec, check_schema, read_spec
from optrun.spec.overrides import Overridden, apply_overrides
from optrun.spec.sweep import MAX_GRID, Scalar
from optrun.suggest import suggest
from optrun.sweep.pool import Worker, start_checker
from optrun.sweep.space import Param, grid_size, override

if TYPE_CHECKING:
    from optrun.sweep.plan import SweepPlan

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


def _said(path: str, value: Scalar, problem: Problem) -> str:
    message = re.sub(r" \(from --[\w-]+\)$", "", problem.message)  # the parameter set it, not a flag
    where = "" if problem.path in (path, "(top level)", "") else f"{problem.path}: "
    refused = not where and (" takes no argument " in message or " has no option " in message)
    if message.startswith("unknown key") or refused:  # the path itself names nothing the run takes
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
                check_schema(RawSpec(data, raw.base_dir, raw.source, raw.lines, {param.path: "--set"}))
            except ConfigError as error:
                first = error.problems[0] if error.problems else Problem("", str(error))
                if error.source == "--set":  # the path runs through a scalar or past a list's end
                    said = first.message.replace(repr(override(param.path, value)), "").lstrip(": ")
                    problems.append(param.problem(said))
                else:
                    problems.append(param.problem(_said(param.path, value, first)))
                break
    return problems


def probes(params: list[Param]) -> list[dict[str, Any]]:
    """What :func:`deep_problems` checks, as plain data: each parameter's path, place, line and the
    values it tries."""
    return [{"path": p.path, "place": p.place, "line": p.line, "values": p.space.probes()} for p in params]


def deep_problems(spec: str, overrides: list[str], tried: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each parameter's problems that only the code knows, run in a worker process (TensorFlow and the
    user's modules imported): each value of ``tried`` (see :func:`probes`) set into the spec, and the
    spec checked as ``optrun validate`` checks it without a model (the user functions' arguments, the
    Keras optimizer's name and arguments, the loss's name, scipy's method and options). A problem the
    spec has without the value is not the parameter's: its trials report it. Never raises (a check
    that cannot run finds nothing: the trials say what is wrong).

    Returns:
        ``{"place", "line", "message"}`` for each parameter with a problem (its first).
    """
    try:
        from optrun.runner.build import train_loss
        from optrun.runner.checks import check_method, check_optimizer, check_references
        from optrun.runner.collector import Collector

        raw = read_spec(spec, overrides)
        base = {key: value for key, value in raw.data.items() if key != "sweep"}

        def found(data: dict[str, Any], overridden: Overridden) -> list[Problem]:
            probe = RawSpec(data, raw.base_dir, raw.source, raw.lines, overridden)
            collector = Collector(probe)
            check_references(probe, collector)
            check_method(probe, collector)
            check_optimizer(probe, collector)
            with collector.catch(("loss",)):
                train_loss(check_schema(probe))  # a Keras loss name that does not exist
            return collector.problems

        known = {(p.path, p.message) for p in found(copy.deepcopy(base), dict(raw.overridden))}
        said = []
        for param in tried:
            for value in param["values"]:
                data = copy.deepcopy(base)
                apply_overrides(data, [override(param["path"], value)])
                new = [
                    p
                    for p in found(data, {**raw.overridden, param["path"]: "--set"})
                    if (p.path, p.message) not in known
                ]
                if new:
                    message = _said(param["path"], value, new[0])
                    said.append({"place": param["place"], "line": param["line"], "message": message})
                    break
        return said
    except Exception:  # noqa: BLE001 - a check that cannot run finds nothing; each trial still says why
        return []


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
            if param.space.grid() is not None:
                continue
            space = param.space
            if space.kind != "log" and (space.integer or space.step is not None):  # finite, but too many
                why = f"{space.text!r} has more than {MAX_GRID} values (give a larger step)"
            else:
                why = (
                    f"{space.text!r} is a continuous range (give choice:..., an int range, "
                    "or float:LOW..HIGH:STEP)"
                )
            problems.append(param.problem(f"the grid sampler needs finitely many values; {why}"))
        size = grid_size(params)
        if size is not None and size > MAX_GRID:
            problems.append(
                Problem(
                    "--sampler",
                    f"the grid has {size} points, more than the {MAX_GRID} the grid sampler enumerates; "
                    "give fewer values, or --sampler tpe with --trials",
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
    """A problem when the sweep has no budget (the grid's own size is one; a grid that is not finite
    is :func:`sampler_problems`' to say)."""
    if trials is None and timeout is None and sampler != "grid":
        return Problem(
            "--trials", "the sweep needs a budget: give --trials N and/or --timeout SECONDS (or sweep.trials)"
        )
    return None


def discard(worker: Worker | None, wait: float = 10.0) -> None:
    """Ends a worker that will run no trial (if any), and removes its temporary log."""
    if worker is None:
        return
    worker.close(wait)
    with contextlib.suppress(OSError):
        worker.log.unlink()


def checked_worker(plan: SweepPlan, env: dict[str, str]) -> Worker | None:
    """The sweep's first worker, once it found no problem in the space that only the code knows
    (:func:`optrun.sweep.check.deep_problems`): Keras's optimizer arguments, scipy's methods, the
    arguments of the user's functions. None when it died first (each trial then says why).

    Raises:
        ConfigError: every such problem, at once (exit 2); nothing was written.
    """
    worker = start_checker(env)
    try:
        said = worker.check(
            {"spec": str(plan.spec), "overrides": list(plan.overrides), "tried": probes(list(plan.params))}
        )
    except BaseException:  # Ctrl-C while it checked: it need not finish
        discard(worker, wait=0.5)
        raise
    if said is None:
        discard(worker)
        return None
    if said:
        discard(worker)
        raise ConfigError(plan.source, [Problem(s["place"], s["message"], s["line"]) for s in said])
    if plan.fresh_processes:
        worker.used = 1  # TensorFlow's devices were set up by the check: the first trial gets a new one
    return worker

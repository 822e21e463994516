"""A sweep resolved: the spec's ``sweep:`` section, overridden by the command line, and checked.

:func:`make_plan` reads the spec (with the ``--set`` overrides every trial gets), takes
each setting from its flag, else the spec's ``sweep:`` section, else the default, and
checks all of it before anything is written or any trial runs: the spec itself, the
space's syntax, every value against the spec's model, the objective, whether the sampler
can search the space, and the budget. Every problem is raised at once, in one
:class:`~optrun.errors.ConfigError` (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optrun.errors import ConfigError, Problem
from optrun.evaluation import switches
from optrun.spec.load import check_schema, read_spec
from optrun.spec.sweep import SweepSpec
from optrun.sweep import check
from optrun.sweep.space import Param, collect, grid_size
from optrun.sweep.study import is_url

#: The objectives a pruner can judge a training trial by, from the loss it logs.
PRUNABLE = ("final_loss", "loss")


@dataclass(frozen=True)
class SweepFlags:
    """What the command line says; None (or empty) leaves a setting to the spec's ``sweep:`` section."""

    params: list[str] = field(default_factory=list)
    trials: int | None = None
    timeout_s: float | None = None
    sampler: str | None = None
    pruner: str | None = None
    objective: str | None = None
    direction: str | None = None
    jobs: int | None = None
    kind: str | None = None
    storage: str | None = None
    study: str | None = None
    out: Path | None = None
    resume: bool = False
    force: bool = False


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs, checked.

    ``overrides`` are the user's ``--set`` (every trial gets them first); ``storage`` is
    None for the default journal file inside ``out``; ``budget`` the study's trial total
    (None: until ``timeout_s``); ``every_steps`` and ``max_steps`` the spec's logging
    interval and training length (Hyperband's resources); ``notes`` what the user should know
    (a pruner asked for that cannot prune these trials).
    """

    spec: Path
    source: str
    name: str
    overrides: tuple[str, ...]
    kind: str
    params: tuple[Param, ...]
    objective: str
    direction: str
    sampler: str
    seed: int
    pruner: str
    budget: int | None
    timeout_s: float | None
    jobs: int
    out: Path
    storage: str | None
    study: str
    resume: bool
    force: bool
    fresh_processes: bool
    every_steps: int
    max_steps: int | None
    notes: tuple[str, ...] = ()
    #: A digest of the spec every trial starts from (``--set`` and ``--seed`` applied, ``sweep:``
    #: left out): a resumed sweep must start its trials from the same one.
    base: str = ""

    def pruner_config(self) -> dict[str, Any]:
        """The pruner as :func:`optrun.sweep.study.make_pruner` takes it: Hyperband's resources are
        the logging interval and ``train.max_steps``; the median's warmup is 10% of ``max_steps``."""
        warmup = self.max_steps // 10 if self.max_steps else self.every_steps
        resources = {"min_resource": self.every_steps, "max_resource": self.max_steps}
        return {"kind": self.pruner, **resources, "warmup": warmup}

    def marker(self) -> dict[str, Any]:
        """What the sweep directory's marker records (see :mod:`optrun.sweep.sweepdir`)."""
        from optrun.version import __version__

        return {
            "made_by": f"optrun {__version__}",
            "study": self.study,
            "storage": self.storage,
            "spec": str(self.spec),
            "kind": self.kind,
            "objective": self.objective,
            "direction": self.direction,
            "params": sorted(param.text() for param in self.params),
            "base": self.base,
        }


def _kind(flag: str | None, section: SweepSpec, data: dict[str, Any]) -> str | Problem:
    kind = flag or section.kind
    if kind is not None:
        return kind
    if isinstance(data.get("train"), dict):
        return "train"
    if isinstance(data.get("minimize"), dict):
        return "minimize"
    return Problem("", "the spec has neither a train nor a minimize section; add one, or pass --kind")


def make_plan(config: Path, overrides: list[str], flags: SweepFlags) -> SweepPlan:
    """The sweep ``config`` and the flags ask for.

    Raises:
        ConfigError: every problem of the spec, the space, the objective, the sampler and the
            budget, at once.
    """
    raw = read_spec(config, overrides)
    problems: list[Problem] = []
    try:
        loaded = check_schema(raw)
        section = loaded.spec.sweep or SweepSpec()
    except ConfigError as error:
        problems += error.problems
        loaded, section = None, SweepSpec()
    base_ok = all(p.path.startswith("sweep") for p in problems)  # the rest of the spec is valid
    raw_section = raw.data.get("sweep")
    entries = raw_section.get("params") if isinstance(raw_section, dict) else None
    params, syntax = collect(entries if isinstance(entries, dict) else None, flags.params, raw.lines)
    problems = syntax + problems
    kind = _kind(flags.kind, section, raw.data)
    if isinstance(kind, Problem):
        problems.append(kind)
        kind = "train"
    if kind == "minimize":  # the environment's, not the spec's: every trial would stop on it
        try:
            switches.check_all()
        except switches.SwitchError as error:
            problems.append(Problem("", str(error)))
    objective = flags.objective or section.objective or check.DEFAULT_OBJECTIVE[kind]
    said = check.objective_problem(kind, objective)
    problems += [said] if said else []
    sampler = flags.sampler or section.sampler
    trials = flags.trials if flags.trials is not None else section.trials
    timeout = flags.timeout_s if flags.timeout_s is not None else section.timeout_s
    if loaded is None and isinstance(raw_section, dict):
        # The spec did not validate (its problems are said), so the section above holds defaults:
        # the budget and sampler the file gives are what the checks below must see.
        trials = trials if trials is not None else raw_section.get("trials")
        timeout = timeout if timeout is not None else raw_section.get("timeout_s")
        given = raw_section.get("sampler")
        sampler = flags.sampler or (given if isinstance(given, str) else sampler)
    if not params and not syntax and not (loaded is None and entries):  # else: said where they are
        problems.append(
            Problem("--param", "nothing to search: give --param PATH=VALUES or the spec's sweep.params")
        )
    problems += check.sampler_problems(sampler, params)
    said = check.budget_problem(sampler, params, trials, timeout)
    problems += [said] if said else []
    if base_ok:
        problems += check.value_problems(raw, params)
    if problems:
        raise ConfigError(raw.source, problems)
    assert loaded is not None
    spec = loaded.spec
    budget = trials
    if sampler == "grid":
        size = grid_size(params)
        budget = size if budget is None or (size is not None and size < budget) else budget
    storage = flags.storage
    if storage is not None and not is_url(storage):
        storage = str(Path(storage).resolve())
    fresh = spec.strategy.kind != "default" or any(p.path.split(".")[0] == "strategy" for p in params)
    pruner = flags.pruner or section.pruner
    asked = flags.pruner is not None or "pruner" in section.model_fields_set
    notes = []
    if pruner != "none" and (kind != "train" or objective not in PRUNABLE):
        why = "minimize trials" if kind != "train" else f"trials scored by {objective} (it judges the loss)"
        notes += [f"the {pruner} pruner does not stop {why}: each trial runs whole"] if asked else []
        pruner = "none"
    return SweepPlan(
        spec=Path(config).resolve(),
        source=raw.source,
        name=spec.name,
        overrides=tuple(overrides),
        kind=kind,
        params=tuple(params),
        objective=objective,
        direction=flags.direction or section.direction,
        sampler=sampler,
        seed=section.seed if section.seed is not None else spec.seed,
        pruner=pruner,
        budget=budget,
        timeout_s=timeout,
        jobs=flags.jobs or section.jobs,
        out=flags.out if flags.out is not None else Path("runs") / f"{spec.name}-sweep",
        storage=storage,
        study=flags.study or spec.name,
        resume=flags.resume,
        force=flags.force,
        fresh_processes=fresh,
        every_steps=spec.logging.every_steps,
        max_steps=spec.train.max_steps if spec.train is not None else None,
        notes=tuple(notes),
        base=_digest(spec),
    )


def _digest(spec: Any) -> str:
    """The spec's settings, less its ``sweep:`` section, as a short digest (key order aside)."""
    settings = json.dumps(spec.model_dump(mode="json", exclude={"sweep"}), sort_keys=True, default=str)
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """TensorFlow and BLAS threads for each of ``jobs`` trial processes: the cores divided among them."""
    return max(1, cores() // max(jobs, 1))

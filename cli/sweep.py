"""``optrun sweep``: search a spec's settings with Optuna; each trial an ordinary run directory.

Optuna (the ``sweep`` extra) is imported only when the command runs, TensorFlow only in
the worker processes that run the trials (:mod:`optrun.sweep.pool`).
"""

from __future__ import annotations

import json
import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import EXIT_FAILED, command_signals, ending, error_boundary
from .options import JsonOpt, QuietOpt, SetOpt, VerboseOpt, seed_override
from .progress import PipeSafeConsole, tolerant
from .startup import setup_logging
from .summary import cell


class Sampler(str, Enum):
    """``--sampler``."""

    tpe = "tpe"
    random = "random"
    grid = "grid"
    cmaes = "cmaes"


class Pruner(str, Enum):
    """``--pruner``."""

    median = "median"
    hyperband = "hyperband"
    none = "none"


class Direction(str, Enum):
    """``--direction``."""

    minimize = "minimize"
    maximize = "maximize"


class Kind(str, Enum):
    """``--kind``."""

    train = "train"
    minimize = "minimize"


STATE_COLORS = {
    "complete": "green",
    "pruned": "blue",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
    "waiting": "white",
}


def _value(value: Any) -> str:
    return cell(value, digits=4) if isinstance(value, float) else cell(value)


def short_params(params: dict[str, Any]) -> str:
    """``learning_rate=0.003 hidden=64``: each parameter by its last path part (whole when ambiguous)."""
    leaves = [path.split(".")[-1] for path in params]
    return " ".join(
        f"{leaf if leaves.count(leaf) == 1 else path}={_value(value)}"
        for leaf, (path, value) in zip(leaves, params.items(), strict=True)
    )


class SweepLines:
    """The sweep's progress as lines: one when it starts, one per finished trial, then a table."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet, self.objective = console, quiet, "value"

    def start(self, plan: Any, existing: int, threads: int) -> None:
        self.objective = plan.objective
        if self.quiet:
            return
        budget = f"{plan.budget} trial(s)" if plan.budget is not None else "no trial limit"
        budget += f", {plan.timeout_s:g} s" if plan.timeout_s is not None else ""
        pruner = f", {plan.pruner} pruner" if plan.kind == "train" and plan.pruner != "none" else ""
        self.console.print(
            escape(
                f"optrun sweep: {plan.name} ({plan.kind}) -> {plan.out}: {budget}; {plan.sampler} sampler"
                f"{pruner}; {plan.objective} ({plan.direction}); {plan.jobs} job(s) x {threads} thread(s)"
                + (f"; the study holds {existing} trial(s) already" if existing else "")
            ),
            highlight=False,
            soft_wrap=True,
        )

    def trial_finished(self, record: Any, best: Any) -> None:
        if self.quiet:
            return
        color = STATE_COLORS.get(record.state, "white")
        score = f"{self.objective} {_value(record.value)}" if record.value is not None else ""
        tail = f" at step {record.last_step}" if record.state == "pruned" and record.last_step else ""
        best_text = f"best {_value(best.value)} (trial {best.number})" if best is not None else "no best yet"
        state = f"[{color}]{record.state:<11}[/]"
        line = f"trial {record.number:>4}  {state}{escape(score + tail):<26} {best_text}  "
        line += escape(short_params(record.params))
        if record.seconds is not None:
            line += f"  {record.seconds:.1f}s"
        self.console.print(line, highlight=False, soft_wrap=True)
        if record.state in ("failed", "interrupted") and record.message:
            self.console.print(f"           {escape(record.message)}", highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _summary(console: Console, outcome: Any) -> None:
    table = Table(show_header=False)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(outcome.counts.items())) or "none"
    table.add_row("study", escape(f"{outcome.study} in {outcome.storage}"))
    table.add_row("trials", escape(counts))
    best = outcome.best
    if best is not None:
        table.add_row("best", escape(f"trial {best.number}: {_value(best.value)}"))
        table.add_row("best params", escape(short_params(best.params)))
        table.add_row("best run", escape(str(best.run_dir)))
    table.add_row("elapsed (s)", f"{outcome.elapsed_s:.1f}")
    console.print(
        escape(f"sweep {outcome.study} -> {outcome.out}  (optrun show {outcome.out})"), highlight=False
    )
    console.print(table)


def _data(outcome: Any) -> dict[str, Any]:
    return {
        "sweep_dir": str(outcome.out),
        "study": outcome.study,
        "storage": outcome.storage,
        "success": outcome.best is not None,
        "counts": outcome.counts,
        "best": outcome.best.data() if outcome.best is not None else None,
        "finished": [record.data() for record in outcome.finished],
        "elapsed_s": outcome.elapsed_s,
    }


def sweep(
    config: Annotated[
        Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML) whose settings to search.")
    ],
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="PATH=VALUES",
            help="A field to search and its values: log:1e-4..1e-1, float:0..1[:STEP], int:16..128[:STEP], "
            "logint:1..64, choice:SGD,RMSprop (repeatable; adds to the spec's sweep.params, or replaces "
            "its entry for PATH).",
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            min=1,
            metavar="N",
            help="The study's trial budget, all its trials counted. A budget is needed: --trials "
            "and/or --timeout (a grid's own size is one).",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.001,
            metavar="SECONDS",
            help="Start no trial after this long (running ones finish).",
        ),
    ] = None,
    sampler: Annotated[Sampler | None, typer.Option(help="tpe (default), random, grid or cmaes.")] = None,
    pruner: Annotated[
        Pruner | None,
        typer.Option(
            help="median (default), hyperband or none; prunes training trials scored by their loss."
        ),
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="What to score: final_loss (train), fun (minimize), or a metric."),
    ] = None,
    direction: Annotated[Direction | None, typer.Option(help="minimize (default) or maximize.")] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, metavar="N", help="Trials at once, in processes.")
    ] = None,
    kind: Annotated[Kind | None, typer.Option(help="What trials run: train or minimize.")] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Optuna storage shared by workers (postgresql://..., a journal file); "
            "default: study.journal in the sweep directory.",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option(metavar="NAME", help="The study's name (default: the spec's name).")
    ] = None,
    overrides: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Sweep directory (default: runs/NAME-sweep).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the sweep: interrupted trials in place, then the rest.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Remove the sweep directory there and start afresh.")
    ] = False,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            metavar="N",
            help="Override the spec's seed (the trials', and the sampler's unless sweep.seed is set).",
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Search the spec's settings with Optuna: each trial is a run directory (optrun show reads it).

    The space comes from --param flags and the spec's sweep: section, checked whole before any trial.

    Exit code 0 when a trial completed, 1 when none did, 2 for a bad spec or space, 130/143 when interrupted.
    """
    setup_logging(verbose, quiet)
    with command_signals():
        console = PipeSafeConsole(stderr=as_json)
        with error_boundary(verbose, as_json):
            from optrun.sweep.study import require_optuna

            require_optuna()
            import optuna

            optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.ERROR)
            from optrun.sweep.driver import SweepInterrupted, run_sweep
            from optrun.sweep.plan import SweepFlags, make_plan

            flags = SweepFlags(
                params=list(params or []),
                trials=trials,
                timeout_s=timeout,
                sampler=sampler.value if sampler else None,
                pruner=pruner.value if pruner else None,
                objective=objective,
                direction=direction.value if direction else None,
                jobs=jobs,
                kind=kind.value if kind else None,
                storage=storage,
                study=study,
                out=out,
                resume=resume,
                force=force,
            )
            plan = make_plan(config, [*(overrides or []), *seed_override(seed)], flags)
            try:
                outcome = run_sweep(plan, SweepLines(console, quiet))
                ending()  # every trial is written: a signal now would only cut the summary short
            except SweepInterrupted as stop:  # the command to go on, with every flag given this time
                again = resume_command(sys.argv[1:], plan.out)
                raise SweepInterrupted(
                    stop.exit_code, f"interrupted; {stop.marked}. Continue with: {again}"
                ) from None
        with tolerant(console.file):
            if as_json:
                from optrun.runner.reporting import jsonable

                typer.echo(json.dumps(jsonable(_data(outcome)), indent=2, allow_nan=False))
            elif not quiet:
                _summary(console, outcome)
        if outcome.best is None:
            raise typer.Exit(EXIT_FAILED)


def resume_command(args: list[str], out: Path) -> str:
    """``optrun ARGS --resume``: the command as given, without ``--force`` or a ``--resume`` of
    its own, with ``--out`` (the sweep directory) where it was left to the default."""
    kept = [a for a in args if a not in ("--force", "--resume")]
    if not any(a == "--out" or a.startswith("--out=") for a in kept):
        kept += ["--out", str(out)]
    return shlex.join(["optrun", *kept, "--resume"])

"""``optrun show SWEEP`` and ``optrun runs SWEEP``: a sweep directory, read back from its study.

``runs`` ranks the trials by the objective, with their parameters; ``show`` prints the
best trial, the parameter importances and the objective over the trials. Each trial's
own run directory is an ordinary run (``optrun show SWEEP/trial-0007``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from optrun.sweep.sweepdir import is_sweep

from .errors import EXIT_FAILED, error_boundary, stderr
from .plot import chart, log_scale
from .progress import PipeSafeConsole, tolerant
from .summary import cell
from .sweep import STATE_COLORS

__all__ = ["is_sweep", "runs_sweep", "show_sweep"]


def _value(value: Any) -> str:
    return cell(value, digits=6) if isinstance(value, float) else cell(value)


def _read(out: Path, verbose: bool, as_json: bool, importances: bool) -> dict[str, Any]:
    with error_boundary(verbose, as_json, runs=False):
        from optrun.sweep.study import require_optuna

        require_optuna()
        from optrun.sweep.results import read_sweep

        return read_sweep(out, with_importances=importances)
    raise AssertionError("unreachable: the boundary exits")  # pragma: no cover


def _echo_json(data: Any) -> None:
    from optrun.runner.reporting import jsonable

    typer.echo(json.dumps(jsonable(data), indent=2, allow_nan=False))


def _header(console: Console, data: dict[str, Any]) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(data["counts"].items())) or "no trials yet"
    console.print(
        escape(
            f"optrun sweep: {data['study']} -> {data['sweep_dir']}  ({data['kind']}; {data['objective']}, "
            f"{data['direction']}; {counts})"
        ),
        highlight=False,
        soft_wrap=True,
    )


def render_ranking(console: Console, data: dict[str, Any], verbose: bool) -> None:
    """The trials, best first: rank, trial, state, score, last step, parameters, run directory."""
    _header(console, data)
    paths = [text.split("=", 1)[0] for text in data["params"]]
    leaves = [path.split(".")[-1] for path in paths]
    table = Table()
    for column in ("rank", "trial", "state", data["objective"] or "value", "step"):
        table.add_column(escape(column), justify="right" if column != "state" else "left")
    for path, leaf in zip(paths, leaves, strict=True):
        table.add_column(escape(leaf if leaves.count(leaf) == 1 else path), justify="right")
    table.add_column("run")
    if verbose:
        table.add_column("message")
    for trial in data["trials"]:
        color = STATE_COLORS.get(trial["state"], "white")
        row = [
            str(trial["rank"]),
            str(trial["number"]),
            f"[{color}]{trial['state']}[/]",
            escape(_value(trial["value"])),
            escape(_value(trial["last_step"])),
            *(escape(_value(trial["params"].get(path))) for path in paths),
            escape(
                Path(trial["run_dir"]).name if trial["run_dir"] and Path(trial["run_dir"]).is_dir() else "-"
            ),
        ]
        table.add_row(*row, *([escape(trial["message"] or "")] if verbose else []))
    console.print(table)


def render_sweep(console: Console, data: dict[str, Any]) -> None:
    """The best trial, the parameter importances and the objective by trial."""
    _header(console, data)
    best = data["best"]
    if best is None:
        console.print("no trial has completed yet", highlight=False)
    else:
        table = Table(show_header=False)
        table.add_row("trial", str(best["number"]))
        table.add_row(escape(str(data["objective"])), escape(_value(best["value"])))
        for path, value in best["params"].items():
            table.add_row(escape(path), escape(_value(value)))
        table.add_row("run", escape(str(best["run_dir"])))
        console.print("[bold]best trial[/]", highlight=False)
        console.print(table)
    found = data.get("importances")
    if found:
        console.print("[bold]parameter importances[/] (PED-ANOVA)", highlight=False)
        width = max(len(name) for name in found)
        for name, share in found.items():
            bar = "█" * max(1, round(share * 30)) if share > 0 else ""
            console.print(f"  {escape(name):<{width}} {share:6.3f} {bar}", highlight=False, soft_wrap=True)
    elif data.get("importances_note"):
        console.print(escape(data["importances_note"]), highlight=False)
    series = data["series"]
    if series["number"]:
        width = max(min(60, console.width - 14), 10)
        plots = [(f"{data['objective']} by trial", series["value"])]
        plots += [("best so far", series["best"])] if len(set(series["best"])) > 1 else []
        for title, values in plots:
            scale = " (log scale)" if log_scale(values) else ""
            console.print(f"[bold]{escape(title)}[/]{scale}", highlight=False)
            for line in chart(series["number"], values, width=width):
                console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(
        escape(
            f"each trial is a run: optrun show {data['sweep_dir']}/trial-NNNN; "
            f"all of them: optrun runs {data['sweep_dir']}"
        ),
        highlight=False,
        soft_wrap=True,
    )


def show_sweep(out: Path, quiet: bool, verbose: bool, as_json: bool) -> None:
    """``optrun show`` of a sweep directory (``-q``: the best trial's run directory; exit 1 when no
    trial has completed)."""
    data = _read(out, verbose, as_json, importances=not quiet)
    console = PipeSafeConsole()
    with tolerant(console.file):
        if as_json:
            _echo_json(data)
        elif quiet:
            best = (data["best"] or {}).get("run_dir")
            if best is None:  # nothing on stdout: a script's $(optrun show SWEEP -q) is a run or fails
                said = f"no trial of {out} has completed (optrun runs {out} -v says why)"
                stderr.print(
                    f"[bold red]failed:[/] {escape(said)}",
                    highlight=False,
                    soft_wrap=True,
                )
                raise typer.Exit(EXIT_FAILED)
            typer.echo(best)
        else:
            render_sweep(console, data)
            if verbose:
                render_ranking(console, data, verbose)


def runs_sweep(out: Path, quiet: bool, verbose: bool, as_json: bool) -> None:
    """``optrun runs`` of a sweep directory: its trials ranked (``-q``: their run directories)."""
    data = _read(out, verbose, as_json, importances=False)
    console = PipeSafeConsole()
    if not console.is_terminal:
        console.width = max(console.width, 240)
    with tolerant(console.file):
        if as_json:
            _echo_json(data["trials"])
        elif quiet:
            for trial in data["trials"]:
                if trial["run_dir"] and Path(trial["run_dir"]).is_dir():
                    typer.echo(trial["run_dir"])
        else:
            render_ranking(console, data, verbose)

"""``optrun show`` and ``optrun runs``: a run, or all of them, without TensorBoard.

Both only read run directories (:mod:`optrun.runs.reading`, :mod:`optrun.runs.listing`) and never
import TensorFlow.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import error_boundary
from .options import JsonOpt, VerboseOpt
from .plot import chart, log_scale
from .progress import PipeSafeConsole, tolerant
from .summary import cell, summary
from .sweep_show import is_sweep, runs_sweep, show_sweep

RunDirArg = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory (see: optrun runs).")]
RootArg = Annotated[
    Path,
    typer.Argument(metavar="DIR", help="The folder that holds run directories (looked at 4 levels deep)."),
]
ShowQuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only the status: succeeded, budget_reached, failed, ..."),
]
RunsQuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the run directories, newest first.")
]
COLORS = {
    "succeeded": "green",
    "budget_reached": "blue",
    "failed": "red",
    "interrupted": "yellow",
    "running": "cyan",
    "incomplete": "magenta",
    "pruned": "blue",
    "unreadable": "red",
}
#: The violation series in metrics.jsonl (minimize writes ``constraint_violation``).
VIOLATION_KEYS = ("constraint_violation", "violation")


def _status(status: str) -> str:
    return f"[{COLORS.get(status, 'white')}]{escape(status)}[/]"


def _text(value: Any) -> str:
    return cell(value, digits=6)


def _table(console: Console, title: str, rows: dict[str, Any]) -> None:
    console.print(escape(title), highlight=False, soft_wrap=True)  # not a table title: no padding
    table = Table(show_header=False)
    for key, value in rows.items():
        table.add_row(escape(key), escape(_text(value)))
    console.print(table)


def _plot(console: Console, name: str, steps: list[int], values: list[float]) -> None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        console.print(f"{escape(name)}: no finite value to plot", highlight=False)
        return
    if name != "loss" and max(finite) == min(finite) == 0:
        console.print(f"{escape(name)}: 0 at every logged step", highlight=False)
        return
    width = max(min(60, console.width - 14), 10)
    scale = " (log scale)" if log_scale(finite) else ""
    skipped = len(values) - len(finite)
    note = f", {skipped} non-finite left out" if skipped else ""
    console.print(f"[bold]{escape(name)}[/]{scale} by step{note}", highlight=False)
    for line in chart(steps, values, width=width):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def render_run(console: Console, run: dict[str, Any], verbose: bool) -> None:
    """Prints one run: header, result, key settings, last metrics and the plots."""
    console.print(
        f"[bold]optrun {escape(run['kind'])}: {escape(str(run['name']))}[/] -> {escape(run['run_dir'])}  "
        + _status(run["status"]),
        highlight=False,
        soft_wrap=True,
    )
    if run["result"] is not None:
        summary(console, "result (result.json)", run["result"])
    else:
        console.print("no result.json: the run has not finished (or was killed)", highlight=False)
    if run["settings"]:
        _table(console, "settings (config.yaml)", run["settings"])
    else:
        console.print("no config.yaml: the run stopped before it started", highlight=False)
    metrics = run["metrics"]
    if metrics["last"] is not None:
        _table(console, f"last metrics ({metrics['count']} records)", metrics["last"])
    else:
        console.print(f"no metrics in {escape(metrics['file'])}", highlight=False, soft_wrap=True)
    if metrics["torn"]:
        console.print("[yellow]note:[/] skipped a torn last line in the metrics file", highlight=False)
    series = metrics["series"]
    if "loss" in series:
        _plot(console, "loss", metrics["steps"], series["loss"])
    for key in VIOLATION_KEYS:
        if key in series:
            _plot(console, key, metrics["steps"], series[key])
            break
    if verbose and run["spec"] is not None:
        import yaml

        console.print("[bold]resolved spec (config.yaml)[/]")
        console.print(yaml.safe_dump(run["spec"], sort_keys=False).rstrip(), highlight=False, markup=False)


def show(
    run_dir: RunDirArg,
    quiet: ShowQuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a run: its result, key settings, last metrics and a plot of the loss.

    A sweep directory (optrun sweep): its best trial, parameter importances and the objective by trial.
    """
    if is_sweep(run_dir):
        return show_sweep(run_dir, quiet, verbose, as_json)
    console = PipeSafeConsole()
    with error_boundary(verbose, as_json, runs=False):
        from optrun.runs.reading import read_run

        run = read_run(run_dir)
    with tolerant(console.file):
        if as_json:
            from optrun.runner.reporting import jsonable

            typer.echo(json.dumps(jsonable(run), indent=2, allow_nan=False))
        elif quiet:
            typer.echo(run["status"])
        else:
            render_run(console, run, verbose)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def runs(
    root: RootArg = Path("runs"),
    quiet: RunsQuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List the runs under DIR, newest first: name, kind, status, steps, final loss, wall time.

    A sweep directory (optrun sweep): its trials, ranked by the objective, with their parameters.
    """
    if is_sweep(root):
        return runs_sweep(root, quiet, verbose, as_json)
    console = PipeSafeConsole()
    if not console.is_terminal:  # piped or captured: whole lines, for grep and awk
        console.width = max(console.width, 240)
    with error_boundary(verbose, as_json, runs=False):
        from optrun.runs.listing import list_runs

        entries = list_runs(root)
    with tolerant(console.file):
        if as_json:
            from optrun.runner.reporting import jsonable

            typer.echo(json.dumps(jsonable(entries), indent=2, allow_nan=False))
            return
        if quiet:
            for entry in entries:
                typer.echo(entry["run_dir"])
            return
        if not entries:
            console.print(f"no runs under {escape(str(root))}", highlight=False)
            return
        console.print(escape(f"runs under {root}, newest first"), highlight=False, soft_wrap=True)
        table = Table()
        for column in ("run", "name", "kind", "status", "steps", "final loss", "wall time (s)", "modified"):
            numeric = column in ("steps", "final loss", "wall time (s)")
            table.add_column(column, justify="right" if numeric else "left")
        if verbose:
            table.add_column("error")
        for entry in entries:
            row = [
                escape(entry["run_dir"]),
                escape(str(entry["name"])),
                escape(entry["kind"]),
                _status(entry["status"]),
                escape(_text(entry["steps"])),
                escape(_text(entry["final_loss"])),
                escape(_text(entry["wall_time_s"])),
                _when(entry["modified"]),
            ]
            table.add_row(*row, *([escape(entry["error"] or "")] if verbose else []))
        console.print(table)
        unreadable = [entry for entry in entries if entry["status"] == "unreadable"]
        if unreadable and not verbose:
            console.print(
                f"[yellow]note:[/] {len(unreadable)} run(s) have damaged files; -v shows why", highlight=False
            )

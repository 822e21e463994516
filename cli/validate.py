"""``optrun validate``: every problem of every spec given, in one pass, and nothing written."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from optrun.errors import ERROR, INFO, SKIPPED, WARNING

from .errors import EXIT_USAGE, error_boundary, stderr
from .progress import PipeSafeConsole, tolerant
from .startup import import_tensorflow, stdout_to_stderr
from .summary import summary


def _entry(
    source: str, path: str, severity: str, message: str, line: int | None = None, from_set: bool = False
) -> dict[str, Any]:
    """One ``--json`` finding; every entry has the same keys."""
    return {
        "file": source,
        "path": path,
        "line": line,
        "from_set": from_set,
        "severity": severity,
        "message": message,
    }


def _entries(source: str, problems: list[Any], reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``--json`` list for one spec: errors, then warnings and one 'info' entry per check passed.

    ``from_set``: the problem's value came from a ``--set`` override (its ``line`` is then null);
    false for warnings and info, which are about the run, not a value given.
    """
    entries = [_entry(source, p.path, ERROR, p.message, p.line, p.from_set) for p in problems]
    for report in reports:
        if report["mode"] == SKIPPED:  # checks that needed a part with a problem
            entries += [_entry(source, "", SKIPPED, f"not checked: {why}") for why in report["skipped"]]
            continue
        for label in report.get("unused_variables", []):
            message = f"the loss does not depend on {label!r} (zero gradient)"
            entries.append(_entry(source, "model", WARNING, message))
        for name in report.get("ungraded_constraints", []):
            message = "gets no gradient from any variable (zero Jacobian): the solver cannot act on it"
            entries.append(_entry(source, f"minimize.constraints.{name}", WARNING, message))
        for line in report.get("nonfinite_at_start", []):  # train.on_nonfinite: skip goes on past them
            message = f"{line} on the first batch; train.on_nonfinite: skip drops such updates"
            entries.append(_entry(source, "loss", WARNING, message))
        for line in report.get("bounds_violated_at_start", []):
            entries.append(_entry(source, "minimize.constraints.bounds", WARNING, line))
        passed = _entry(source, report["mode"], INFO, f"{report['mode']} checks passed")
        entries.append({**passed, "report": report})
    return entries


def _sweep_problems(raw: Any) -> list[Any]:
    """The problems of a spec's ``sweep.params``: each path a field the spec holds, each value one
    its model takes (checked as ``optrun sweep`` checks them before its first trial)."""
    section = raw.data.get("sweep")
    params = section.get("params") if isinstance(section, dict) else None
    if not isinstance(params, dict) or not params:
        return []
    from optrun.sweep.check import value_problems
    from optrun.sweep.space import collect

    found, problems = collect(params, [], raw.lines)
    return [*problems, *value_problems(raw, found)]


def sorted_problems(problems: list[Any]) -> list[Any]:
    """By line, those without one last; each once."""
    unique = list({(p.path, p.message): p for p in problems}.values())
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0))


def run_validate(
    configs: list[Path], overrides: list[str], quiet: bool, verbose: bool, as_json: bool
) -> None:
    """Checks each spec (none: both built-in defaults); exits 2 if any has a problem."""
    console = PipeSafeConsole(stderr=as_json)
    found: list[tuple[str, list[Any], list[dict[str, Any]]]] = []
    with error_boundary(verbose, as_json, runs=False):
        from optrun.errors import ConfigError
        from optrun.spec.load import read_spec

        targets: list[tuple[Path | None, str]] = [(path, "train") for path in configs] or [
            (None, "train"),
            (None, "minimize"),
        ]
        read: list[Any] = []
        for path, default in targets:
            try:
                read.append(read_spec(path, overrides, default))
            except ConfigError as error:
                found.append((error.source, error.problems, []))
        if read:
            import_tensorflow(verbose)
            from optrun.errors import RunError
            from optrun.runner.validate import validate_raw
            from optrun.scale.strategy import configure_logical_cpus

            from .isolated import split, validate_elsewhere

            count, here, elsewhere = split(read)
            if count is not None:
                with contextlib.suppress(RunError):  # TF already set up: the spec's own check says so
                    configure_logical_cpus(count)
            with stdout_to_stderr(as_json):  # a print in user code must not break the JSON
                checked = {id(raw): (raw.source, *validate_raw(raw)) for raw in here}
            checked.update({id(raw): validate_elsewhere(raw, overrides) for raw in elsewhere})
            for raw in read:  # the sweep: section, whose values only `optrun sweep` sets
                source, problems, reports = checked[id(raw)]
                sweep = _sweep_problems(raw)
                found.append((source, sorted_problems([*problems, *sweep]) if sweep else problems, reports))
    failed = any(problems for _, problems, _ in found)
    for source, problems, reports in found:
        if problems and not quiet:
            text = str(ConfigError(source, problems))
            stderr.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
            for entry in _entries(source, [], reports):
                if entry["severity"] == SKIPPED:
                    stderr.print(f"[dim]note:[/] {escape(entry['message'])}", highlight=False, soft_wrap=True)
    with tolerant(console.file):
        if as_json:
            from optrun.runner.reporting import jsonable

            entries = [e for source, problems, reports in found for e in _entries(source, problems, reports)]
            typer.echo(json.dumps(jsonable(entries), indent=2, allow_nan=False))
        elif not quiet:
            for source, problems, reports in found:
                for report in [] if problems else reports:
                    summary(console, f"{source}: {report['mode']} checks passed", report)
                for entry in _entries(source, problems, reports):
                    if entry["severity"] == WARNING:
                        console.print(f"[yellow]warning:[/] {escape(entry['message'])}", highlight=False)
    if failed:
        raise typer.Exit(EXIT_USAGE)

"""The options the commands share, as ``Annotated`` aliases: one help text for each flag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigArg = Annotated[
    Path | None,
    typer.Argument(
        help="Experiment spec (YAML). Omitted: the built-in default experiment.", show_default=False
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a spec value, e.g. --set train.max_steps=50 (repeatable).",
    ),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", metavar="DIR", help="Run directory (default: runs/NAME).")
]
# Flags take no value: metavar "" keeps Click's help from showing one.
ResumeOpt = Annotated[
    bool, typer.Option("--resume", metavar="", help="Continue the run in the run directory.")
]
ForceOpt = Annotated[bool, typer.Option("--force", metavar="", help="Overwrite an existing run directory.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, metavar="N", help="Override the spec's seed.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="No progress and no summary.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", metavar="", help="Log details; tracebacks on errors.")
]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print the result as JSON on stdout.")]

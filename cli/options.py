"""The options the commands share, as ``Annotated`` aliases: one help text for each flag."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

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
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in the run directory.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing run directory.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, metavar="N", help="Override the spec's seed.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log details; tracebacks on errors.")]


class StrategyKind(str, Enum):
    """The ``--strategy`` choices: the kinds of the spec's ``strategy`` section."""

    default = "default"
    mirrored = "mirrored"
    multi_worker = "multi_worker"


StrategyOpt = Annotated[
    StrategyKind | None,
    typer.Option(
        "--strategy",
        metavar="KIND",
        help="tf.distribute strategy: default, mirrored or multi_worker; overrides strategy.kind "
        "(another kind than the spec's starts the section afresh).",
        show_default=False,
    ),
]


def strategy_override(kind: StrategyKind | None) -> list[str]:
    """``--strategy KIND`` as the override it stands for (applied before any --set)."""
    from optrun.spec.overrides import FlagOverride

    return [] if kind is None else [FlagOverride(f"strategy.kind={kind.value}", "--strategy", kind.value)]


def seed_override(seed: int | None) -> list[str]:
    """``--seed N`` as the override it stands for."""
    from optrun.spec.overrides import FlagOverride

    return [] if seed is None else [FlagOverride(f"seed={seed}", "--seed", seed)]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def _flags_without_metavar(params: list[Any]) -> list[Any]:
    """Flags take no value, so help shows none (Typer would print ``<bool>`` for --help and the
    completion flags)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class FlagGroup(TyperGroup):
    """The app's group: its flags (Typer's --help and completion flags too) show no value."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_metavar(super().get_params(ctx))


class FlagCommand(TyperCommand):
    """Every command: its flags show no value in --help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_metavar(super().get_params(ctx))

"""``optrun``: the command-line entry point.

TensorFlow is imported only inside the commands that need it, so ``--help``
answers at once.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import EXIT_FAILED, error_boundary

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) is not the user's business.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

app = typer.Typer(
    name="optrun",
    help="tf.contrib.opt for TensorFlow 2: scipy and external optimizers over TF variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console()


@app.callback()
def _root() -> None:
    """optrun: run external (scipy) optimizers over TensorFlow variables."""


@app.command()
def version() -> None:
    """Print optrun's version."""
    from optrun import __version__

    typer.echo(__version__)


@app.command()
def minimize(
    method: Annotated[str, typer.Option(help="scipy.optimize.minimize method.")] = "SLSQP",
    maxiter: Annotated[int | None, typer.Option(min=1, help="Iteration limit.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details; tracebacks on errors.")
    ] = False,
) -> None:
    """Solve the built-in constrained example: min |v|^2, v[1] = 1, v[0] >= 1, from [7, 7]."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    with error_boundary(verbose):
        from optrun.demo import solve_constrained_example

        outcome = solve_constrained_example(method, maxiter)
    if as_json:
        typer.echo(json.dumps(outcome, indent=2))
    else:
        table = Table(title=f"optrun minimize ({method})", show_header=False)
        for key in ("success", "message", "fun", "nit", "nfev", "solution", "residuals"):
            table.add_row(key, str(outcome[key]))
        stdout.print(table)
    if not outcome["success"]:
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

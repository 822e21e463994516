"""The CLI's one error boundary: OptrunError -> a red message and an exit code."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer
from rich.console import Console

from optrun.errors import OptrunError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

stderr = Console(stderr=True)


@contextlib.contextmanager
def error_boundary(verbose: bool = False) -> Iterator[None]:
    """Turns optrun's errors into a message on stderr and exit code 2, never a traceback."""
    try:
        yield
    except OptrunError as error:
        if verbose:
            stderr.print_exception()
        stderr.print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        stderr.print("[yellow]interrupted[/]")
        sys.exit(130)

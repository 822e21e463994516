"""The CLI's one error boundary: optrun's errors -> a red message and an exit code, no traceback."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import typer
from rich.console import Console

from optrun.errors import OptrunError, Terminated

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

stderr = Console(stderr=True)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install_sigterm() -> None:
    """SIGTERM interrupts the run like Ctrl-C, so it checkpoints and exits 143."""
    signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def error_boundary(verbose: bool = False) -> Iterator[None]:
    """Runs the body; optrun errors exit 2 (130/143 for interrupts), never with a traceback."""
    try:
        yield
    except OptrunError as error:
        code = getattr(error, "exit_code", EXIT_USAGE)
        if verbose:
            stderr.print_exception()
        color = "yellow" if code != EXIT_USAGE else "red"
        label = "interrupted" if code != EXIT_USAGE else "error"
        stderr.print(f"[bold {color}]{label}:[/] {error}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        stderr.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except Exception as error:  # noqa: BLE001 - the one boundary: no traceback without --verbose
        if verbose:
            stderr.print_exception()
        first = (str(error).strip().splitlines() or [""])[0]
        stderr.print(
            f"[bold red]error:[/] {type(error).__name__}: {first}"
            + ("" if verbose else "\n(run with --verbose for the traceback)"),
            highlight=False,
        )
        raise typer.Exit(EXIT_USAGE) from None
    except Terminated:
        stderr.print("[yellow]terminated[/]")
        raise typer.Exit(143) from None

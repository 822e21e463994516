"""Progress for a run: a rich bar on a terminal, plain lines every interval elsewhere."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table


def detach(stream: Any) -> None:
    """Points a closed stdout or stderr at /dev/null, so later writes (and the exit flush) pass."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


@contextlib.contextmanager
def tolerant(stream: Any = None) -> Iterator[None]:
    """Writes inside the block may find the reader gone (``optrun train | head``): the run goes on."""
    try:
        yield
    except OSError as error:
        if not isinstance(error, BrokenPipeError) and error.errno != errno.EPIPE:
            raise
        detach(stream if stream is not None else sys.stdout)


class PipeSafeConsole(Console):
    """A rich Console for which a reader that went away is not the end of the run.

    rich's default answer to a broken pipe is ``SystemExit(1)``; this one goes
    quiet, points the stream at /dev/null and lets the run finish and write
    its files.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        detach(self.file)


class RichReporter:
    """Implements optrun's Reporter protocol with rich (on a :class:`PipeSafeConsole`)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: Any = None
        self._kind = ""
        self._total: int | None = None
        self._started = time.perf_counter()
        self._first = 0

    def start(self, kind: str, total: int | None, first_step: int) -> None:
        """Opens the bar (terminal) or prints a header line."""
        self._kind, self._total, self._first = kind, total, first_step
        self._started = time.perf_counter()
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} steps/s"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(kind, total=total, completed=first_step, loss="-", rate="-")
        else:
            where = f" from step {first_step}" if first_step else ""
            self.console.print(
                f"{kind}: starting{where}" + (f", {total} steps" if total else ""), highlight=False
            )

    def _rate(self, step: int) -> float:
        elapsed = time.perf_counter() - self._started
        return (step - self._first) / elapsed if elapsed > 0 else math.nan

    def step(self, step: int, loss: float, logged: bool) -> None:
        """Advances the bar; without a terminal, prints a line at each logging interval."""
        if self._progress is not None:
            self._progress.update(
                self._task, completed=step, loss=f"{loss:.6g}", rate=f"{self._rate(step):.1f}"
            )
        elif logged:
            total = f"/{self._total}" if self._total else ""
            self.console.print(
                f"{self._kind} step {step}{total}  loss {loss:.6g}  {self._rate(step):.1f} steps/s",
                highlight=False,
            )

    def note(self, message: str) -> None:
        """Prints a warning line."""
        self.console.print(f"[yellow]{escape(message)}[/]", highlight=False)

    def close(self) -> None:
        """Stops the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def summary(console: Console, title: str, result: dict[str, Any]) -> None:
    """The end-of-run table."""
    table = Table(title=escape(title), show_header=False, title_justify="left")
    for key, value in result.items():
        text = value if isinstance(value, str) else repr(value)
        if len(text) > 200:
            text = text[:197] + "..."
        table.add_row(escape(key), escape(text))
    console.print(table)

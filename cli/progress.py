"""Progress for a run: a rich bar on a terminal, plain lines every interval elsewhere.

Also the console it writes to, which outlives a reader that went away (``optrun train | head``).
The table at the end of a run is :mod:`optrun_cli.summary`'s.

optrun's library does not import this; only the CLI does, after TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, ProgressColumn, Task
from rich.progress import Progress as Progress_
from rich.table import Table
from rich.text import Text

from optrun.runner.reporting import Progress


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


def duration(seconds: float) -> str:
    """``0.8s``, ``2m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


#: A progress line's fields as ``(name, text)``; the names are those of :data:`RANKS`.
Fields = list[tuple[str, str]]


def _of(count: int | None, total: int | None) -> str:
    return "-" if count is None else f"{count}/{total}" if total else str(count)


def parts(event: Progress, rate: float, elapsed: float | None = None, kind: str = "") -> Fields:
    """A progress line's fields in the order shown: the same beside the bar and in plain lines
    (which put the ``kind`` first)."""
    loss, count = f"loss {event.loss:.6g}", _of(event.step, event.total)
    if event.kind == "minimize":
        violation = "-" if event.violation is None else f"{event.violation:.3g}"
        shown = [("counter", f"{kind}iteration {count}"), ("nfev", f"nfev {_of(event.nfev, event.max_nfev)}")]
        shown += [("loss", loss), ("violation", f"violation {violation}")]
        if event.mu is not None:  # IPOPT's barrier parameter: how far along the interior point path
            shown.append(("mu", f"mu {event.mu:.1g}"))  # one digit: mu moves by powers of ten
    else:
        shown = [("counter", f"{kind}step {count}")]
        if event.epoch is not None:
            shown.append(("epoch", f"epoch {_of(event.epoch, event.epochs)}"))
        shown += [("loss", loss), ("rate", f"{rate:.1f} steps/s")]
    return [*shown, ("elapsed", f"elapsed {duration(event.elapsed if elapsed is None else elapsed)}")]


def plain_line(event: Progress, rate: float, elapsed: float | None = None) -> str:
    """``minimize iteration 12/100  nfev 37  loss 0.001234  violation 0  elapsed 0.8s``, or for
    training ``train step 20/200  epoch 2/13  loss 0.0421  25.3 steps/s  elapsed 0.8s``.
    """
    return "  ".join(text for _, text in parts(event, rate, elapsed, f"{event.kind} "))


#: Which fields a line short of room keeps, most wanted first. The bar (BAR_MIN wide at least)
#: ranks after the loss: at 80 columns the epoch and the rate make way for it, and on a narrower
#: line it goes before the ETA, the counter or the loss would be cut.
RANKS = ("eta", "counter", "loss", "bar", "violation", "mu", "elapsed", "nfev", "epoch", "rate")
BAR_MIN, BAR_MAX = 20, 40
#: Room kept for fields that widen as a run goes (0.1 -> 0.0123, 59s -> 1m00s), so that the bar
#: does not jitter, nor a field come and go, from one refresh to the next.
ROOM = {
    "loss": 15,
    "mu": len("mu 1e-09"),
    "rate": len("999.9 steps/s"),
    "elapsed": len("elapsed 9m59s"),
    "eta": len("ETA 59m59s"),
}


def _room(name: str, text: str) -> int:
    count, _, total = text.rpartition(" ")[2].partition("/")  # 'step 7/300' keeps room for 300/300
    return max(len(text) + max(len(total) - len(count), 0), ROOM.get(name, 0))


def fit(shown: Fields, width: int) -> tuple[int, str]:
    """The bar's width (0: no bar) and the fields, one space apart, that fit ``width`` columns.

    Fields are taken whole in :data:`RANKS` order while they fit; the bar then widens into what is
    left, up to BAR_MAX. Only a field wider than the whole line is ever cut.
    """
    room = {name: _room(name, text) for name, text in shown}
    used, kept = -1, set[str]()
    for name in RANKS:
        need = BAR_MIN if name == "bar" else room.get(name)
        if need is not None and used + 1 + need <= width:
            used, kept = used + 1 + need, kept | {name}
    text = " ".join(text for name, text in shown if name in kept) or shown[0][1]
    return (min(BAR_MAX, width - used + BAR_MIN) if "bar" in kept else 0), text


def stop_line(event: Progress) -> str:
    """Why minimize stopped where it did, with scipy's (or IPOPT's) message."""
    where = f"{event.step} of {event.total}" if event.total else str(event.step)
    why = event.status or ("converged" if event.converged else "did not converge")
    return f"{event.kind} stopped at iteration {where}: {why} ({event.solver}: {event.message})"


def start_line(kind: str, total: int | None, first_step: int) -> str:
    """``train: starting, 300 steps``, or on --resume ``train: resuming at step 20000, 300 steps left
    of 20300`` (minimize: ``iterations`` and ``maxiter``); ``total`` is the whole run's budget.
    """
    minimize = kind == "minimize"
    if not first_step:
        limit = f"maxiter {total}" if minimize else _count(total or 0, "step")
        return f"{kind}: starting" + (f", {limit}" if total else "")
    counter = "iteration" if minimize else "step"
    line = f"{kind}: resuming at {counter} {first_step}"
    if total:
        left = _count(total - first_step, counter) if total > first_step else f"no {counter}s"
        line += f", {left} left of {'maxiter ' if minimize else ''}{total}"
    return line


def _count(number: int, noun: str) -> str:
    """``1 step``, ``300 steps``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


class _Line(ProgressColumn):
    """The bar and the plain line's fields, fitted to the console's width at each refresh; the
    elapsed time ticks while a step runs, and train adds the time left."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def render(self, task: Task) -> RenderableType:
        event: Progress | None = task.fields.get("event")
        elapsed = task.elapsed or 0.0
        if event is None:
            start = task.fields.get("opening") or f"{task.description}: starting"
            shown = [("counter", start), ("elapsed", f"elapsed {duration(elapsed)}")]
        else:
            shown = parts(event, task.fields.get("rate", math.nan), elapsed)
            # rich's own time_remaining is rounded up to whole seconds: "1.0s" for any short rest.
            if event.kind == "train" and task.speed and task.remaining is not None:
                shown.append(("eta", f"ETA {duration(task.remaining / task.speed)}"))
        bar, text = fit(shown, self.console.width)
        line = Text(text, no_wrap=True, overflow="ellipsis")
        if not bar:
            return line
        grid = Table.grid(padding=(0, 1))
        grid.add_row(BarColumn(bar_width=bar).render(task), line)
        return grid


class RichReporter:
    """Implements optrun's Reporter protocol (with ``progress``) on a :class:`PipeSafeConsole`.

    On a terminal: a rich bar; minimize shows iteration/maxiter, nfev, loss,
    constraint violation and elapsed time, train step/total, epoch, loss,
    steps/s, elapsed time and the time left, as many as the width holds (see
    :func:`fit`). Elsewhere: the same fields as a plain line at each logging
    interval. Minimize ends with the line that says at which iteration scipy
    stopped and why.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress_ | None = None
        self._task: Any = None
        self._kind = ""
        self._total: int | None = None
        self._started = time.perf_counter()
        self._first = 0
        self._printed: tuple[int, int | None] | None = None

    def start(self, kind: str, total: int | None, first_step: int) -> None:
        """Opens the bar (terminal) or prints a header line."""
        self._kind, self._total, self._first = kind, total, first_step
        self._started = time.perf_counter()
        self._printed = None
        if self.console.is_terminal:
            self._progress = Progress_(_Line(self.console), console=self.console)
            self._progress.start()
            opening = start_line(kind, total, first_step)  # a resumed run says so, and from where
            self._task = self._progress.add_task(
                kind, total=total, completed=first_step, event=None, opening=opening
            )
        else:
            self.console.print(start_line(kind, total, first_step), highlight=False)

    def _rate(self, step: int) -> float:
        elapsed = time.perf_counter() - self._started
        return (step - self._first) / elapsed if elapsed > 0 else math.nan

    def progress(self, event: Progress) -> None:
        """Advances the bar; without a terminal, prints a line at each logging interval and at the end."""
        if self._progress is not None:
            self._progress.update(self._task, completed=event.step, event=event, rate=self._rate(event.step))
            if event.final:
                self.close()
        elif event.logged and self._printed != (event.step, event.nfev):
            # The final event repeats the last iteration's line unless scipy went on after it.
            self._printed = (event.step, event.nfev)
            self.console.print(plain_line(event, self._rate(event.step)), highlight=False, soft_wrap=True)
        if event.final and event.message is not None:
            style = "green" if event.converged else "yellow"
            self.console.print(f"[{style}]{escape(stop_line(event))}[/]", highlight=False, soft_wrap=True)

    def step(self, step: int, loss: float, logged: bool) -> None:
        """The protocol's plain step (a caller that does not send :class:`Progress`)."""
        elapsed = time.perf_counter() - self._started
        self.progress(Progress(self._kind, step, self._total, loss, logged, elapsed))

    def note(self, message: str) -> None:
        """Prints a warning line."""
        self.console.print(f"[yellow]{escape(message)}[/]", highlight=False, soft_wrap=True)

    def close(self) -> None:
        """Stops the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

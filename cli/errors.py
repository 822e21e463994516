"""The CLI's one error boundary: optrun's errors -> a red message and an exit code, no traceback."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.markup import escape

from optrun.causes import TRACE_HINT, traceback_frames, user_frame
from optrun.errors import OptrunError, Terminated, describe
from optrun.runner.interrupts import defer, loops_started

from .progress import PipeSafeConsole, tolerant

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

stderr = PipeSafeConsole(stderr=True)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


#: After a signal the CLI raised, the rest of a burst (Ctrl-C held down, a supervisor's second
#: signal) for this long is put off while the command unwinds (raised at its next safe point,
#: should the first have been swallowed); one that comes later stops the command again.
BURST_S = 1.0


class _Signals:
    ending = False  # the command is ending: a signal now is ignored
    loops = 0  # run loops this process started before the command began
    own_process = False  # the command is the process's (main()), not a call from Python (a test)
    raised = 0  # the signal _stop_once last raised in this command, if any
    raised_at = 0.0  # and when (time.monotonic())


@contextlib.contextmanager
def command_signals() -> Iterator[None]:
    """SIGINT raises ``KeyboardInterrupt`` and SIGTERM :class:`Terminated` in the block.

    They stop the command while it loads and builds. Once a run's loop has
    started (:func:`optrun.runner.interrupts.loops_started`), the run handles
    them: it checkpoints, writes result.json and exits 130 or 143, and a signal
    that comes after its loop, while it writes its end or the command reports,
    is ignored, as is the rest of a burst (:data:`BURST_S`) and any once the
    command is ending (:func:`ending`). So a late one cannot cut a write or the
    report short, or replace the run's own message. A command called from
    Python (not :func:`command_is_the_process`) gives the caller's handlers back.
    """
    previous = [signal.getsignal(number) for number in _SIGNALS]
    _Signals.ending, _Signals.loops, _Signals.raised = False, loops_started(), 0
    defer(None)
    for number in _SIGNALS:
        signal.signal(number, _stop_once)
    try:
        yield
    finally:
        _Signals.raised = 0  # for the commands that run without these handlers
        if not _Signals.own_process:
            for number, handler in zip(_SIGNALS, previous, strict=True):
                signal.signal(number, handler)


def command_is_the_process() -> None:
    """The command runs as the process's own (the console script): its signal handlers stay."""
    _Signals.own_process = True


def ending() -> None:
    """The command's work is done (or failed): from now on signals are ignored."""
    _Signals.ending = True
    defer(None)


def _stop_once(signum: int, frame: FrameType | None) -> None:
    if _Signals.ending or loops_started() > _Signals.loops:  # the run is its own to stop and write
        return
    now = time.monotonic()
    if _Signals.raised and now - _Signals.raised_at < BURST_S:
        defer(signum)  # not raised into the first one's unwinding; not lost if that was swallowed
        return
    _Signals.raised, _Signals.raised_at = signum, now
    # Put off as well: should the code it comes in swallow it (TensorFlow's C code calling back into
    # Python clears errors), the command still stops at its next safe point, or the run at its first step.
    defer(signum)
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt


def _report(
    label: str,
    color: str,
    message: str,
    code: int,
    as_json: bool,
    record: Path | None = None,
    problems: Any = None,
) -> None:
    # The message is user text: escape it, or '[batch, features]' vanishes as rich markup.
    # A message that starts with the label's word says it once: not 'interrupted: interrupted; ...'.
    shown = message.removeprefix(f"{label}; ")
    stderr.print(f"[bold {color}]{label}:[/] {escape(shown)}", highlight=False, soft_wrap=True)
    if as_json:  # a script reading stdout still gets a JSON answer: the run's record, if it wrote one
        with tolerant(sys.stdout):
            answer = {**_record(record), "success": False, "error": message, "exit_code": code}
            if problems:  # a spec's problems as data: each one's YAML path and line, as validate gives them
                answer["problems"] = [
                    {"path": p.path, "message": p.message, "line": p.line, "from_set": p.from_set}
                    for p in problems
                ]
            typer.echo(json.dumps(answer, indent=2 if len(answer) > 3 else None, allow_nan=False))


def _record(path: Path | None) -> dict[str, Any]:
    """The result.json a failed run wrote, as written (non-finite values are strings there)."""
    try:
        # Non-finite numbers as their text, as optrun writes them: the answer must be strict JSON.
        text = path.read_text(encoding="utf-8") if path is not None else "{}"
        found = json.loads(text, parse_constant=str, parse_float=lambda s: _finite_or_text(float(s), s))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _finite_or_text(value: float, text: str) -> float | str:
    return value if math.isfinite(value) else text


def _user_frame(error: BaseException) -> str:
    """`` in file.py:function (line N)`` for the innermost frame of user code, or ``""``."""
    frame = user_frame(traceback_frames(error.__traceback__))
    if frame is None:
        return ""
    at = "" if frame.line is None else f" (line {frame.line})"
    return f" in {os.path.basename(frame.file)}:{frame.function}{at}"


class _AfterSignal(Exception):
    """An error that came after the CLI raised for a signal: reported with the signal's exit code."""

    def __init__(self, signum: int, failure: str) -> None:
        super().__init__(failure)
        self.signum, self.failure = signum, failure
        self.code = 143 if signum == signal.SIGTERM else 130


@contextlib.contextmanager
def error_boundary(verbose: bool = False, as_json: bool = False, runs: bool = True) -> Iterator[None]:
    """Runs the body; errors exit 2 (1 for a failed run, 130/143 for interrupts), no traceback.

    ``runs``: the command runs a spec, so a signal before that is said to come "before the run
    started"; a command that only reads (``show``, ``validate``) says which signal stopped it.
    """

    def stopped(code: int) -> str:
        if runs:
            return f"{'terminated' if code == 143 else 'interrupted'} before the run started"
        return f"stopped by {'SIGTERM' if code == 143 else 'Ctrl-C (SIGINT)'}"

    try:
        try:
            yield
        except BaseException as error:
            ending()  # whatever ended the command, a signal now must not cut its report short
            # An error after the signal (exit 2 otherwise) may be of what the signal cut short, such
            # as an import of TensorFlow's, which can swallow the KeyboardInterrupt and fail later.
            cut_short = isinstance(error, Exception) and not isinstance(error, typer.Exit)
            if _Signals.raised and cut_short and getattr(error, "exit_code", EXIT_USAGE) == EXIT_USAGE:
                raise _AfterSignal(_Signals.raised, describe(error)) from error
            raise
    except OptrunError as error:
        code = getattr(error, "exit_code", EXIT_USAGE)
        if verbose:
            stderr.print_exception()
        label = {EXIT_USAGE: "error", EXIT_FAILED: "failed"}.get(code, "interrupted")
        # The trace was just printed: the hint to ask for it (also in result.json) would be noise.
        message = str(error).replace(f"; {TRACE_HINT}", "") if verbose else str(error)
        record = getattr(error, "result_file", None)
        color = "red" if code in (EXIT_USAGE, EXIT_FAILED) else "yellow"
        _report(label, color, message, code, as_json, record, getattr(error, "problems", None))
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        _report("interrupted", "yellow", stopped(130), 130, as_json)
        raise typer.Exit(130) from None
    except _AfterSignal as error:
        if verbose:
            stderr.print_exception()
        word = "terminated" if error.signum == signal.SIGTERM else "interrupted"
        message = f"{stopped(error.code)}; what was running then failed: {error.failure}"
        _report(word, "yellow", message, error.code, as_json)
        raise typer.Exit(error.code) from None
    except SystemExit as error:  # sys.exit() in user code that optrun ran outside a loader
        if verbose:
            stderr.print_exception()
        where = _user_frame(error)
        message = f"user code{where} called sys.exit({error.code!r}); it must return or raise, not exit"
        _report("error", "red", message, EXIT_USAGE, as_json)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as error:  # noqa: BLE001 - the one boundary: no traceback without --verbose
        if verbose:
            stderr.print_exception()
        message = describe(error)
        hint = "" if verbose else " (run with --verbose for the traceback)"
        _report("error", "red", message + hint, EXIT_USAGE, as_json)
        raise typer.Exit(EXIT_USAGE) from None
    except Terminated:
        _report("terminated", "yellow", stopped(143), 143, as_json)
        raise typer.Exit(143) from None
    except BaseException as error:  # noqa: BLE001 - user code's GeneratorExit, CancelledError, ...
        if verbose:
            stderr.print_exception()
        hint = "" if verbose else " (run with --verbose for the traceback)"
        _report("error", "red", describe(error) + hint, EXIT_USAGE, as_json)
        raise typer.Exit(EXIT_USAGE) from None

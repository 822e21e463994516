"""The ``optrun`` console script and ``python -m optrun``: the CLI, imported with Ctrl-C in hand.

Importing the CLI (Typer, rich, pydantic) takes a few tenths of a second, and
Ctrl-C in that time would end the process with Python's traceback. This module
imports nothing heavy itself, so it can say "interrupted" (or, for SIGTERM,
whose default ends the process without a word, "terminated") instead, as the
CLI does once it runs (:func:`optrun_cli.errors.command_signals`).
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn


class _TerminatedEarly(BaseException):
    """SIGTERM before ``optrun.errors`` (whose ``Terminated`` the CLI handles) is imported."""


def _terminated(signum: int, frame: object) -> None:
    # Never an import here: the signal may come while that very module is being imported.
    errors = sys.modules.get("optrun.errors")
    raise getattr(errors, "Terminated", _TerminatedEarly)


def main() -> None:
    """Imports the CLI and runs it on the process's arguments.

    SIGTERM raises :class:`optrun.errors.Terminated` from the start (Python's default would
    end the process without a word), as SIGINT raises ``KeyboardInterrupt``; a command that
    runs a spec takes both over (:func:`optrun_cli.errors.command_signals`).
    """
    signal.signal(signal.SIGTERM, _terminated)
    try:
        from optrun_cli.main import main as run
    except BaseException as error:
        terminated = isinstance(error, _TerminatedEarly) or type(error).__name__ == "Terminated"
        if not (terminated or isinstance(error, KeyboardInterrupt)):
            raise
        _stopped_before_start(terminated)
    run()


def _stopped_before_start(terminated: bool) -> NoReturn:
    """Says that SIGTERM (``terminated``) or Ctrl-C stopped the command before a command took
    charge of signals, and ends it with 143 or 130; the rest of a burst is ignored."""
    for number in (signal.SIGINT, signal.SIGTERM):  # the process is ending
        signal.signal(number, signal.SIG_IGN)
    word, code = ("terminated", 143) if terminated else ("interrupted", 130)
    sys.stderr.write(f"{word}: {word} before the run started\n")
    raise SystemExit(code) from None

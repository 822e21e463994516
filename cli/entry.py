"""The ``optrun`` console script and ``python -m optrun``: the CLI, imported with Ctrl-C in hand.

Importing the CLI (Typer, rich, pydantic) takes a few tenths of a second, and
Ctrl-C in that time would end the process with Python's traceback. This module
imports nothing heavy itself, so it can say "interrupted" instead, as the CLI
does once it runs (:func:`optrun_cli.errors.command_signals`).
"""

from __future__ import annotations

import signal
import sys


def main() -> None:
    """Imports the CLI and runs it on the process's arguments."""
    try:
        from optrun_cli.main import main as run
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the rest of a burst: the process is ending
        sys.stderr.write("interrupted: interrupted before the run started\n")
        raise SystemExit(130) from None
    run()

"""Writing a finished or stopped run whole: its last checkpoint, export and result.json.

The steps or iterations are done, so a signal now waits until the run is
written (then it is moot: the run is complete); a run a signal stopped is
written whole too, and a signal meanwhile (a burst of Ctrl-C) is moot as well. An error while writing (a
full disk, an export path that is taken) is recorded in result.json where the
disk allows and raised as :class:`~optrun.errors.RunFailed` (exit 1); the
checkpoints are whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from optrun.errors import RunFailed, Terminated
from optrun.runner.common import failure
from optrun.runner.interrupts import held

#: What to do after a failure writing a finished training run.
RESUME_WRITES_THE_REST = "The checkpoints are whole: --resume writes the rest."


def written_whole(
    write: Callable[[], Any], record_error: Callable[[str], Any], where: str, advice: str
) -> Any:
    """``write()``'s result, with signals held while it runs; an error is recorded by
    ``record_error(message)`` (best effort) and raised as ``RunFailed`` with ``advice``."""
    result = None
    try:
        with held():
            result = write()
    except (KeyboardInterrupt, Terminated):  # raised as the block ends: the run is written whole
        if result is None:
            raise
    except Exception as error:
        message = failure(error, where)
        with contextlib.suppress(Exception):  # the disk may refuse this too
            record_error(message)
        raise RunFailed(f"{message}. {advice}") from error
    return result


def written_while_stopping(write: Callable[[], Any]) -> None:
    """``write()`` for a run a signal stopped, with signals held; one that comes meanwhile is
    not raised (the run is stopping for one already). Errors of ``write`` propagate."""
    with contextlib.suppress(KeyboardInterrupt, Terminated), held():
        write()

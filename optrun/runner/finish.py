"""Writing a finished or stopped run whole: its last checkpoint, export and result.json.

The steps or iterations are done, so a signal now waits until the run is
written (then it is moot: the run is complete). A run a signal stopped, or
one that failed, is written whole too, and a signal meanwhile (a burst of
Ctrl-C) is moot as well: the run ends either way. An error while writing (a
full disk, an export path that is taken) is recorded in result.json where the
disk allows and raised as :class:`~optrun.errors.RunFailed` (exit 1); the
checkpoints are whole.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from optrun.errors import NonFiniteError, RunFailed, Terminated
from optrun.runner.common import failure
from optrun.runner.interrupts import held
from optrun.spec.run_layout import RESULT

#: What to do after a failure writing a finished training run.
RESUME_WRITES_THE_REST = "The checkpoints are whole: --resume writes the rest."
#: What to do after a failure writing an interrupted run.
RESUME_GOES_ON = "The checkpoints are whole: --resume goes on."


Advice = str | Callable[[], str]  # a callable says it as of the failure (see after_failed_write)


def after_failed_write(manager: Any, number: int, whole: str) -> Callable[[], str]:
    """The advice after a failed write, as of the failure: ``whole`` if the checkpoint of
    ``number`` was saved, else where ``--resume`` would start (an earlier checkpoint) or that
    nothing can be resumed. ``manager``: the run's ``tf.train.CheckpointManager``."""

    def advice() -> str:
        latest = manager.latest_checkpoint  # moves only once a save is whole
        if latest is not None and latest.rsplit("-", 1)[-1] == str(number):
            return whole
        if latest is not None:
            return f"The last whole checkpoint is {Path(latest).name}: --resume goes on from there."
        return "There is no whole checkpoint yet, so nothing can be resumed: fix the cause and run it again."

    return advice


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write the disk refused for lack of space (Python's or TensorFlow's)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return type(error).__name__ == "ResourceExhaustedError" and "No space left on device" in str(error)


def with_disk_advice(message: str, error: BaseException, manager: Any, number: int) -> str:
    """``message``, and for a full disk which checkpoint is whole (:func:`after_failed_write`)."""
    return (
        f"{message}. {after_failed_write(manager, number, RESUME_GOES_ON)()}" if disk_full(error) else message
    )


def best_effort(*writes: Callable[[], Any]) -> bool:
    """Runs each of ``writes`` (a failed run's record: the disk may refuse it too, and the run's
    own error is what to report); whether all of them succeeded."""
    done = True
    for write in writes:
        try:
            write()
        except Exception:  # noqa: BLE001 - reported as "could not be written", never instead of the error
            done = False
    return done


def written_whole(
    write: Callable[[], Any], record_error: Callable[[str], Any], where: str, advice: Advice
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
        best_effort(lambda: record_error(message))
        raise RunFailed(f"{message}. {_said(advice)}") from error
    return result


def _said(advice: Advice) -> str:
    return advice() if callable(advice) else advice


@contextlib.contextmanager
def signals_moot() -> Iterator[None]:
    """For writing a run that ends either way (a signal stopped it, or it failed): signals are
    held in the block and not raised after it. Errors of the block propagate."""
    with contextlib.suppress(KeyboardInterrupt, Terminated), held():
        yield


@contextlib.contextmanager
def stopped_run_written(where: str, advice: Advice) -> Iterator[None]:
    """:func:`signals_moot`, for a run a signal stopped: an error writing it is raised as
    ``RunFailed`` (exit 1) with ``advice``, not as the bare error."""
    try:
        with signals_moot():
            yield
    except Exception as error:
        raise RunFailed(f"{failure(error, where)}. {_said(advice)}") from error


def nonfinite_said(error: NonFiniteError, iteration: int, loss: float) -> str:
    """A minimize run's non-finite stop, in the run's terms: the checkpoint keeps ``iteration``
    (the last accepted one; 0, the start point) at ``loss``, not the point the library's own
    message names (the variables', which the run does not save)."""
    if not error.reason:
        return str(error)
    point = f"iteration {iteration}" if iteration else "the start point"
    return f"minimize stopped: {error.reason}. The checkpoint keeps {point} (loss {loss:.6g}). {error.advice}"


def recorded_failure(message: str, out: Path, written: bool = True) -> RunFailed:
    """The error of a failed run whose result.json in ``out`` records it (``--json`` shows it);
    ``written``: False when the record could not be written (a full disk)."""
    if not written:
        return RunFailed(f"{message} (result.json could not be written)")
    return RunFailed(f"{message} (result.json written to {out})", result_file=out / RESULT)

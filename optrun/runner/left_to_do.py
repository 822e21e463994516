"""What a resumed ``optrun minimize`` has left to do, from its checkpoint and its result.json.

::

    end      <=>  the checkpoint is at the budget exactly, but the run's end was never
                  written (no result.json, one that says interrupted or error, or one
                  older than the checkpoint: an earlier session's)
    nothing  <=>  otherwise, result.json says converged, or the checkpoint is at or past
                  the budget
    run      otherwise: the solver goes on from the checkpoint with what is left

A run whose end is left (a full disk while its export or result.json was
written, a kill or Ctrl-C after its last iteration) gets that end written,
from the checkpoint's iterate and without another iteration, as a run that
used its budget; a later ``--resume`` then has nothing to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from optrun.runner.outcome import CONVERGED, ERROR, INTERRUPTED

RUN, NOTHING, END = "run", "nothing", "end"


def left_to_do(
    resumed: bool, done: int, budget: int | None, before: dict[str, Any] | None, stale: bool = False
) -> str:
    """``RUN``, ``NOTHING`` or ``END`` (see the module).

    Args:
        resumed: whether this is a ``--resume``.
        done: the iterations the checkpoint holds.
        budget: the run's iteration budget (None: none).
        before: the run's result.json, or None.
        stale: ``before`` was written before the checkpoint (:func:`older_than`): an earlier
            session's, which does not say how this checkpoint's session ended.
    """
    if not resumed:
        return RUN
    status = None if before is None else before.get("status")
    unwritten = status in (None, INTERRUPTED, ERROR) or stale
    if budget is not None and done == budget and unwritten:
        return END
    if before is not None and (status == CONVERGED or (budget is not None and done >= budget)):
        return NOTHING
    return RUN


def nothing_note(
    before: dict[str, Any], done: int, key: str, budget: int | None, unit: str = "iteration"
) -> str:
    """What the reporter says of a resume with nothing to do."""
    if before.get("status") == CONVERGED:
        return (
            f"the run already converged at iteration {before.get('nit', done)}; nothing to do (--force "
            "runs it again from the start)"
        )
    return (
        f"the run already ran {done} {unit}s ({key}: {budget}); nothing to do "
        f"(raise {key} above {done} to go on)"
    )


def budget_used(x: np.ndarray, loss: float, done: int, unit: str = "iteration") -> Any:
    """The solver's result for a run whose end is left: its checkpoint's iterate, no iteration more."""
    import scipy.optimize

    message = f"{unit} limit reached: the budget of {done} {unit}s was used before the run's end was written"
    return scipy.optimize.OptimizeResult(
        x=np.asarray(x), fun=loss, success=False, status=None, message=message, nit=0, nfev=1
    )


def last_logged(path: Path) -> int | None:
    """The step of the metrics file's last whole line; None: no such line (or no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            return int(record["step"])
    return None


def older_than(path: Path, checkpoint: str | None) -> bool:
    """Whether the file ``path`` was last written before the checkpoint ``checkpoint`` (a prefix,
    as ``CheckpointManager.latest_checkpoint`` gives it); False when either is missing."""
    try:
        return (
            checkpoint is not None
            and path.stat().st_mtime_ns < Path(checkpoint + ".index").stat().st_mtime_ns
        )
    except OSError:
        return False

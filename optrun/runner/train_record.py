"""How a training run's end is recorded: its result.json, and whether an earlier session finished it."""

from __future__ import annotations

import math
import time
from typing import Any, TypeGuard

from optrun.runner.common import write_result
from optrun.runner.warning_log import WarningLog


def loss_at(record: dict[str, Any] | None, step: int) -> float:
    """The loss a metrics line logged at ``step``; NaN if it is not of that step."""
    loss = record.get("loss") if record is not None and record.get("step") == step else None
    return float(loss) if isinstance(loss, (int, float, str)) else math.nan


def final_loss_at(result: dict[str, Any] | None, step: int) -> float:
    """The loss a result.json written at ``step`` (an interrupted session's) gives; NaN if none."""
    loss = result.get("final_loss") if result is not None and result.get("steps") == step else None
    return float(loss) if isinstance(loss, (int, float, str)) else math.nan


def finished(result: dict[str, Any] | None, step: int) -> TypeGuard[dict[str, Any]]:
    """Whether ``result`` says the run completed at ``step`` (not an earlier session's end)."""
    return result is not None and result.get("status") == "completed" and result.get("steps") == step


def nothing_to_do(reporter: Any, max_steps: int | None, step: int) -> None:
    more = f"train.max_steps above {step}" if max_steps else "train.epochs"
    reporter.note(f"the run already finished at step {step}; nothing to do (raise {more} to go on)")


def write_train_result(
    out: Any,
    caught: WarningLog,
    scale: dict[str, Any],
    status: str,
    step: int,
    loss: float,
    skipped: int,
    started: float,
    exported: str | None,
    error: str | None = None,
    averaged: str | None = None,
    no_export: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "kind": "train",
        "status": status,
        "success": status == "completed",
        "steps": step,
        "final_loss": loss if math.isfinite(loss) else str(loss),
        "skipped_nonfinite": skipped,
        "time_s": round(time.perf_counter() - started, 3),
        "export": exported,
        **({"export_skipped": no_export} if no_export else {}),
        "averaged_checkpoint": averaged,
        **scale,
    }
    if error is not None:
        result["error"] = error
    if message is not None:
        result["message"] = message
    return write_result(out, result, caught)

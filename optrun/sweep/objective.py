"""What a trial scores, and a trial as one record (for the CLI, ``optrun runs`` and ``show``).

The objective is read from the trial's own files, as ``optrun show`` would read them: a
key of result.json (``final_loss``, ``fun``, ``steps``, ``time_s``, ...), else the last
value of that metric in metrics.jsonl (``loss``, ``constraint_violation``).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

#: A trial's state in a sweep's words: Optuna's, with ``interrupted`` for a RUNNING trial whose
#: sweep stopped (``--resume`` continues it) and ``failed`` for FAIL.
STATES = ("complete", "pruned", "failed", "running", "interrupted", "waiting")


def objective_value(result: dict[str, Any] | None, run_dir: Path, name: str) -> float | None:
    """The trial's score: result.json's ``name``, else the last logged value of metric ``name``;
    None when neither has it. A non-finite value (``"nan"`` in result.json) is returned as is."""
    value = (result or {}).get(name)
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            return float(value)
    metrics = (result or {}).get("metrics_file") or "metrics.jsonl"
    last = None
    with contextlib.suppress(OSError):
        for line in (run_dir / str(metrics)).read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and name in record:
                    last = record[name]
    with contextlib.suppress(TypeError, ValueError):
        return None if last is None else float(last)
    return None


@dataclass
class TrialRecord:
    """One trial: its number, state, score and values, and its run directory.

    ``status`` is the run's own word (result.json's ``status``: ``completed``,
    ``pruned``, ``diverged``, ...), ``message`` why it failed, was pruned or interrupted,
    ``last_step`` the last step whose loss it reported, ``seconds`` how long it ran.
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    run_dir: str | None = None
    status: str | None = None
    message: str | None = None
    seconds: float | None = None
    last_step: int | None = None
    last_value: float | None = None

    def data(self) -> dict[str, Any]:
        """The record as plain data (``--json``)."""
        return asdict(self)


def state_of(frozen: FrozenTrial) -> str:
    """The trial's state in :data:`STATES`."""
    name = frozen.state.name.lower()
    if name == "fail":
        return "failed"
    if name == "running" and frozen.user_attrs.get("interrupted"):
        return "interrupted"
    return name


def record_of(frozen: FrozenTrial) -> TrialRecord:
    """The record of an Optuna trial, from its state, values and the attributes the sweep set."""
    attrs = frozen.user_attrs
    steps = sorted(frozen.intermediate_values)
    seconds = None
    if frozen.datetime_start is not None and frozen.datetime_complete is not None:
        seconds = round((frozen.datetime_complete - frozen.datetime_start).total_seconds(), 3)
    value = frozen.value if frozen.state.name == "COMPLETE" else None
    message = attrs.get("message") or (
        attrs.get("interrupted") if state_of(frozen) == "interrupted" else None
    )
    return TrialRecord(
        number=frozen.number,
        state=state_of(frozen),
        value=value if value is None or math.isfinite(value) else None,
        params=dict(frozen.params),
        run_dir=attrs.get("run_dir"),
        status=attrs.get("status"),
        message=message,
        seconds=seconds,
        last_step=steps[-1] if steps else None,
        last_value=frozen.intermediate_values[steps[-1]] if steps else None,
    )


def ranked(records: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """Best first: completed trials by their score, then pruned ones by their last reported
    loss, then those running or interrupted, then the failed; ties by trial number."""
    sign = -1.0 if direction == "maximize" else 1.0
    order = {"complete": 0, "pruned": 1, "running": 2, "interrupted": 2, "waiting": 3, "failed": 4}

    def key(record: TrialRecord) -> tuple[int, float, int]:
        score = record.value if record.state == "complete" else record.last_value
        finite = score is not None and math.isfinite(score)
        return (
            order.get(record.state, 5),
            sign * score if finite and score is not None else math.inf,
            record.number,
        )

    return sorted(records, key=key)

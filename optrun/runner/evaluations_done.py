"""The evaluations a minimize run made before each of its checkpoints, kept beside them.

A resumed run's ``maxiter`` is the whole run's budget. For most methods it
counts iterations, which the checkpoint's number gives; for TNC and COBYLA it
counts evaluations (TNC's is passed on as ``maxfun``), which only the session
that wrote the checkpoint knew. So each checkpoint's count is kept in
``checkpoints/evaluations.json`` (``{"12": 15}``: 15 evaluations up to iteration
12), written whole before the checkpoint itself. A run whose file lacks the
checkpoint's count (one written by an earlier optrun) is taken to have made one
evaluation per iteration, the fewest it can have made.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from optrun.runner.reporting import write_json_atomic

FILE = "evaluations.json"


def counts_evaluations(method: str) -> bool:
    """Whether the spec's ``maxiter`` limits ``method``'s evaluations rather than its iterations:
    COBYLA counts evaluations with it, and TNC gets it as ``maxfun``."""
    return method.lower() in ("tnc", "cobyla")


def evaluations_before(checkpoints: Path, iteration: int) -> int:
    """The evaluations the run made up to the checkpoint of ``iteration`` (0 for none)."""
    found = _read(checkpoints).get(str(iteration))
    return found if isinstance(found, int) and found >= iteration else iteration


def note(checkpoints: Path, iteration: int, evaluations: int) -> None:
    """Keeps the count of the checkpoint about to be written at ``iteration``; only the last
    few iterations' counts stay (rotated-out checkpoints do not need theirs)."""
    table = _read(checkpoints)
    table[str(iteration)] = evaluations
    kept = sorted(table, key=int)[-64:]
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_json_atomic(checkpoints / FILE, {k: table[k] for k in kept})


def _read(checkpoints: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        found = json.loads((checkpoints / FILE).read_text(encoding="utf-8"))
        if isinstance(found, dict):
            return found
    return {}

"""Listing run directories (``optrun runs``): each run under a folder, summarized in one line.

:func:`list_runs` finds the run directories below a folder (by their marker,
up to :data:`MAX_DEPTH` levels) and summarizes each, newest first. Like
:mod:`optrun.runs.reading`, it only reads. A run whose files are damaged gets
status ``unreadable`` (where :func:`optrun.runs.reading.read_run` raises), so
one such run does not hide the others.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from optrun.errors import RunError
from optrun.runner.rundir import MARKER, is_locked, read_marker
from optrun.runs.reading import metrics_file, read_config, read_result, status_of

#: How deep :func:`list_runs` looks for run directories below its folder.
MAX_DEPTH = 4


def _scalar(value: Any) -> Any:
    """A number, or the 'nan'/'inf' text result.json holds for one; anything else is None."""
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _last_record(path: Path) -> dict[str, Any] | None:
    """The last whole record of a metrics file, reading only its end (for a run without result.json)."""
    try:
        if not path.is_file():  # missing, or a pipe that would block the read
            return None
        with path.open("rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - 65536))
            lines = stream.read().splitlines()
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                return record
    return None


def summarize(out: Path) -> dict[str, Any]:
    """One line of ``optrun runs``: name, kind, status, steps, final loss, wall time.

    A run whose files are damaged gets status ``unreadable`` and its ``error``;
    it does not hide the others.
    """
    marker = read_marker(out) or {}
    path = out / "result.json"
    entry: dict[str, Any] = {
        "run_dir": str(out),
        "name": out.name,
        "kind": marker["kind"] if isinstance(marker.get("kind"), str) else "unknown",
        "status": "unreadable",
        "steps": None,
        "final_loss": None,
        "wall_time_s": None,
        "modified": _mtime(path) or _mtime(out / MARKER),
        "error": None,
    }
    try:
        result = read_result(out)
        _, spec = read_config(out)
    except RunError as error:
        entry["error"] = str(error)
        return entry
    if spec is not None and isinstance(spec.get("name"), str):
        entry["name"] = spec["name"]
    entry["status"] = status_of(result, is_locked(out))
    if result is not None:
        train = result.get("kind", entry["kind"]) == "train"
        entry["steps"] = _scalar(result.get("steps" if train else "nit"))
        entry["final_loss"] = _scalar(result.get("final_loss" if train else "fun"))
        entry["wall_time_s"] = _scalar(result.get("time_s"))
        entry["error"] = result.get("error") if isinstance(result.get("error"), str) else None
    else:  # running or killed: how far it got, from the metrics file's last line
        last = _last_record(out / metrics_file(spec)) or {}
        entry["steps"] = last.get("step")
        entry["final_loss"] = _scalar(last.get("loss"))
        entry["wall_time_s"] = _scalar(last.get("wall_time"))
    return entry


def find_runs(root: Path) -> list[Path]:
    """The run directories at or below ``root`` (up to :data:`MAX_DEPTH` levels; links not followed)."""
    found: list[Path] = []
    base = len(root.parts)
    for folder, subfolders, _ in os.walk(root, followlinks=False):
        here = Path(folder)
        if read_marker(here) is not None:
            found.append(here)
            subfolders.clear()  # a run's own folders (checkpoints, export) hold no runs
        elif len(here.parts) - base >= MAX_DEPTH:
            subfolders.clear()
        else:
            subfolders.sort()
    return found


def list_runs(root: Path) -> list[dict[str, Any]]:
    """:func:`summarize` for each run directory under ``root``, newest first.

    Newest means the latest result.json (the marker's time for a run without one).

    Raises:
        RunError: ``root`` is missing or not a directory.
    """
    if not root.exists():
        raise RunError(f"{root} does not exist; pass the folder that holds your runs (default: runs).")
    if not root.is_dir():
        raise RunError(f"{root} is a file, not a folder of runs; pass the folder that holds them.")
    entries = [summarize(path) for path in find_runs(root)]
    entries.sort(key=lambda entry: (entry["modified"], entry["run_dir"]), reverse=True)
    return entries

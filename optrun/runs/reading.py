"""Reading run directories back: what a run left behind, as plain data.

:func:`read_run` reads one run directory (``optrun show``); listing those under
a folder (``optrun runs``) is :mod:`optrun.runs.listing`, which reads each run
with the functions here. Both only read: no lock is taken for longer than a
probe, nothing is written, and TensorFlow is never imported, so they answer at once.

A run's **status** is one of :data:`STATUSES`:

* ``running``: a process holds the run directory's lock (a run or a ``--resume``);
* ``incomplete``: no ``result.json`` (the process was killed, or failed before its first result);
* ``interrupted``: ``result.json`` says the run was stopped by Ctrl-C or SIGTERM;
* ``budget_reached``: minimize used its ``maxiter`` / ``maxfun`` unconverged (exit 0, like train);
* ``pruned``: a sweep's pruner stopped the training trial early (``result.json``'s ``message`` says why);
* ``succeeded`` / ``failed``: ``result.json``'s ``success``; its ``status`` says more (for minimize, see
  :mod:`optrun.runner.outcome`; a run from before those words holds scipy's integer code there).

:func:`optrun.runs.listing.list_runs` adds ``unreadable`` for a run whose files are damaged
(where :func:`read_run` raises), so one such run does not hide the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optrun.errors import RunError
from optrun.runner.reporting import read_metrics
from optrun.runner.rundir import KIND_MARK, MARKER, is_locked, read_marker

STATUSES = ("succeeded", "budget_reached", "pruned", "failed", "interrupted", "running", "incomplete")
#: config.yaml and result.json larger than this are not a run's (a guard against reading anything huge).
MAX_BYTES = 64 << 20


def status_of(result: dict[str, Any] | None, locked: bool) -> str:
    """The run's status (see the module docstring) from its result and its lock."""
    if locked:
        return "running"
    if result is None:
        return "incomplete"
    if result.get("status") in ("interrupted", "budget_reached", "pruned"):
        return str(result["status"])
    return "succeeded" if result.get("success") is True else "failed"


def _text(path: Path, what: str) -> str | None:
    """The file's text, None when it does not exist; RunError when it cannot be read."""
    try:
        if path.exists() and not path.is_file():  # a pipe would block the read forever
            raise RunError(f"{path}: the {what} is not a regular file; this is not optrun's file.")
        if path.stat().st_size > MAX_BYTES:
            raise RunError(f"{path}: {what} is larger than {MAX_BYTES >> 20} MiB; this is not optrun's file.")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise RunError(f"{path}: cannot read the {what}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise RunError(f"{path}: the {what} is not UTF-8 text; the file is damaged.") from None


def read_result(out: Path) -> dict[str, Any] | None:
    """``result.json``, or None when the run has not written one.

    Raises:
        RunError: it cannot be read or is not a JSON object.
    """
    path = out / "result.json"
    text = _text(path, "result")
    if text is None:
        return None
    try:
        result = json.loads(text)
    except ValueError as error:
        raise RunError(
            f"{path} is not valid JSON ({error}); optrun writes it whole, so something else changed it. "
            "Restore it, or rerun (--resume or --force)."
        ) from None
    if not isinstance(result, dict):
        raise RunError(f"{path} holds a {type(result).__name__}, not a JSON object; the file is damaged.")
    return result


def read_config(out: Path) -> tuple[str | None, dict[str, Any] | None]:
    """``config.yaml``: the kind from its first line, and the resolved spec (None, None when missing).

    Raises:
        RunError: it cannot be read or is not a YAML mapping.
    """
    from optrun.spec.yaml_lines import load_yaml

    path = out / "config.yaml"
    text = _text(path, "resolved spec")
    if text is None:
        return None, None
    first = text.split("\n", 1)[0]
    kind = first.removeprefix(KIND_MARK).strip() if first.startswith(KIND_MARK) else None
    try:
        spec = load_yaml(text)
    except Exception as error:  # noqa: BLE001 - yaml's errors and the reader's limits, alike
        first_error = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunError(f"{path} is not valid YAML ({first_error}); the file is damaged.") from None
    if not isinstance(spec, dict):
        raise RunError(f"{path} holds no spec (a YAML mapping); the file is damaged.")
    return kind, spec


def _section(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key)
    return value if isinstance(value, dict) else {}


def settings(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The key settings of a resolved spec, flat: what a reader of the run wants first."""
    loss = _section(spec, "loss")
    out: dict[str, Any] = {
        "name": spec.get("name"),
        "kind": kind,
        "seed": spec.get("seed"),
        "model.builder": _section(spec, "model").get("builder"),
        "loss": loss.get("name") if loss.get("kind") == "keras" else loss.get("ref"),
    }
    if kind == "train":
        train = _section(spec, "train")
        optimizer = _section(train, "optimizer")
        wrappers = optimizer.get("wrappers") or []
        out.update(
            {
                "optimizer": optimizer.get("name"),
                "optimizer.args": optimizer.get("args") or {},
                "wrappers": [w.get("kind") for w in wrappers if isinstance(w, dict)],
                "max_steps": train.get("max_steps"),
                "epochs": train.get("epochs"),
            }
        )
    elif kind == "minimize":
        minimize = _section(spec, "minimize")
        constraints = _section(minimize, "constraints")
        out.update(
            {
                "method": minimize.get("method"),
                "options": minimize.get("options") or {},
                "tol": minimize.get("tol"),
                "equalities": len(constraints.get("equalities") or []),
                "inequalities": len(constraints.get("inequalities") or []),
                "bounds": constraints.get("bounds") or {},
            }
        )
    return out


def metrics_file(spec: dict[str, Any] | None) -> str:
    """The spec's logging.metrics_file when it is a plain file name, else the default."""
    name = _section(spec or {}, "logging").get("metrics_file")
    if isinstance(name, str) and name not in {"", ".", ".."} and "/" not in name and "\\" not in name:
        return name
    return "metrics.jsonl"


def _require_run(out: Path) -> dict[str, Any]:
    if not out.exists():
        raise RunError(f"{out} does not exist; pass a run directory (optrun runs lists them).")
    if not out.is_dir():
        raise RunError(f"{out} is a file, not a run directory; pass a run directory (optrun runs lists them)")
    marker = read_marker(out)
    if marker is None:
        raise RunError(
            f"{out} is not an optrun run directory (it has no {MARKER} marker); pass a run directory, "
            f"or list those below it with: optrun runs {out}"
        )
    return marker


def read_run(out: Path) -> dict[str, Any]:
    """Everything ``optrun show`` reports about one run directory, as plain data.

    Returns:
        ``{"run_dir", "name", "kind", "status", "result", "settings", "spec", "metrics"}``:
        ``result`` is result.json (None before the run writes it), ``spec`` the
        resolved spec of its config.yaml (None when the run stopped before
        writing it) and ``settings`` its key settings (see :func:`settings`),
        ``metrics`` what :func:`optrun.runner.reporting.read_metrics` returns.

    Raises:
        RunError: ``out`` is missing or not a run directory, or one of its
            files is damaged.
    """
    marker = _require_run(out)
    locked = is_locked(out)
    result = read_result(out)
    config_kind, spec = read_config(out)
    kind = str(marker.get("kind") or config_kind or (result or {}).get("kind") or "unknown")
    found = settings(kind, spec) if spec is not None else {}
    if kind == "minimize" and found.get("method") is None and (result or {}).get("method"):
        found["method"] = result["method"]  # type: ignore[index] # the default the run chose
    return {
        "run_dir": str(out),
        "name": (spec or {}).get("name") or out.name,
        "kind": kind,
        "status": status_of(result, locked),
        "result": result,
        "settings": found,
        "spec": spec,
        "metrics": read_metrics(out / metrics_file(spec)),
    }

"""The sweep directory: what ``optrun sweep`` writes, and the locks that let sweeps share it.

::

    runs/<name>-sweep/
      .optrun-sweep        the marker: study, storage, objective, direction, kind, space, base spec
      study.journal        the default storage (Optuna's journal file; several processes share it)
      trial-0007/          one ordinary run directory per trial (``optrun show`` reads it as is)
      logs/trial-0007.log  what the trial's process printed (user code, TensorFlow)
      .workers/<id>.lock   held (``flock``) by each live ``optrun sweep`` process

A trial left ``RUNNING`` in the study by a sweep process that no longer holds its
worker lock (it was interrupted, or killed) is an orphan: ``--resume`` runs it again in
place, continuing its run directory from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optrun.errors import RunError
from optrun.runner.rundir import lock_held

MARKER = ".optrun-sweep"
DEFAULT_STORAGE = "study.journal"
WORKERS = ".workers"
LOGS = "logs"


def trial_dir(out: Path, number: int) -> Path:
    """The run directory of trial ``number``: ``trial-0007``."""
    return out / f"trial-{number:04d}"


def own_trial_dir(out: Path, recorded: str | None, own_storage: bool) -> Path | None:
    """Where the trial whose run directory was recorded as ``recorded`` has it now, or None when
    the trial is another sweep directory's.

    With the sweep's own journal (``own_storage``) a trial in it is this folder's, wherever the
    folder was moved or copied since (its run directory found by name), unless it ran in a
    folder that joined that journal with ``--storage``. With a storage shared by several
    folders, the recorded path is what tells them apart.
    """
    if not recorded:
        return None
    path = Path(recorded)
    if path.parent == out.resolve():
        return path
    if not own_storage or _joined(path.parent):
        return None
    return out.resolve() / path.name


def _joined(folder: Path) -> bool:
    """Whether ``folder`` is a sweep directory that ran its trials in another folder's journal
    (``--storage``): such a folder's trials are its own, not those of the folder it joined."""
    try:
        return is_sweep(folder) and not own_journal(read_sweep_marker(folder))
    except (RunError, OSError):
        return False


def log_file(out: Path, number: int) -> Path:
    """Where the trial's process output goes."""
    return out / LOGS / f"trial-{number:04d}.log"


def is_sweep(path: Path) -> bool:
    """Whether ``path`` is a sweep directory (it holds the marker)."""
    return (path / MARKER).is_file()


def read_sweep_marker(out: Path) -> dict[str, Any]:
    """The sweep's marker.

    Raises:
        RunError: ``out`` is missing, or not a sweep directory, or its marker is damaged.
    """
    if not out.is_dir():
        raise RunError(f"{out} does not exist or is not a folder; pass a sweep directory.")
    try:
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{out} is not a sweep directory (it has no {MARKER} marker).") from None
    except (OSError, ValueError) as error:
        raise RunError(f"{out / MARKER} cannot be read ({error}); the file is damaged.") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("study"), str):
        raise RunError(f"{out / MARKER} holds no sweep marker; the file is damaged.")
    texts = ("storage", "spec", "kind", "objective", "direction")
    bad = [k for k in texts if marker.get(k) is not None and not isinstance(marker[k], str)]
    params = marker.get("params")
    if params is not None and not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
        bad.append("params")
    if bad:
        raise RunError(f"{out / MARKER}: {', '.join(bad)} of the wrong type; the file is damaged.")
    return marker


def own_journal(marker: dict[str, Any]) -> bool:
    """Whether the sweep the marker is of keeps its study in its own journal file (no ``--storage``)."""
    return marker.get("storage") in (None, "")


def storage_of(out: Path, marker: dict[str, Any]) -> str:
    """The storage the marker names: the default journal file inside ``out``, or the URL given."""
    return str(out / DEFAULT_STORAGE) if own_journal(marker) else str(marker["storage"])


def _refuse_unsafe(out: Path) -> None:
    resolved = out.resolve()
    for where, why in ((Path.cwd(), "the current directory"), (Path.home(), "your home directory")):
        place = where.resolve()
        if resolved == place or resolved in place.parents:
            raise RunError(
                f"--out {out} is {why} or holds it; optrun never uses or removes it as a sweep directory. "
                "Choose a new folder, e.g. --out runs/NAME-sweep."
            )
    if out.is_symlink():
        raise RunError(f"--out {out} is a symbolic link; pass the real directory, or another --out.")


def claim(
    out: Path, marker: dict[str, Any], *, resume: bool, force: bool, joining: bool, write: bool = True
) -> None:
    """Creates (or takes up again) the sweep directory and writes its marker.

    Args:
        out: the sweep directory.
        marker: what the marker records (``study``, ``storage``, ``objective``, ...).
        resume: continue the sweep in ``out``.
        force: remove a sweep directory already there (never anything else) and start afresh.
        joining: the storage was given (``--storage``): a sweep directory of the same study may
            already be there, made by another worker of that study.
        write: False only checks that the folder can be claimed, writing and removing nothing.

    Raises:
        RunError: the folder exists without --resume or --force (and is not the same study's,
            when joining), holds files optrun did not write, is in use, or is missing on --resume.
    """
    if resume and force:
        raise RunError("--resume and --force contradict each other; pass one of them.")
    _refuse_unsafe(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a directory; choose another --out.")
    there = out.is_dir() and any(out.iterdir())
    if resume and not is_sweep(out):
        raise RunError(f"--resume: {out} holds no sweep to resume; run without --resume.")
    if there and not is_sweep(out):
        raise RunError(
            f"{out} exists and is not a sweep directory (no {MARKER}); optrun writes and --force removes "
            "only its own. Choose another --out."
        )
    if there and not resume:
        old = read_sweep_marker(out)
        same = old.get("study") == marker.get("study") and old.get("storage") == marker.get("storage")
        if force:
            busy = live_workers(out)
            if busy:
                raise RunError(f"--force: sweep directory {out} is in use by {busy} sweep process(es).")
            if write:
                shutil.rmtree(out)
        elif not (joining and same):
            raise RunError(
                f"sweep directory {out} already exists; pass --resume to continue it, --force to start "
                "afresh, or --out to choose another."
            )
    if resume:
        old = read_sweep_marker(out)
        changed = [
            key
            for key in ("study", "storage", "kind", "objective", "direction", "params", "base")
            if old.get(key) != marker.get(key) and (key != "base" or "base" in old)  # older markers lack it
        ]
        if changed:
            said = [
                "the spec its trials start from (the file, --set or --seed)"
                if k == "base"
                else f"{k}: {old.get(k)!r} -> {marker.get(k)!r}"
                for k in changed
            ]
            raise RunError(
                f"--resume: the sweep in {out} differs at {', '.join(changed)} ({'; '.join(said)}); "
                "resume with the same spec and flags, or start a new sweep with --out."
            )
    if not write:
        return
    try:
        (out / WORKERS).mkdir(parents=True, exist_ok=True)
        (out / LOGS).mkdir(exist_ok=True)
    except OSError as error:
        raise RunError(f"--out {out}: cannot create the sweep directory: {error.strerror or error}") from None
    if not is_sweep(out):
        tmp = out / f"{MARKER}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out / MARKER)


def worker_alive(out: Path, worker: str | None) -> bool:
    """Whether the sweep process ``worker`` still holds its lock in ``out``."""
    return bool(worker) and lock_held(out / WORKERS / f"{worker}.lock")


def live_workers(out: Path) -> int:
    """How many sweep processes hold a worker lock in ``out``."""
    folder = out / WORKERS
    return sum(lock_held(path) for path in folder.glob("*.lock")) if folder.is_dir() else 0


@contextlib.contextmanager
def worker_lock(out: Path) -> Iterator[str]:
    """Holds a worker lock in ``out`` for the block; yields the worker's id (``host-pid-xxxx``)."""
    worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path = out / WORKERS / f"{worker}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield worker
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def ask_lock(path: Path) -> Iterator[None]:
    """Serializes the budget check and the ask of every sweep process sharing ``path``'s storage
    on this machine, so that ``--trials N`` means N trials, not one more per process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

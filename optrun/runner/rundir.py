"""Run directories: what optrun may create, overwrite and lock, and nothing else.

* **Marker.** Every run directory optrun creates holds ``.optrun-run``, a
  small JSON file written at creation: what made it, a run id and the spec's
  hash. ``--force`` removes only a directory that carries it, never a
  symbolic link, and nothing outside it; ``.``, the home directory, the
  spec's own folder (and any folder holding those) are never taken.
* **Claim.** A new directory is created with ``mkdir`` (no ``exist_ok``): of
  two starts, one creates it.
* **Lock.** The run holds an exclusive ``flock`` on ``.optrun-lock`` inside
  the directory for its whole lifetime, ``--resume`` and ``--force``
  included; a second process on the same directory is refused with "in use
  by pid N". The OS drops the lock when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optrun.errors import RunError
from optrun.runner.out_target import check_target
from optrun.spec.run_layout import LOCK, MARKER

#: First line of a run's config.yaml (a comment, so the file stays a valid spec).
KIND_MARK = "# optrun run:"


def spec_hash(text: str) -> str:
    """The hash recorded in the marker: sha256 of the resolved spec."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_pid(lock_path: Path) -> str:
    with contextlib.suppress(OSError):
        return lock_path.read_text(encoding="utf-8").strip() or "?"
    return "?"


@dataclass
class _Taking:
    """How far one start got in claiming its directory: what to undo if it stops there."""

    made: bool = False  # this start created the directory
    fd: int = -1  # the lock file's fd: held once _lock returns
    fresh_lock: bool = False  # this start created the lock file
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # of the marker this start writes


def _lock(out: Path, taking: _Taking) -> None:
    """Takes the directory's lock into ``taking.fd``, or raises RunError naming the process that
    holds it. The fd is kept before the lock is asked for: a signal that cuts in leaves it to
    :func:`_undo`, never held by an fd nobody knows."""
    path = out / LOCK
    try:
        fd = taking.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunError(f"--out {out}: cannot create its lock file: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        taking.fd = -1
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunError(
                f"run directory {out} is in use by pid {_read_pid(path)}; wait for that run to end, "
                "or choose another --out."
            ) from None
        raise RunError(f"--out {out}: cannot lock it: {error.strerror}") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as error:  # a full disk: the lock is ours, and its file goes again
        path.unlink(missing_ok=True)
        taking.fd = -1
        os.close(fd)
        raise RunError(f"--out {out}: cannot write its lock file: {error.strerror}") from None


def _write_marker(out: Path, kind: str, digest: str, run_id: str) -> str:
    """Writes a new marker with the run id ``run_id``; returns it."""
    from optrun.version import __version__

    marker = {"made_by": f"optrun {__version__}", "kind": kind, "run_id": run_id, "spec_hash": digest}
    tmp = out / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker) + "\n", encoding="utf-8")
    os.replace(tmp, out / MARKER)
    return run_id


def read_marker(out: Path) -> dict[str, Any] | None:
    """The marker of ``out``, or None when optrun did not make it."""
    try:
        if not (out / MARKER).is_file():  # missing, or a pipe that would block the read
            return None
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (
        marker if isinstance(marker, dict) and str(marker.get("made_by", "")).startswith("optrun") else None
    )


def is_locked(out: Path) -> bool:
    """Whether a process holds ``out``'s run lock (a run, or a --resume, in progress)."""
    return lock_held(out / LOCK)


def lock_held(path: Path) -> bool:
    """Whether a process holds an exclusive ``flock`` on the file ``path``.

    Probed with a shared, non-blocking flock on a read-only descriptor: the
    lock file is never created, and a held probe lasts microseconds.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no process ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _empty(out: Path, *ignoring: str) -> bool:
    return not [p for p in out.iterdir() if p.name not in ignoring]


def _clear(out: Path) -> None:
    """Removes what a run wrote in ``out``, keeping the held lock file."""
    for entry in out.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _refuse_foreign(out: Path) -> None:
    """Raises RunError when ``out`` holds files but no marker (optrun did not make it)."""
    if read_marker(out) is None and not _empty(out, LOCK, MARKER + ".tmp"):
        raise RunError(
            f"{out} exists and was not made by optrun (it has no {MARKER} marker); optrun writes and "
            "--force removes only its own run directories. Choose another --out, or empty it yourself."
        )


@dataclass(frozen=True)
class Claim:
    """A run directory as one start claimed it.

    Attributes:
        home: the directory, resolved when it was claimed (user code may ``chdir`` later).
        run_id: the run id of its marker: the one this start wrote, or, resumed, the run's.
        made: whether this start created the directory.
    """

    home: Path
    run_id: str | None
    made: bool


@contextlib.contextmanager
def claimed(
    out: Path, kind: str, spec_text: str, spec_source: str, resume: bool, force: bool
) -> Iterator[Claim]:
    """Claims and locks ``out`` for one run; the lock is released when the block ends.

    An error or a signal (Ctrl-C) before the block starts leaves nothing of this start: a
    directory it made goes again, a lock file it made in a directory it found goes too.

    Raises:
        RunError: the directory is a link, protected, in use, not made by optrun
            (with ``--force``), already there (without ``--force`` or ``--resume``),
            or missing (with ``--resume``); or it cannot be created.
    """
    if resume and force:
        raise RunError("--resume and --force contradict each other; pass one of them.")
    check_target(out, spec_source)
    taking = _Taking()
    try:
        claim = Claim(out.resolve(), _claim(out, kind, spec_text, resume, force, taking), taking.made)
    except BaseException:
        _undo(out, taking)
        raise
    try:
        yield claim
    finally:
        os.close(taking.fd)  # releases the lock


def _undo(out: Path, taking: _Taking) -> None:
    """Removes what a start that stopped while claiming ``out`` wrote there, and the folder
    if this start made it and nothing else is in it now (a rival start may have run in it).

    A signal may have cut :func:`_lock` short after it made the lock file, or held the lock
    before its fd was kept: the lock is taken again here, and only a start that gets it
    touches the folder.
    """
    fd = taking.fd
    with contextlib.suppress(OSError):
        if fd < 0 and taking.made:
            fd = os.open(out / LOCK, os.O_RDWR)
        if fd >= 0:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises when a rival start holds it
            if (read_marker(out) or {}).get("run_id") == taking.run_id:
                (out / MARKER).unlink()
            (out / (MARKER + ".tmp")).unlink(missing_ok=True)
            if taking.fresh_lock or (taking.made and _empty(out, LOCK)):
                (out / LOCK).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        if taking.made:
            out.rmdir()  # only if empty
    if fd >= 0:
        os.close(fd)


def _claim(out: Path, kind: str, spec_text: str, resume: bool, force: bool, taking: _Taking) -> str | None:
    """:func:`claimed`'s work up to the lock held and the marker written; the run id."""
    if not out.exists() and not resume:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            blocker = next(
                (p for p in (out.parent, *out.parent.parents) if p.exists() and not p.is_dir()), None
            )
            why = f"{blocker} is a file, not a folder" if blocker else (error.strerror or str(error))
            raise RunError(f"--out {out}: cannot create the run directory: {why}") from None
        try:
            os.mkdir(out)  # a signal just after it leaves an empty folder, which the next start takes
            taking.made = True
        except FileExistsError:
            pass  # another start got there first: the checks below refuse or share nothing
        except OSError as error:
            hint = "" if error.errno == errno.ENAMETOOLONG else f" (is {out.parent} writable?)"
            raise RunError(
                f"--out {str(out)[:120]}: cannot create the run directory: {error.strerror}{hint}"
            ) from None
    if not out.is_dir():
        raise RunError(
            f"--resume: {out} does not exist, so it has no checkpoints to resume from; run without --resume."
        )
    # A start that holds the lock may be between taking it and writing the
    # marker: a locked directory is optrun's, and _lock names its process.
    if not is_locked(out):
        _refuse_foreign(out)
    taking.fresh_lock = not (out / LOCK).exists()
    _lock(out, taking)
    _refuse_foreign(out)  # again, under the lock
    marker = read_marker(out)
    if resume:
        if marker is None:
            raise RunError(f"--resume: {out} holds no optrun run; run without --resume.")
        run_id = marker.get("run_id")
        return str(run_id) if run_id else None
    if marker is not None or not _empty(out, LOCK, MARKER + ".tmp"):
        if not force:
            taking.fresh_lock = False  # the lock file of a run that is there stays
            raise RunError(
                f"run directory {out} already exists; pass --force to overwrite it, --resume to "
                "continue it, or --out to choose another."
            )
        _clear(out)
    try:
        return _write_marker(out, kind, spec_hash(spec_text), taking.run_id)
    except OSError as error:  # a full disk, say: nothing of this start stays behind
        full = "; free some space on its disk" if error.errno == errno.ENOSPC else ""
        raise RunError(f"--out {out}: cannot write in the run directory: {error.strerror}{full}") from None

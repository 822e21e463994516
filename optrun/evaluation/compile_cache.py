"""XLA's persistent compilation cache: a compiled evaluation is reused by the next process.

The first ``minimize`` of a process traces the loss and compiles it with XLA
before it evaluates anything; on the Burgers PINN of ``make bench`` that is
about 2-3 s on a fast CPU, and more on a slow one. TensorFlow can keep XLA's
compiled programs on disk (``--tf_xla_persistent_cache_directory`` in
``TF_XLA_FLAGS``) and load them in later processes, so a second run of the
same spec, or its ``--resume``, skips the compile. The key is the program
itself (and the device), so a changed model or loss simply compiles anew.

TensorFlow reads ``TF_XLA_FLAGS`` once, at the process's first XLA
compilation: :func:`enable_compile_cache` must run before that. The CLI calls
it before it builds anything; in Python, call it first thing.

TensorFlow's own key holds neither its version nor the CPU: it loads a program
compiled by another TensorFlow, or for another CPU (a cache on a disk that
several machines share), with no more than a log line, and the CPU's
instructions may not exist on this one (SIGILL). So the programs go into a
subdirectory named after both (:func:`cache_key`), and an entry cut short when
it was written (a process killed meanwhile), which would fail every later run
of the same problem, is removed first, with one :class:`CompileCacheWarning`.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import BinaryIO

from optrun.errors import InvalidArgumentError

FLAG = "--tf_xla_persistent_cache_directory"
#: The distributions that install the ``tensorflow`` package, in the order they are asked.
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly")
#: An entry younger than this may still be being written by another process: left alone.
SETTLED_S = 60.0


class CompileCacheWarning(UserWarning):
    """Unreadable entries were removed from the compilation cache (they are compiled anew)."""


class CompileCacheError(InvalidArgumentError):
    """The compilation cache's directory cannot be used.

    Attributes:
        directory: the directory asked for (the base, before :func:`cache_key`'s subdirectory).
        reason: what is wrong with it, e.g. ``cannot create '/data/xla' (Permission denied)``.
        advice: what to do, in the terms of ``enable_compile_cache``'s argument (or the spec's
            ``minimize.compile_cache``, which takes the same values).
    """

    def __init__(self, directory: Path, reason: str, advice: str) -> None:
        super().__init__(f"compile_cache: {reason}; {advice}")
        self.directory = directory
        self.reason = reason
        self.advice = advice


def default_cache_dir() -> Path:
    """``$OPTRUN_CACHE_DIR/xla``, else ``$XDG_CACHE_HOME/optrun/xla``, else ``~/.cache/optrun/xla``."""
    if os.environ.get("OPTRUN_CACHE_DIR"):
        return Path(os.environ["OPTRUN_CACHE_DIR"]) / "xla"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "optrun" / "xla"


def current_cache_dir() -> Path | None:
    """The cache directory ``TF_XLA_FLAGS`` names, if any."""
    found = re.search(rf"{FLAG}=(\S+)", os.environ.get("TF_XLA_FLAGS", ""))
    return Path(found[1]) if found else None


def enable_compile_cache(directory: str | Path | None = None) -> Path:
    """Turns on XLA's persistent compilation cache for this process.

    Entries of the directory that cannot be whole (cut short when they were
    written) are removed first, with one :class:`CompileCacheWarning`:
    TensorFlow would otherwise fail the evaluation that finds one.

    Args:
        directory: where compiled programs go; None for :func:`default_cache_dir`.

    Returns:
        The directory in use: ``directory``'s subdirectory :func:`cache_key`,
        which programs compiled by another TensorFlow or for another CPU never
        share. When ``TF_XLA_FLAGS`` already names one (set by the user, or by
        an earlier call), that one stays and is returned.

    Raises:
        CompileCacheError: the directory cannot be created, or its path holds a space.
    """
    existing = current_cache_dir()
    if existing is not None:
        return existing
    base = Path(directory).expanduser() if directory is not None else default_cache_dir()
    target = base / cache_key()
    _check_spaces(base, target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _cannot_create(base, error) from None
    removed = remove_unreadable_entries(target)
    if removed:
        warnings.warn(
            f"removed {len(removed)} unreadable compiled program{'s' * (len(removed) > 1)} from "
            f"{target.resolve()} (cut short while being written, e.g. by a process that was killed); "
            "compiling anew",
            CompileCacheWarning,
            stacklevel=2,
        )
    flags = os.environ.get("TF_XLA_FLAGS", "").strip()
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={target.resolve()}".strip()
    return target.resolve()


def check_cache_dir(directory: str | Path | None = None) -> None:
    """Raises what :func:`enable_compile_cache` would for ``directory``, creating nothing.

    The nearest existing parent must be a directory this process can create a
    directory in, which is tried (a trial directory is made and removed at once):
    permission bits do not tell, e.g. for root or on a read-only mount.

    Raises:
        CompileCacheError: as :func:`enable_compile_cache`.
    """
    if current_cache_dir() is not None:
        return
    base = Path(directory).expanduser() if directory is not None else default_cache_dir()
    target = base / cache_key()
    _check_spaces(base, target)
    existing = target
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        os.rmdir(tempfile.mkdtemp(prefix=".optrun-check-", dir=existing))
    except OSError as error:
        raise _cannot_create(base, error) from None


def _check_spaces(base: Path, target: Path) -> None:
    if re.search(r"\s", str(target.resolve())):
        raise CompileCacheError(
            base,
            f"{str(base)!r} holds a space, which TF_XLA_FLAGS cannot carry",
            "give a directory without spaces, or 'none'",
        )


def _cannot_create(base: Path, error: OSError) -> CompileCacheError:
    return CompileCacheError(
        base,
        f"cannot create {str(base)!r} ({error.strerror})",
        "give a writable directory, or 'none' to compile every time",
    )


def compile_cache_warm() -> bool:
    """Whether a persistent cache is on and already holds compiled programs: then a compile is
    likely a load, and the XLA tier is worth starting at once."""
    directory = current_cache_dir()
    try:
        return directory is not None and any(directory.iterdir())
    except OSError:
        return False


def cache_key() -> str:
    """The subdirectory for this TensorFlow and this CPU: ``tf2.21.0-x86_64-3f0c9a1b2d4e``.

    The last part is the first 12 hex digits of the sha256 of :func:`cpu_features`.
    """
    digest = hashlib.sha256(cpu_features().encode("utf-8")).hexdigest()[:12]
    return f"tf{tensorflow_version()}-{platform.machine() or 'cpu'}-{digest}"


def tensorflow_version() -> str:
    """The installed TensorFlow's version, read without importing it; ``unknown`` when none is found."""
    for name in TF_DISTRIBUTIONS:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return str(getattr(sys.modules.get("tensorflow"), "__version__", "unknown"))


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The instruction-set extensions of this CPU, sorted and space-separated.

    Linux lists them in ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on
    Arm); elsewhere the processor's name stands for them.
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return " ".join(sorted(set(value.split())))
    return platform.processor() or platform.machine()


def remove_unreadable_entries(directory: Path, settled_s: float = SETTLED_S) -> list[Path]:
    """Removes the cache entries (``*.pb``) of ``directory`` that are not whole.

    Args:
        directory: a compilation cache directory.
        settled_s: entries modified less than this many seconds ago are left
            alone: another process may be writing them right now.

    Returns:
        The entries removed.
    """
    removed = []
    now = time.time()
    try:
        entries = sorted(directory.glob("*.pb"))
    except OSError:
        return []
    for entry in entries:
        try:
            if now - entry.stat().st_mtime < settled_s or entry_is_whole(entry):
                continue
            entry.unlink()
        except OSError:
            continue  # gone meanwhile, or not ours to remove: TensorFlow says so if it matters
        removed.append(entry)
    return removed


def entry_is_whole(path: Path) -> bool:
    """Whether ``path`` holds a whole ``tensorflow.XlaSerializedCacheEntry`` (as TensorFlow writes it).

    Checked by its protobuf framing alone, without reading the program: the
    message's fields end exactly at the end of the file, and its key (1), HLO
    module (2) and executable (3) are all there.

    Raises:
        OSError: the file cannot be read.
    """
    seen = set()
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        while stream.tell() < size:
            tag = _varint(stream)
            if tag is None or tag >> 3 == 0:
                return False
            wire = tag & 7
            if wire == 2:  # length-delimited: skip its bytes
                length = _varint(stream)
                if length is None:
                    return False
                stream.seek(length, os.SEEK_CUR)
            elif wire in (1, 5):  # fixed 64 or 32 bits
                stream.seek(8 if wire == 1 else 4, os.SEEK_CUR)
            elif wire != 0 or _varint(stream) is None:
                return False
            if stream.tell() > size:
                return False
            seen.add(tag >> 3)
    return {1, 2, 3} <= seen


def _varint(stream: BinaryIO) -> int | None:
    """A protobuf varint read from ``stream``; None when the file ends inside it."""
    value = 0
    for shift in range(0, 70, 7):
        byte = stream.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    return None

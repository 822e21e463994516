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
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from optrun.errors import InvalidArgumentError

FLAG = "--tf_xla_persistent_cache_directory"


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

    Args:
        directory: where compiled programs go; None for :func:`default_cache_dir`.

    Returns:
        The directory in use. When ``TF_XLA_FLAGS`` already names one (set by
        the user, or by an earlier call), that one stays and is returned.

    Raises:
        InvalidArgumentError: the directory cannot be created.
    """
    existing = current_cache_dir()
    if existing is not None:
        return existing
    target = Path(directory).expanduser() if directory is not None else default_cache_dir()
    if re.search(r"\s", str(target.resolve())):
        raise InvalidArgumentError(
            f"compile_cache: {str(target)!r} holds a space, which TF_XLA_FLAGS cannot carry; "
            "give a directory without spaces, or 'none'"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidArgumentError(
            f"compile_cache: cannot create {str(target)!r} ({error.strerror}); "
            "give a writable directory, or 'none' to compile every time"
        ) from None
    flags = os.environ.get("TF_XLA_FLAGS", "").strip()
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={target.resolve()}".strip()
    return target.resolve()


def compile_cache_warm() -> bool:
    """Whether a persistent cache is on and already holds compiled programs: then a compile is
    likely a load, and the XLA tier is worth starting at once."""
    directory = current_cache_dir()
    try:
        return directory is not None and any(directory.iterdir())
    except OSError:
        return False

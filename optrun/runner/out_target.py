"""Where ``--out`` may point: never a link or a file, never ``.``, the home directory, the root
or the spec's own folder (nor a folder holding one of them), and no name longer than a file
name may be. Checked before anything is made, so a refused ``--out`` leaves no folder behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from optrun.errors import RunError
from optrun.spec.run_layout import NAME_MAX


def _protected(spec_source: str) -> dict[Path, str]:
    """Folders ``--force`` must never remove, with why."""
    places = [
        (Path.cwd(), "the current directory"),
        (Path.home(), "your home directory"),
        (Path("/"), "the root"),
    ]
    source = Path(spec_source)
    if source.is_file():
        places.append((source.parent, "the spec's own folder"))
    protected: dict[Path, str] = {}
    for path, why in places:
        protected.setdefault(path.resolve(), why)
    return protected


def check_target(out: Path, spec_source: str) -> None:
    """Refuses an ``--out`` that optrun must not use: a name too long, a path the file system
    refuses, a link, a file, or a protected folder (or one that holds it).

    Raises:
        RunError: why, and what to pass instead.
    """
    long = next((part for part in out.parts if len(part.encode("utf-8", "replace")) > NAME_MAX), None)
    if long is not None:  # refused before any parent folder is made for it
        raise RunError(
            f"--out: the name {long[:40]!r}... is longer than the {NAME_MAX} bytes a file name may have; "
            "choose a shorter --out."
        )
    try:
        out.lstat()
    except (FileNotFoundError, NotADirectoryError):
        pass  # made below, or refused there with the file that is in the way
    except (OSError, ValueError) as error:  # e.g. a path past the file system's limit, a NUL
        why = getattr(error, "strerror", None) or str(error)
        shown = str(out)[:120]
        raise RunError(f"--out {shown}: cannot use this path ({why}); choose another --out.") from None
    if out.is_symlink():
        raise RunError(
            f"--out {out} is a symbolic link (to {os.readlink(out)}); optrun does not write through "
            "links. Pass the real directory, or another --out."
        )
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a directory; choose another --out.")
    resolved = out.resolve()
    for place, why in _protected(spec_source).items():
        if resolved == place or resolved in place.parents:
            raise RunError(
                f"--out {out} is {why}"
                + ("" if resolved == place else f" or holds it ({place})")
                + "; optrun never uses or removes it as a run directory. "
                "Choose a new folder, e.g. --out runs/NAME."
            )

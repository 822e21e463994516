"""Third-party warnings raised during a run: counted into the run directory, never printed.

scipy's ``delta_grad == 0.0`` from trust-constr can fire hundreds of times in
one run; the run's user wants to know it happened, once, with a count, not a
screen of repeats. :func:`captured_warnings` collects them; the runner writes
:data:`WARNINGS_FILE` and a ``warnings`` list in result.json, and the CLI
shows that list in the summary (and nothing under ``-q``).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

#: The run directory's log of the warnings raised during the run (absent when there were none).
WARNINGS_FILE = "warnings.log"

#: Python's own default filters ignore these outside ``__main__``: they are for developers
#: of the code that raises them (Keras's NumPy 2 notices, say), not for the run's user.
_IGNORED = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _where(filename: str, lineno: int) -> str:
    """``scipy/optimize/_x.py:737``: a path shortened to below site-packages."""
    short = re.split(r"[/\\](?:site|dist)-packages[/\\]", filename)[-1]
    return f"{short}:{lineno}"


class WarningLog:
    """The warnings raised during a run, deduplicated by (category, message, where), with counts."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}

    def record(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        """A ``warnings.showwarning`` replacement: counts the warning, prints nothing."""
        key = (category.__name__, str(message).strip(), _where(filename, lineno))
        self._counts[key] = self._counts.get(key, 0) + 1

    def __len__(self) -> int:
        return len(self._counts)

    def summary(self) -> list[str]:
        """One line per distinct warning: ``UserWarning (32 times): delta_grad == 0.0. ...``."""
        return [
            f"{category} ({_times(count)}): {message}"
            for (category, message, _), count in self._counts.items()
        ]

    def write(self, out: Path) -> None:
        """Writes :data:`WARNINGS_FILE` in ``out`` (removes a stale one when there were none)."""
        path = out / WARNINGS_FILE
        if not self._counts:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        lines = [
            f"{category} ({_times(count)}) at {where}: {message}"
            for (category, message, where), count in self._counts.items()
        ]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, path)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


@contextlib.contextmanager
def captured_warnings() -> Iterator[WarningLog]:
    """Captures every warning raised in the block into a :class:`WarningLog`; none is printed.

    Whatever filters are in force outside (``-W``, pytest's ``filterwarnings``, an
    earlier ``"once"``), each occurrence is counted, except the developer
    categories Python itself ignores by default (:data:`_IGNORED`). The
    previous filters and ``warnings.showwarning`` come back when the block ends.
    """
    log = WarningLog()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        for category in _IGNORED:
            warnings.filterwarnings("ignore", category=category)
        warnings.showwarning = log.record
        yield log

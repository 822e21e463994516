"""Collecting a spec's problems instead of stopping at the first: each error becomes a
:class:`~optrun.errors.Problem` at its YAML path and line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from optrun.errors import OptrunError, Problem, UserInterrupt, describe, dotted, in_spec, placed
from optrun.spec.load import RawSpec

Path = tuple[Any, ...]


def get(data: Any, *path: Any) -> Any:
    """``data[path[0]][path[1]]...``, or None where the spec has nothing (or not a mapping/list)."""
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


class Collector:
    """Problems found so far, each placed at its YAML path and line."""

    def __init__(self, raw: RawSpec) -> None:
        self.raw = raw
        self.problems: list[Problem] = []
        #: References that import but cannot be called with the spec's arguments, by path.
        self.unbound: set[Path] = set()

    def add(self, path: Path, message: str) -> None:
        """Records ``message`` at ``path`` (a leading ``"<path>: "`` in the message is not repeated)."""
        name = dotted(path)
        message = message.removeprefix(f"{name}: ") if name else message
        problem = placed(path, message, self.raw.lines, self.raw.overridden)
        self.problems.append(problem if path else Problem("", message))

    def add_error(self, error: BaseException, path: Path) -> None:
        """Records an error: at the places it carries (``OptrunError.problems``), else at ``path``.

        The message is never read for a place: a user's "a.b: ... (line 3)" stays
        message text. Only a leading ``"<path>: "`` naming ``path`` itself is not repeated.
        """
        found = error.problems if isinstance(error, OptrunError) else ()
        if not found:
            self.add(path, str(error) if isinstance(error, OptrunError) else describe(error))
            return
        for problem in found:
            if problem.path:
                self.problems += in_spec(self.raw, [problem])
            elif problem.line is not None:  # the whole file's (YAML), with its line
                self.problems.append(problem)
            else:
                self.add(path, problem.message)

    @contextlib.contextmanager
    def catch(self, path: Path) -> Iterator[None]:
        """Runs the block; an error (user code's included) is recorded at ``path``, not raised."""
        try:
            yield
        except UserInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - every failure is a problem to report
            self.add_error(error, path)

    def sorted(self) -> list[Problem]:
        """By line (problems without one last), then in the order found."""
        order = sorted(enumerate(self.problems), key=lambda item: (item[1].line or 1 << 30, item[0]))
        return [problem for _, problem in order]

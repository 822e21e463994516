"""The one exception hierarchy of optrun.

Library code raises these and never prints or exits; only ``cli/`` catches
them. Each concrete error also subclasses the builtin that a Python user would
expect (``ValueError``, ``TypeError``, ...), so ``except ValueError`` keeps
working for code written against ``tf.contrib.opt``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from optrun.causes import Cause, message_line, user_frame_of


def first_line(error: BaseException) -> str:
    """The line of an exception's message that says what went wrong: in TensorFlow's, after "in
    user code:" and a stack, or "Graph execution error:" (see :func:`optrun.causes.message_line`)."""
    return message_line(str(error), tensorflow=type(error).__module__.startswith("tensorflow"))


def describe(error: BaseException) -> str:
    """``"TypeName: what went wrong"`` in one line, without repeating the type name."""
    if isinstance(error, ConfigError):  # its first line only counts them
        return "; ".join(error.issues)
    name = type(error).__name__
    line = first_line(error).rstrip(".")
    if not line:
        return name
    named = line.startswith(f"{name}:") or re.match(r"^\w+(Error|Exception): ", line)
    return line if named else f"{name}: {line}"


def cause_of(error: BaseException) -> Cause:
    """What went wrong (as :func:`describe` says it) and the user's file and line, when known."""
    return Cause(describe(error), user_frame_of(error))


class OptrunError(Exception):
    """Base class of every error optrun raises on purpose.

    An error about places in the spec carries them as data in ``problems``
    (see :meth:`at`, :func:`naming` and :class:`ConfigError`), so that whoever
    reports it need not read the place back out of the message.
    """

    problems: Sequence[Problem] = ()

    @classmethod
    def at(cls, path: str, detail: str, said: str | None = None) -> Self:
        """The error about ``path`` (a dotted YAML path), carrying ``Problem(path, detail)``.

        Args:
            path: where in the spec, dotted (``"minimize.constraints.inequalities[1]"``).
            detail: what is wrong there, without the path.
            said: the message, when it names the place in words of its own
                (default ``"path: detail"``); the place is still the data above.
        """
        error = cls(f"{path}: {detail}" if said is None else said)
        error.problems = [Problem(path, detail)]
        return error


def naming(error: OptrunError, path: str) -> OptrunError:
    """``error``, whose message starts with ``path`` (the name optrun gave the value), placed there.

    For messages made where the spec's place is only an argument name
    (``"train.optimizer.wrappers[0].vars names 'x', ..."``): the caller knows
    the name it passed, so no path is guessed from the text.
    """
    text = str(error)
    if not error.problems and path and text.startswith(path):
        error.problems = [Problem(path, text[len(path) :].removeprefix(":").strip())]
    return error


class InvalidArgumentError(OptrunError, ValueError):
    """An argument has a bad value: the message echoes it and says what to do."""


class InvalidTypeError(OptrunError, TypeError):
    """An argument has the wrong type."""


class UnknownVariableError(OptrunError, KeyError):
    """A variable key (name, path or variable) matches no variable, or several.

    ``KeyError`` quotes its message with ``repr``; ``__str__`` is overridden so
    the message reads as plain text.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsupportedMethodError(OptrunError, ValueError):
    """The chosen external method cannot handle what the problem asks for."""


class NonFiniteError(OptrunError, FloatingPointError):
    """An evaluation gave NaN or Inf; the message names what (the loss, ``inequalities[2]``, ...) and when.
    A stopped ``minimize``'s also holds, as data, that ``reason`` and the ``advice`` it gives."""

    reason: str = ""
    advice: str = ""


class NotReadyError(OptrunError, RuntimeError):
    """An operation needs state that does not exist yet (e.g. averages before any update)."""


@dataclass(frozen=True)
class Problem:
    """One problem in a spec: its YAML path (dotted, '' for the whole file), message and line.

    ``from_set``: the value came from the command line, a ``--set`` override or a
    flag that stands for one (the message ends with "(from --set)", "(from --seed)",
    ...; a problem that has a line or this mark is placed).
    """

    path: str
    message: str
    line: int | None = None
    from_set: bool = False

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.path}: {self.message}{where}" if self.path else f"{self.message}{where}"

    @classmethod
    def parse(cls, text: str) -> Problem:
        """Reads ``"a.b[0]: message (line 3)"`` back; text without a leading path keeps path ''.

        For text from outside (a log, an older optrun's output): optrun's own errors carry
        their problems as data and never parse them back.
        """
        found = _PROBLEM.match(text)
        if found is None:
            return cls("", text)
        line = found["line"]
        return cls(found["path"] or "", found["message"], int(line) if line else None)


_PROBLEM = re.compile(
    r"^(?:(?P<path>[A-Za-z_][\w\-]*(?:\.[\w\-]+|\[\d+\])*): )?(?P<message>.*?)"
    r"(?: \(line (?P<line>\d+)\))?$",
    re.DOTALL,
)

# The severity of a finding of ``optrun validate`` (``--json``'s ``severity``): a problem of the
# spec, a warning about the run, a check passed, or checks that a broken part kept from running.
# Plain strings beside Problem, so that the CLI names them without importing TensorFlow.
ERROR = "error"
WARNING = "warning"
INFO = "info"
#: Also the ``mode`` of the one report a spec with problems gets: the checks skipped, and why.
SKIPPED = "skipped"


class ConfigError(OptrunError, ValueError):
    """The experiment spec is invalid.

    ``problems`` lists every problem found, each with its YAML path and line;
    ``issues`` is the same list as text. A plain string (from code outside
    optrun) is a problem of the whole spec: its text is never read for a place.
    """

    problems: list[Problem]

    def __init__(self, source: str, issues: Sequence[Problem | str]) -> None:
        self.source = source
        self.problems = [p if isinstance(p, Problem) else Problem("", p) for p in issues]
        self.issues = [str(p) for p in self.problems]
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        super().__init__(f"{source}: {count}\n" + "\n".join(f"  - {issue}" for issue in self.issues))


# Placing problems in a spec: its paths, lines and --set overrides.


def dotted(path: tuple[Any, ...] | list[Any]) -> str:
    """``("a", "b", 0, "c")`` -> ``"a.b[0].c"``: how messages name a place in the spec."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_path(text: str) -> tuple[Any, ...]:
    """``"a.b[0].c"`` -> ``("a", "b", 0, "c")``: the inverse of :func:`dotted`."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text))


def line_of(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    """The line of ``path``, or of its nearest parent that is in the file."""
    for depth in range(len(path), 0, -1):
        if path[:depth] in lines:
            return lines[path[:depth]]
    return None


class SpecPlaces(Protocol):
    """Where a spec's keys are: a read spec (``RawSpec``) or a validated one (``LoadedSpec``)."""

    @property
    def source(self) -> str: ...
    @property
    def lines(self) -> dict[tuple[Any, ...], int]: ...  # YAML path -> line in the file
    @property
    def overridden(self) -> Mapping[str, str]: ...  # dotted key -> the flag that set it (--set, --seed)


def placed(
    path: tuple[Any, ...], message: str, lines: dict[tuple[Any, ...], int], overridden: Mapping[str, str]
) -> Problem:
    """A problem at ``path``: with the line of its key, or marked with the command-line flag
    (``--set``, ``--seed``, ...) that gave its value."""
    plain = ".".join(str(p) for p in path)
    # The source: an override of this key or of a section holding it (`--set loss=mse`), else one below it
    last_first = list(overridden.items())[::-1]  # the override applied last gave the value
    flag = next((f for key, f in last_first if plain == key or plain.startswith(key + ".")), None)
    if flag is None:  # ... that made a key the file lacks, or set the one the message names
        below = ((k, f) for k, f in last_first if k.startswith(plain + "."))
        flag = next((f for k, f in below if path not in lines or k.rsplit(".", 1)[-1] in message), None)
    if flag is not None:
        return Problem(dotted(path) or "(top level)", f"{message} (from {flag})", from_set=True)
    return Problem(dotted(path) or "(top level)", message, line_of(path, lines))


def in_spec(spec: SpecPlaces, problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` placed in ``spec`` by :func:`placed`: each with its line or its flag's mark.

    One already placed (it has a line or the mark) or about the whole file is kept as it is.
    """
    return [
        p
        if not p.path or p.line is not None or p.from_set
        else placed(parse_path(p.path), p.message, spec.lines, spec.overridden)
        for p in problems
    ]


def spec_error(spec: SpecPlaces, found: Iterable[tuple[tuple[Any, ...], str]]) -> ConfigError:
    """One error for ``(YAML path, message)`` problems of ``spec``, each placed by :func:`in_spec`."""
    return ConfigError(
        spec.source, in_spec(spec, [Problem(dotted(path), message) for path, message in found])
    )


@contextlib.contextmanager
def problems_in(spec: SpecPlaces) -> Iterator[None]:
    """A :class:`ConfigError` raised in the block is raised again as ``spec``'s, and any other
    error's problems (:meth:`OptrunError.at`) are placed, each by :func:`in_spec`: what
    ``optrun validate`` would say of it, with line or --set mark."""
    try:
        yield
    except OptrunError as error:
        placed_ones = in_spec(spec, error.problems)
        if isinstance(error, ConfigError) and (error.source != spec.source or placed_ones != error.problems):
            raise ConfigError(spec.source, placed_ones).with_traceback(error.__traceback__) from None
        error.problems = placed_ones
        raise


class LoadError(OptrunError, ImportError):
    """A reference in the spec ('file.py:function') cannot be imported, found or run."""


class RunError(OptrunError, RuntimeError):
    """A run cannot start or go on (e.g. the run directory exists), with what to do about it."""


class UserInterrupt(OptrunError):
    """User code raised KeyboardInterrupt (or Ctrl-C came) while it was loading; nothing was written."""

    exit_code = 130


class RunFailed(OptrunError, RuntimeError):
    """The run started but user code raised mid-way; result.json records it (exit code 1): as
    data, ``result_file``, when the run wrote one (``--json`` shows the record itself)."""

    exit_code = 1

    def __init__(self, message: str, result_file: Path | None = None) -> None:
        super().__init__(message)
        self.result_file = result_file


class Terminated(BaseException):
    """Raised in the main thread by the CLI's SIGTERM handler; like Ctrl-C, but exit 143."""


class MissingDependencyError(OptrunError, ImportError):
    """An optional dependency (an extra) is not installed: the message says which pip command adds it."""

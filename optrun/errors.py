"""The one exception hierarchy of optrun.

Library code raises these and never prints or exits; only ``cli/`` catches
them. Each concrete error also subclasses the builtin that a Python user would
expect (``ValueError``, ``TypeError``, ...), so ``except ValueError`` keeps
working for code written against ``tf.contrib.opt``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from optrun.causes import Cause, message_line, user_frame_of


def first_line(error: BaseException) -> str:
    """The line of an exception's message that says what went wrong.

    TensorFlow's staged errors start with "in user code:" and a stack, its
    runtime errors with "Graph execution error:" and where the op was made; the
    actual error comes after (see :func:`optrun.causes.message_line`).
    """
    return message_line(str(error), tensorflow=type(error).__module__.startswith("tensorflow"))


def describe(error: BaseException) -> str:
    """``"TypeName: what went wrong"`` in one line, without repeating the type name."""
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
    """Base class of every error optrun raises on purpose."""


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
    """An evaluation gave NaN or Inf; the message names what (the loss, ``inequalities[2]``, ...) and when."""


class NotReadyError(OptrunError, RuntimeError):
    """An operation needs state that does not exist yet (e.g. averages before any update)."""


@dataclass(frozen=True)
class Problem:
    """One problem in a spec: its YAML path (dotted, '' for the whole file), message and line."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.path}: {self.message}{where}" if self.path else f"{self.message}{where}"

    @classmethod
    def parse(cls, text: str) -> Problem:
        """Reads ``"a.b[0]: message (line 3)"`` back; text without a leading path keeps path ''."""
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


class ConfigError(OptrunError, ValueError):
    """The experiment spec is invalid.

    ``problems`` lists every problem found, each with its YAML path and line;
    ``issues`` is the same list as text.
    """

    def __init__(self, source: str, issues: Sequence[str | Problem]) -> None:
        self.source = source
        self.problems = [p if isinstance(p, Problem) else Problem.parse(p) for p in issues]
        self.issues = [str(p) for p in self.problems]
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        super().__init__(f"{source}: {count}\n" + "\n".join(f"  - {issue}" for issue in self.issues))


class LoadError(OptrunError, ImportError):
    """A reference in the spec ('file.py:function') cannot be imported, found or run."""


class RunError(OptrunError, RuntimeError):
    """A run cannot start or go on (e.g. the run directory exists), with what to do about it."""


class UserInterrupt(OptrunError):
    """User code raised KeyboardInterrupt (or Ctrl-C came) while it was loading; nothing was written."""

    exit_code = 130


class RunFailed(OptrunError, RuntimeError):
    """The run started but user code raised mid-way; result.json records it (exit code 1)."""

    exit_code = 1


class Terminated(BaseException):
    """Raised in the main thread by the CLI's SIGTERM handler; like Ctrl-C, but exit 143."""

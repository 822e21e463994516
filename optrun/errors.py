"""The one exception hierarchy of optrun.

Library code raises these and never prints or exits; only ``cli/`` catches
them. Each concrete error also subclasses the builtin that a Python user would
expect (``ValueError``, ``TypeError``, ...), so ``except ValueError`` keeps
working for code written against ``tf.contrib.opt``.
"""

from __future__ import annotations


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


class NotReadyError(OptrunError, RuntimeError):
    """An operation needs state that does not exist yet (e.g. averages before any update)."""

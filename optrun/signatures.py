"""Can a user's function take the arguments optrun will call it with? Asked of its signature, up front.

A loss, a constraint or a callback with the wrong parameters would otherwise
fail with a bare ``TypeError`` from deep inside a trace or an external
optimizer, after work has run, naming a wrapper (AutoGraph's) rather than
the user's function. Checked before anything runs, the error names the
function, where it is defined, and what it is called with.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from optrun.errors import InvalidArgumentError


def describe(func: Callable[..., Any], signature: inspect.Signature) -> str:
    """``name(signature)``, plus where it is defined when Python knows (a lambda has no other name)."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__
    code = getattr(inspect.unwrap(getattr(func, "__func__", func)), "__code__", None)
    # Annotations left out: under postponed evaluation they print as quoted strings, and
    # the parameters' names and kinds are what the message is about.
    signature = signature.replace(
        parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
        return_annotation=signature.empty,
    )
    where = f" (defined at {code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{name}{signature}{where}"


def refusal(func: Callable[..., Any], n_args: int) -> tuple[str, str] | None:
    """``(description, reason)`` when ``func`` cannot be called with ``n_args`` positional arguments;
    None when it can, or when its signature cannot be inspected (a builtin, a C function).

    Refused only when the function's own signature refuses too: ``functools.wraps`` gives a
    wrapper the signature of what it wraps, though the wrapper may supply those arguments.
    """
    found = None
    for follow in (True, False):
        try:
            signature = inspect.signature(func, follow_wrapped=follow)
        except (TypeError, ValueError):  # nothing to check against: let the call itself decide
            return None
        try:
            signature.bind(*([None] * n_args))
        except TypeError as error:
            found = found or (describe(func, signature), str(error))
        else:
            return None
    return found


def check_zero_argument(func: Callable[..., Any], what: str) -> None:
    """Refuses ``func`` (the user's ``what``: ``loss``, ``equalities[0]``, ...) unless it can be
    called with no arguments, as optrun calls losses, constraints and fetches.

    Raises:
        InvalidArgumentError: its signature requires arguments.
    """
    if refused := refusal(func, 0):
        described, reason = refused
        raise InvalidArgumentError(
            f"{what} must be a zero-argument callable; {described} cannot be called with no "
            f"arguments ({reason}). optrun calls it with none, at the variables' current values: "
            "close over what it needs, e.g. lambda: my_loss(model, x, y)."
        )

"""Checking ``minimize``'s callbacks against the arguments they will be called with.

``loss_callback`` gets one positional NumPy value per entry of ``fetches`` (none
without fetches), ``step_callback`` the packed float64 vector ``x``. A
callback that cannot take them would otherwise fail with a bare ``TypeError``
from inside the external optimizer, after evaluations have run; checked here,
before the first one, the error names the callback and says what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun.signatures import refusal


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def check_callbacks(step_callback: Any, loss_callback: Any, fetches: Sequence[Any] | None) -> None:
    """Refuses, before anything runs, a callback that is not callable or cannot take its arguments.

    Args:
        step_callback: the user's ``step_callback`` or None; called with one argument, ``x``.
        loss_callback: the user's ``loss_callback`` or None; called with one positional
            argument per entry of ``fetches``.
        fetches: what ``minimize`` got; its length is the number of ``loss_callback``'s arguments.

    Raises:
        InvalidTypeError: a callback is not callable, or ``fetches`` is not a list.
        InvalidArgumentError: a callback's signature does not accept its arguments.
    """
    for name, cb in (("step_callback", step_callback), ("loss_callback", loss_callback)):
        if cb is not None and not callable(cb):
            raise InvalidTypeError(f"{name} must be callable; got {type(cb).__name__}")
    if step_callback is not None and (refused := refusal(step_callback, 1)):
        described, reason = refused
        raise InvalidArgumentError(
            f"step_callback {described} cannot be called with 1 positional argument ({reason}): "
            "minimize() calls it once per iteration with the packed float64 vector x of all the "
            "variables. Make it take one parameter, e.g. step_callback=lambda x: print(x)."
        )
    if fetches is not None and (not isinstance(fetches, Sequence) or isinstance(fetches, (str, bytes))):
        raise InvalidTypeError(
            "fetches must be a list: of tensors or variables in graph mode, of zero-argument "
            f"callables or variables in TF2; got {type(fetches).__name__} {fetches!r:.60}"
        )
    if loss_callback is None:
        return
    n = len(fetches) if fetches is not None else 0
    if refused := refusal(loss_callback, n):
        described, reason = refused
        given = "no fetches were given" if fetches is None else f"fetches has {_count(n, 'entry', 'entries')}"
        if n:
            advice = (
                f"Give it {_count(n, 'parameter', 'parameters')}, one per fetch in order (or *args), "
                "or pass as many fetches as it takes."
            )
        else:
            advice = (
                "Pass fetches=[...] with one entry per parameter (e.g. fetches=[loss] for "
                "lambda loss: ...), or make it take no arguments (lambda: ...)."
            )
        arguments = _count(n, "positional argument", "positional arguments")
        raise InvalidArgumentError(
            f"loss_callback {described} cannot be called with {arguments} ({reason}): minimize() "
            f"calls it with one NumPy value per entry of fetches, in order, and {given}. {advice}"
        )


def flat_fetches(
    fetches: Sequence[Any] | None, loss_callback: Callable[..., Any] | None
) -> tuple[Sequence[Any] | None, Callable[..., Any] | None]:
    """Nested fetches as ``session.run`` took them for TF1: a list of what to evaluate, flat, and
    a ``loss_callback`` that gets each entry back in its own structure (a list, tuple or dict)."""
    if fetches is None or not any(tf.nest.is_nested(item) for item in fetches):
        return fetches, loss_callback
    structure = list(fetches)
    if loss_callback is None:
        return tf.nest.flatten(structure), None
    callback = loss_callback

    def nested(*values: Any) -> Any:
        return callback(*tf.nest.pack_sequence_as(structure, list(values)))

    return tf.nest.flatten(structure), nested


def watched_kwargs(kwargs: dict[str, Any], watch: Callable[..., Any]) -> dict[str, Any]:
    """A copy of ``optimizer_kwargs`` whose ``callback`` (scipy's, which TF 1.0 passed on) is
    followed by the backend's ``watch``, as ``step_callback`` is: a feed it changes counts
    from the next evaluation."""
    given = dict(kwargs)
    if callable(given.get("callback")):
        given["callback"] = watch(given["callback"])
    return given

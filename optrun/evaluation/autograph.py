"""The user's code as ``tf.function`` would trace it: through AutoGraph.

AutoGraph rewrites Python ``if``, ``for`` and ``while`` on tensors into graph
control flow. optrun traces the user's code as written first and converts it
only when that trace fails (:meth:`optrun.evaluation.eager.EagerBackend.trace`):
the rewrite is a large part of a trace, and code that needs none traces to
the same graph without it.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import tensorflow as tf

logger = logging.getLogger("optrun")

Thunk = Callable[[], Any]


def converted(thunk: Thunk) -> Thunk:
    """``thunk`` converted by autograph, as ``tf.function`` would convert it, or as is where it
    cannot be (a builtin, a lambda sharing its line with another, source Python cannot find).

    A function or lambda is converted here, once; the functions it calls are converted as it
    calls them. Any other callable (a bound method, a ``functools.partial``, an object with
    ``__call__``) is called from a converted function of optrun's, which converts it the way
    ``tf.function`` converts its argument. A thunk marked
    ``tf.autograph.experimental.do_not_convert`` (the attribute ``tf.function`` itself checks)
    is left alone.
    """
    if hasattr(thunk, "autograph_info__"):
        return thunk
    target = thunk if inspect.isfunction(thunk) else _calling(thunk)
    try:
        return tf.autograph.to_graph(target)
    except Exception as error:  # noqa: BLE001 - traced as written, as tf.function does after its warning
        # Debug, not a warning: the seed's own style (two constraint lambdas on one line) lands
        # here, and needs no rewrite.
        logger.debug("AutoGraph cannot convert %r (%s); it is traced as written", thunk, error)
        return thunk


def _calling(thunk: Thunk) -> Thunk:
    def call() -> Any:
        return thunk()

    return call


class CreatesVariables(Exception):
    """The user's code created a variable in the trace as written, which is then abandoned: a
    variable created in a trace that fails would stay uninitialized, and the code kept it."""


def _refuse(next_creator: Any, **kwargs: Any) -> Any:
    graph = tf.compat.v1.get_default_graph()
    # A tf.function of the user's, traced for its first call inside this trace, creates its
    # variables as tf.function does (lifted out of it, initialized): refused there, it would
    # count its first call as done and refuse them in the AutoGraph trace as well.
    if getattr(getattr(graph, "outer_graph", None), "outer_graph", None) is not None:
        return next_creator(**kwargs)
    raise CreatesVariables("the loss creates a variable while tracing")


def as_written(trace: Callable[[], Any]) -> Any:
    """``trace()``, the user's code traced as written; a variable it creates outside a
    ``tf.function`` of its own raises :class:`CreatesVariables` before it exists (so the
    AutoGraph trace creates it, once)."""
    with tf.variable_creator_scope(_refuse):
        return trace()


def holds_dataset(thunk: Any) -> bool:
    """Whether ``thunk`` holds a ``tf.data.Dataset`` within reach: in its closure, the globals it
    names, a ``functools.partial``'s arguments or the attributes of the object it is bound to.

    Without AutoGraph, TensorFlow refuses a loop over a dataset only after tracing its body 32
    times; code that holds one goes straight to AutoGraph. One further away is not seen. Never
    raises: whatever cannot be looked into counts as holding none.
    """
    try:
        return any(isinstance(v, tf.data.Dataset) for v in _within_reach(thunk))
    except Exception:  # noqa: BLE001 - an object whose attributes raise: the trace as written decides
        return False


def _within_reach(thunk: Any) -> list[Any]:
    values: list[Any] = []
    target = thunk
    if isinstance(thunk, functools.partial):
        values += [*thunk.args, *thunk.keywords.values()]
        target = thunk.func
    owner = getattr(target, "__self__", None)  # a bound method's object
    if not inspect.isfunction(getattr(target, "__func__", target)) and owner is None:
        owner, target = target, type(target).__call__  # an object with __call__
    values += list(getattr(owner, "__dict__", {}).values())
    try:
        found = inspect.getclosurevars(getattr(target, "__func__", target))
    except (TypeError, ValueError):  # a builtin, or no source-level function to inspect
        return values
    return [*values, *found.nonlocals.values(), *found.globals.values()]


def same_failure(first: BaseException, second: BaseException) -> bool:
    """Whether two traces failed alike (type and message): then the first, raised from the code
    as written, names the user's line, which AutoGraph's rewrite does not."""
    return type(first) is type(second) and str(first) == str(second)

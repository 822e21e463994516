"""The user's code as ``tf.function`` would trace it: through AutoGraph.

AutoGraph rewrites Python ``if``, ``for`` and ``while`` on tensors into graph
control flow. optrun traces the user's code as written first and converts it
only when that trace fails (:meth:`optrun.evaluation.eager.EagerBackend.trace`):
the rewrite is a large part of a trace, and code that needs none traces to
the same graph without it.
"""

from __future__ import annotations

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

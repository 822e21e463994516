"""``feed_dict`` as the graph backend feeds it, read again whenever user code may have changed it.

TF1's interface handed ``session.run`` the caller's ``feed_dict`` at every
evaluation, and the session read every variable outside ``var_list`` then too.
So a callback that put the next minibatch into the dict, or raised a penalty
variable between iterations, changed the very next evaluation. optrun feeds
a point with values converted once (each checked as ``session.run`` would
check it) and its cut-out function takes the other variables as inputs, so
:class:`LiveFeeds` keeps both honest: after each user callback (the only user
code that runs while the optimizer does) the dict is checked for replaced
values, and after each ``step_callback`` the paths that hold copies of their
own (the cut-out function) compare them with the arrays and variables again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError


class LiveFeeds:
    """The fed values of one ``minimize``, and counters that say when to read them again.

    The values are the caller's own arrays wherever their dtype allows (no copy), so
    the session path sees an array changed in place as ``session.run`` did. Checking
    the dict after a callback costs one identity test per key.

    Attributes:
        values: ``{graph tensor: array}``, as the session is fed.
        version: bumped each time a callback put another value in the dict.
        touched: bumped after each ``step_callback``: a fed array may have changed in place,
            and variables outside ``var_list`` may have been assigned. Paths that hold copies
            of them (the cut-out function) read them again then.
    """

    def __init__(self, graph: Any, given: Any) -> None:
        if given is not None and not isinstance(given, dict):
            raise InvalidTypeError(
                f"feed_dict must be a dict of {{placeholder: value}}; got {type(given).__name__}"
            )
        self._graph = graph
        self._given = given or {}
        self._seen = dict(self._given)  # the objects the values were read from
        self.values = converted(graph, self._given)
        self.version = 0
        self.touched = 0

    def refresh(self, deep: bool) -> None:
        """Reads the caller's dict again if a value in it was replaced (after user code ran);
        ``deep``: also counts a touch (see :attr:`touched`).

        Raises:
            InvalidArgumentError: a value ``session.run`` would refuse, or a changed set of keys
                (the session's callables feed the tensors they were made for).
        """
        if deep:
            self.touched += 1
        given, seen = self._given, self._seen
        if len(given) == len(seen) and all(given.get(k, seen) is v for k, v in seen.items()):
            return
        if given.keys() != seen.keys():
            raise InvalidArgumentError(
                "a callback changed which tensors feed_dict feeds; minimize feeds the ones it started "
                "with: change their values only, or call minimize again with the new feed_dict."
            )
        self.values, self._seen, self.version = converted(self._graph, given), dict(given), self.version + 1

    def watch(self, callback: Callable[..., Any] | None, deep: bool = True) -> Callable[..., Any] | None:
        """``callback``, followed by :meth:`refresh`; None stays None."""
        if callback is None:
            return None

        @functools.wraps(callback)  # keeps its signature: scipy reads a callback's parameters
        def watched(*args: Any) -> Any:
            done = callback(*args)
            self.refresh(deep)
            return done

        return watched


def converted(graph: Any, given: dict[Any, Any]) -> dict[Any, np.ndarray]:
    """``{graph tensor: array}`` for a ``feed_dict``, each value checked as ``session.run`` would."""
    feeds: dict[Any, np.ndarray] = {}
    for key, value in (pair for item in given.items() for pair in _sparse_parts(*item)):
        try:
            tensor = graph.as_graph_element(key, allow_operation=False)
        except (TypeError, ValueError, KeyError) as error:
            raise InvalidArgumentError(
                f"feed_dict key {key!r:.60} is not a tensor of the loss's graph: {error}"
            ) from None
        feeds[tensor] = _feed_value(tensor, value)
    return feeds


def _sparse_parts(key: Any, value: Any) -> list[tuple[Any, Any]]:
    """A feed as ``session.run`` takes it: a ``SparseTensor`` key (a sparse placeholder) fed a
    ``SparseTensorValue`` or an ``(indices, values, dense_shape)`` triple is three feeds."""
    if not isinstance(key, tf.SparseTensor):
        return [(key, value)]
    parts = (value.indices, value.values, value.dense_shape) if hasattr(value, "indices") else value
    if not isinstance(parts, (tuple, list)) or len(parts) != 3:
        raise InvalidArgumentError(
            f"feed_dict value for the sparse tensor {key.values.name!r} must be a "
            f"tf.compat.v1.SparseTensorValue or an (indices, values, dense_shape) triple; got {value!r:.60}"
        )
    return list(zip((key.indices, key.values, key.dense_shape), parts, strict=True))


def _feed_value(tensor: Any, value: Any) -> np.ndarray:
    """``value`` as ``session.run`` would feed it to ``tensor``, refused where it would refuse it:
    the session callables optrun runs skip those checks, and a value of the wrong shape could
    broadcast into a different loss without a word. The caller's own array where its dtype
    allows, as ``session.run`` fed it."""
    if tf.is_symbolic_tensor(value):
        raise InvalidTypeError(
            f"feed_dict value for {tensor.name!r} is a graph tensor ({value.name!r}); a feed value "
            "must be a Python scalar, list or NumPy array: evaluate it first with session.run."
        )
    try:
        array = np.asarray(value, tensor.dtype.base_dtype.as_numpy_dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidArgumentError(
            f"feed_dict value for {tensor.name!r} cannot be read as {tensor.dtype.base_dtype.name}: "
            f"{error} (got {value!r:.60})"
        ) from None
    if not tensor.shape.is_compatible_with(array.shape):
        raise InvalidArgumentError(
            f"cannot feed a value of shape {array.shape} to {tensor.name!r}, which has shape "
            f"{tensor.shape.as_list()}; reshape the value (e.g. y.reshape(-1, 1) for a column)."
        )
    return array

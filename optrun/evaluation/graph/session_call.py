"""The graph backend's first tier: one point, one session call, nothing traced or cut.

TF1's ``ScipyOptimizerInterface`` fed each variable's value with
``session.run``; building that feed dict and the fetch structure anew costs
more than a small graph's evaluation. Here a callable made once per
``minimize`` (``Session._make_callable_from_options``, as Keras' TF1 backend
uses) takes a fixed list of feeds and fetches:

* reference variables (``use_resource=False``, TF1's own) are fed by value,
  as TF1 did: every read of such a variable goes through the fed tensor, so a
  point costs one call and the variables are written only at the end;
* resource variables cannot be fed that way, so ``x`` is assigned by a
  second callable first.

Sessions without that method (``MonitoredSession``) use ``make_callable``.
On a graph of small tensors the callables run on the calling thread
(:mod:`optrun.evaluation.inline`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.evaluation.graph.feeds import LiveFeeds
from optrun.evaluation.inline import runs_inline
from optrun.evaluation.outputs import joiner
from optrun.evaluation.packing import Layout
from optrun.evaluation.point import Evaluator

_REFERENCE_OPS = {"VariableV2", "Variable"}


def fed_by_value(variables: Sequence[Any]) -> bool:
    """Whether every variable is a reference variable, whose value can be fed in place."""
    return all(getattr(getattr(v, "op", None), "type", None) in _REFERENCE_OPS for v in variables)


def make_callable(
    session: Any, fetches: list[Any], feeds: list[Any], targets: Sequence[Any] = (), inline: bool = False
) -> Callable:
    """``(*feed_values) -> [fetched values]`` for fixed feeds and fetches; ``inline``: its ops run
    on the calling thread (:mod:`optrun.evaluation.inline`), where the session allows it."""
    if hasattr(session, "_make_callable_from_options") and all(isinstance(t, tf.Tensor) for t in fetches):
        from tensorflow.core.protobuf import config_pb2

        options = config_pb2.CallableOptions()
        options.feed.extend(t.name for t in feeds)
        options.fetch.extend(t.name for t in fetches)
        options.target.extend(op.name for op in targets)
        if inline:  # RunOptions' documented value for "the caller thread"
            options.run_options.inter_op_thread_pool = -1
        return session._make_callable_from_options(options)
    run_fetches = [*fetches, *targets]
    run = session.make_callable(run_fetches, feed_list=feeds) if hasattr(session, "make_callable") else None
    if run is None:
        return lambda *values: session.run(run_fetches, dict(zip(feeds, values, strict=True)))[: len(fetches)]
    return lambda *values: run(*values)[: len(fetches)]


def session_point(
    session: Any,
    parts: list[tf.Tensor],
    fetches: list[Any],
    keys: list[Any],
    variables: Sequence[Any],
    layout: Layout,
    assign: tuple[Any, Any],
) -> Callable[[LiveFeeds], Evaluator]:
    """The callables for one set of outputs (:func:`~optrun.evaluation.outputs.output_parts`),
    fetches and feed keys, made once; called with a ``minimize``'s feeds, they give
    ``x -> (packed, fetched)``: one session call per point (reference variables) or two, fed
    the values the feeds hold at that point.

    ``assign`` is ``(placeholder x, assign op)``, used for resource variables.
    """
    join = joiner(parts)
    by_value = fed_by_value(variables)
    fed_tensors = [v.op.outputs[0] for v in variables] if by_value else []
    dtypes = [v.dtype.base_dtype.as_numpy_dtype for v in variables]
    # A part or fetch that is itself fed (a reference variable's value, a feed_dict key) is its
    # fed value, as session.run gives it: a callable refuses to feed and fetch one tensor.
    source = {t.name: ("x", i) for i, t in enumerate(fed_tensors)}
    source.update({k.name: ("feed", j) for j, k in enumerate(keys)})
    wanted, n_parts = [*parts, *fetches], len(parts)
    own = {i for i, f in enumerate(wanted) if getattr(f, "name", None) not in source}
    computed = [f for i, f in enumerate(wanted) if i in own]
    inline = runs_inline([t for t in computed if isinstance(t, tf.Tensor)])
    run = make_callable(session, computed, [*fed_tensors, *keys], inline=inline)
    placeholder, assign_op = assign
    write = None
    if not by_value:  # x's own size decides for its assignment
        write = make_callable(session, [], [placeholder], [assign_op], inline=runs_inline([], [assign_op]))

    def bind(feeds: LiveFeeds) -> Evaluator:
        fed: dict[int, list[np.ndarray]] = {feeds.version: _values(feeds.values, keys)}

        def point(x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
            if feeds.version not in fed:  # a callback gave feed_dict new values
                fed.clear()
                fed[feeds.version] = _values(feeds.values, keys)
            feed_values = fed[feeds.version]
            if write is None:  # reference variables: their values fed, one call
                values = [p.astype(d, copy=False) for p, d in zip(layout.unpack_np(x), dtypes, strict=True)]
            else:  # resource variables: assigned first
                write(np.asarray(x, np.float64))
                values = []
            got = list(run(*values, *feed_values))
            if len(own) < len(wanted):
                out = iter(got)
                given = {"x": values, "feed": feed_values}
                got = [
                    next(out) if i in own else np.array(given[source[w.name][0]][source[w.name][1]])
                    for i, w in enumerate(wanted)
                ]
            return join(got[:n_parts]), got[n_parts:]

        return point

    return bind


def _values(feeds: dict[Any, Any], keys: list[Any]) -> list[np.ndarray]:
    """The fed values in the callable's order and dtypes."""
    return [np.asarray(feeds[k], k.dtype.base_dtype.as_numpy_dtype) for k in keys]

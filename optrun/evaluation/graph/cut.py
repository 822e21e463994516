"""The graph backend's fast path: the evaluated subgraph, cut out into a TF2 function.

A ``Session`` call costs hundreds of microseconds however small the graph
(``make bench``, case "TF1 graph"). The outputs, though, are a pure function
of the variables' values and the fed tensors. So the subgraph they depend on
is copied out of the user's ``GraphDef`` with every variable read and every
fed tensor turned into a placeholder, pruned into a function of those inputs
(``tf.compat.v1.wrap_function``), and called with the packed ``x`` through
:class:`optrun.evaluation.fastcall.FastCaller`. Variables outside ``var_list`` and the
fed values are inputs too, read when ``minimize`` starts and again after each
callback (:mod:`optrun.evaluation.graph.feeds`); the user's graph and session are
never changed.

Anything the cut cannot express (a variable used other than by a read, an
op with state such as a random op, an assert or a lookup table, an op with
several outputs that is fed, a fetch that is not a tensor) makes
:meth:`PrunedFunction.build` return None, and the session path serves.
:mod:`optrun.evaluation.graph.fastpath` compares the two at the first points and keeps
the session path when they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context

from optrun.evaluation.fastcall import FastCaller
from optrun.evaluation.graph.feeds import LiveFeeds
from optrun.evaluation.packing import Layout
from optrun.evaluation.point import Evaluator
from optrun.evaluation.xla_kernels import check_compiles

_VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp"}


class PrunedFunction:
    """A traced function ``(x, *extras) -> (packed, fetched)`` standing for a graph's outputs.

    ``sources`` says where each extra input comes from: ``("read", tensor)``,
    a variable outside ``var_list`` read from the session; ``("feed", key)``,
    a ``feed_dict`` value.
    """

    def __init__(self, concrete: Any, sources: list[tuple[str, Any]]) -> None:
        self.concrete = concrete
        self.sources = sources
        self._shared: Evaluator | None = None

    @classmethod
    def build(
        cls,
        graph: Any,
        targets: Sequence[Any],
        variables: Sequence[Any],
        layout: Layout,
        feed_keys: Sequence[Any],
        jit: bool,
        check: bool = False,
    ) -> PrunedFunction | None:
        """Cuts ``targets`` out of ``graph``; None when the cut is not possible (it may also raise).

        Call it under ``context.eager_mode()``, so that nothing lands in the user's graph. With
        ``jit`` and ``check``, an op XLA has no kernel for raises here, before any compile
        (:func:`~optrun.evaluation.xla_kernels.check_compiles`).
        """
        if not all(isinstance(t, tf.Tensor) for t in targets):
            return None
        owner = {_variable_op(v).name: i for i, v in enumerate(variables)}
        cuts = _find_cuts(targets, {k.name for k in feed_keys if isinstance(k, tf.Tensor)})
        if cuts is None:
            return None
        inputs: list[tuple[str, Any]] = []  # ("x", variable index) or an extra source
        for tensor, kind in cuts:
            if kind == "feed":
                inputs.append(("feed", tensor))
            elif tensor.op.inputs[0].op.name in owner:
                inputs.append(("x", owner[tensor.op.inputs[0].op.name]))
            else:
                inputs.append(("read", tensor))
        graph_def = _cut_graph_def(graph, [t for t, _ in cuts], [t.op.name for t in targets])
        wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
        pruned = wrapped.prune(
            [wrapped.graph.get_tensor_by_name(t.name) for t, _ in cuts],
            [wrapped.graph.get_tensor_by_name(t.name) for t in targets],
        )
        for op in pruned.graph.get_operations():  # any state left means the cut missed a use
            if _stateful(op):
                return None
        extras = [(kind, t) for kind, t in inputs if kind != "x"]

        def body(x: tf.Tensor, *extra: tf.Tensor) -> Any:
            pieces = layout.unpack_tf(x)
            given = iter(extra)
            args = [pieces[ref] if kind == "x" else next(given) for kind, ref in inputs]
            out = pruned(*args)
            return out[0], list(out[1:])

        spec = [tf.TensorSpec([layout.size], tf.float64)] + [
            tf.TensorSpec(t.shape, t.dtype.base_dtype) for _, t in extras
        ]
        function = tf.function(body, input_signature=spec, jit_compile=jit)
        if jit and check:
            check_compiles(function, spec)  # an op with no XLA kernel: refused without TF's C++ log
        return cls(function.get_concrete_function(), extras)

    def caller(self, session: Any, feeds: LiveFeeds) -> Evaluator:
        """``x -> (packed, fetched)`` with this ``minimize``'s extra inputs, run eagerly.

        Without extra inputs one caller serves every ``minimize`` (its thin
        path stays trusted).
        """
        if not self.sources:
            if self._shared is None:
                self._shared = self.fast_caller([])[0]
            return self._shared
        return _Refreshed(self, session, feeds)

    def extra_values(self, session: Any, feeds: dict[Any, Any]) -> list[Any]:
        """The extra inputs' values now: the variables read from ``session``, the fed ones."""
        reads = [t for kind, t in self.sources if kind == "read"]
        read_values = iter(session.run(reads) if reads else [])
        return [feeds[t] if kind == "feed" else next(read_values) for kind, t in self.sources]

    def fast_caller(self, values: list[Any]) -> tuple[Evaluator, tuple[Any, ...]]:
        """A :class:`FastCaller` fed ``values`` as the extra inputs, run eagerly, and those inputs."""
        with context.eager_mode():  # its host tensors are eager ones, whatever the caller's mode
            dtypes = [t.dtype.base_dtype for _, t in self.sources]
            extras = tuple(tf.constant(v, dtype) for v, dtype in zip(values, dtypes, strict=True))
            return _in_eager_mode(FastCaller(self.concrete, extras)), extras


class _Refreshed:
    """A function's caller whose extra inputs follow the caller's: made anew when a callback put
    another value in ``feed_dict``, and, after a ``step_callback``, when a fed array changed in
    place or a variable outside ``var_list`` was assigned (TF1 fed and read them at every point)."""

    def __init__(self, function: PrunedFunction, session: Any, feeds: LiveFeeds) -> None:
        self._function, self._session, self._feeds = function, session, feeds
        self._make()

    def _make(self) -> None:
        self._version, self._touched = self._feeds.version, self._feeds.touched
        values = self._function.extra_values(self._session, self._feeds.values)
        self._call, self._extras = self._function.fast_caller(values)

    def _moved(self) -> bool:
        values = self._function.extra_values(self._session, self._feeds.values)
        # np.asarray: a view of each host tensor's buffer, not a copy
        return not all(
            np.array_equal(v, np.asarray(e), equal_nan=True)
            for v, e in zip(values, self._extras, strict=True)
        )

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        if self._feeds.version != self._version:
            self._make()
        elif self._feeds.touched != self._touched:
            self._touched = self._feeds.touched
            if self._moved():
                self._make()
        return self._call(x)


def _in_eager_mode(call: Evaluator) -> Evaluator:
    """Runs ``call`` eagerly, also while the user's graph is the default one."""

    def eager(x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        with context.eager_mode():
            return call(x)

    return eager


def _variable_op(var: Any) -> Any:
    handle = getattr(var, "handle", None)
    if handle is not None and getattr(handle, "dtype", None) == tf.resource:
        return handle.op
    return var.op


def _find_cuts(targets: Sequence[tf.Tensor], fed: set[str]) -> list[tuple[tf.Tensor, str]] | None:
    """Walks back from ``targets``: the variable reads and fed tensors to turn into inputs.

    Returns None when a variable is used other than through a plain read.
    """
    cuts: dict[str, tuple[tf.Tensor, str]] = {}
    seen: set[str] = set()
    stack = [t.op for t in targets]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.outputs and any(t.name in fed for t in op.outputs):
            if len(op.outputs) != 1:
                return None
            cuts[op.name] = (op.outputs[0], "feed")
            continue
        if _is_read(op):
            cuts[op.name] = (op.outputs[0], "read")
            continue
        if _stateful(op):
            return None
        stack.extend(i.op for i in op.inputs)
        stack.extend(op.control_inputs)
    return sorted(cuts.values(), key=lambda cut: cut[0].name)


def _stateful(op: Any) -> bool:
    """A variable, an op that takes a variable (or any resource) other than by value, or an op
    with state of its own (random ops, asserts, queues): a copy would not give the session's numbers."""
    if op.type in _VARIABLE_OPS or op.op_def.is_stateful:
        return True
    return any(i.dtype == tf.resource or i.dtype._is_ref_dtype for i in op.inputs)


def _is_read(op: Any) -> bool:
    """A resource variable's ``ReadVariableOp``, or the ``Identity`` that snapshots a ref variable."""
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        return False
    source = op.inputs[0].op
    if op.type == "ReadVariableOp":
        return source.type == "VarHandleOp"
    return op.type == "Identity" and op.inputs[0].dtype._is_ref_dtype and source.type in _VARIABLE_OPS


def _cut_graph_def(graph: Any, cuts: Sequence[tf.Tensor], outputs: Sequence[str]) -> Any:
    """The ``GraphDef`` of what ``outputs`` need, each cut tensor's op a placeholder; no devices."""
    graph_def = graph.as_graph_def()
    by_name = {t.op.name: t for t in cuts}
    for node in graph_def.node:
        node.device = ""
        tensor = by_name.get(node.name)
        if tensor is None:
            continue
        node.op = "Placeholder"
        del node.input[:]
        node.attr.clear()
        node.attr["dtype"].type = tensor.dtype.base_dtype.as_datatype_enum
        node.attr["shape"].shape.CopyFrom(tensor.shape.as_proto())
    return _needed(graph_def, outputs)


def _needed(graph_def: Any, outputs: Sequence[str]) -> Any:
    """The nodes ``outputs`` depend on (data and control inputs), with the function library."""
    nodes = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        stack.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    out.node.extend(node for node in graph_def.node if node.name in keep)
    return out

"""The TF2 default's first tier: the traced evaluation, pure, run by a session.

A plain ``tf.function`` call pays TensorFlow's function runtime on every
point. A TF1 ``Session`` callable pays less: on a graph of small tensors
(:mod:`optrun.evaluation.small_graph`) it runs the ops on the calling thread,
as graph mode does (:mod:`optrun.evaluation.inline`), and on larger ones in
the session's thread pool, still sooner than the function (``python -m bench
tier1`` and ``tfruntime``; on the Burgers PINN, ``endtoendtf2``). A session
cannot use the eager variables, but the traced evaluation
(:mod:`optrun.evaluation.eager`) only writes ``x`` into them and reads it
back, so a copy of its graph in which every read of a variable is the value
the evaluation assigned to it::

    ReadVariableOp(v)  ->  Identity(value assigned to v)      AssignVariableOp(v, .) dropped

computes the same outputs from ``x`` alone (Grappler may rewrite the session's
copy a little differently from the function: the last bits can differ).
Captured tensors (data) become constants. The graph qualifies only when that
rewrite is exact and cheap: at most :data:`MAX_OPS` operations and
:data:`MAX_CONSTANT_BYTES` of graph and data (no gain per point is
established past that size, case ``tier1``, and the copy's memory grows
with the data), every captured resource is one of the optimized
variables, each assigned once and otherwise only read, and no op runs
Python, calls a function or holds a variant (a dataset, a tensor list).
Otherwise the plain ``tf.function`` serves.

On this tier the variables keep their values while the solver evaluates (as
TF1's interface fed them); ``minimize`` assigns the result at the end, and
tier 2, once it serves, writes each point as the plain function does. An
error in the session is raised again through the plain function, so that it
names the user's own line.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.evaluation.inline import runs_inline
from optrun.evaluation.small_graph import calls_functions

logger = logging.getLogger("optrun")

Result = tuple[np.ndarray, list[np.ndarray]]
Evaluate = Callable[[np.ndarray], Result]
#: Ops that run Python: their functions live in the process's registry, tied to the traced graph.
PYTHON_OPS = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})
#: The most operations of a graph run by a session: beyond, no gain is established (case tier1).
MAX_OPS = 2_000
#: The most bytes of the pure graph: captured data (tensors the loss closes over, which become
#: constants) and the traced graph with the data baked into it.
MAX_CONSTANT_BYTES = 16 * 2**20


def _nbytes(tensor: Any) -> int:
    """A captured tensor's size in bytes (an unknown shape or strings, whose size the dtype does
    not tell, count as too large)."""
    count = tensor.shape.num_elements()
    if count is None or tensor.dtype == tf.string:
        return MAX_CONSTANT_BYTES + 1
    return count * tensor.dtype.size


def _may_qualify(ops: Sequence[Any]) -> bool:
    """Whether the ops allow the rewrite: few enough, none running Python, calling a function or
    holding a variant."""
    if len(ops) > MAX_OPS or any(op.type in PYTHON_OPS or calls_functions(op) for op in ops):
        return False
    return not any(t.dtype == tf.variant for op in ops for t in (*op.inputs, *op.outputs))


def pure_graph_def(concrete: Any, variables: Sequence[Any]) -> Any:
    """``concrete``'s graph with the variables' reads replaced by the values assigned to them, as
    a ``GraphDef`` fed only ``x``; None when the graph does not qualify (see the module)."""
    graph = concrete.graph
    if not _may_qualify(graph.get_operations()):
        return None
    handles = {id(v.handle) for v in variables}
    resources: set[str] = set()
    constants: dict[str, Any] = {}
    for external, internal in graph.captures:
        if internal.dtype == tf.resource:
            if id(external) not in handles:  # another variable, a table, ...: its state is not ours
                return None
            resources.add(internal.op.name)
        else:
            constants[internal.op.name] = external
    definition = graph.as_graph_def()
    # Captured data becomes constants; data baked into the trace already is one.
    if sum(_nbytes(t) for t in constants.values()) + definition.ByteSize() > MAX_CONSTANT_BYTES:
        return None
    assigned: dict[str, tuple[str, str]] = {}  # resource -> (the assign op, the value it assigns)
    reads: dict[str, str] = {}  # a read op -> its resource
    for node in definition.node:
        sources = [name.split(":")[0] for name in node.input if not name.startswith("^")]
        used = [s for s in sources if s in resources]
        if not used:
            continue
        if node.op == "AssignVariableOp" and sources[0] in resources and sources[0] not in assigned:
            assigned[sources[0]] = (node.name, node.input[1])
        elif node.op == "ReadVariableOp":
            reads[node.name] = sources[0]
        else:  # a second assign, a gather, a shape read: not a plain write-then-read
            return None
    if set(assigned) != resources:
        return None
    return _rewritten(definition, resources, assigned, reads, constants)


def _rewritten(
    definition: Any,
    resources: set[str],
    assigned: dict[str, tuple[str, str]],
    reads: dict[str, str],
    constants: dict[str, Any],
) -> Any:
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.framework import tensor_util

    dropped = resources | {op for op, _ in assigned.values()}
    pure = graph_pb2.GraphDef()
    pure.versions.CopyFrom(definition.versions)
    for node in definition.node:
        if node.name in dropped:
            continue
        new = pure.node.add()
        new.CopyFrom(node)
        if node.name in reads:
            new.op, dtype = "Identity", node.attr["dtype"]
            del new.input[:]
            new.input.append(assigned[reads[node.name]][1])
            new.attr.clear()
            new.attr["T"].CopyFrom(dtype)
        elif node.name in constants:
            value = constants[node.name].numpy()
            new.op = "Const"
            del new.input[:]
            new.attr.clear()
            new.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
            new.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))
        kept = [name for name in new.input if name.lstrip("^").split(":")[0] not in dropped]
        del new.input[:]
        new.input.extend(kept)
        _drop_colocation(new, dropped)
    return pure


def _drop_colocation(node: Any, dropped: set[str]) -> None:
    """Removes ``node``'s colocation with dropped nodes (``_class: loc:@name``), which the import
    would refuse as a colocation with an unknown node."""
    if "_class" not in node.attr:
        return
    kept = [c for c in node.attr["_class"].list.s if c.decode()[len("loc:@") :] not in dropped]
    if kept:
        del node.attr["_class"].list.s[:]
        node.attr["_class"].list.s.extend(kept)
    else:
        del node.attr["_class"]


def _imported(definition: Any) -> Any:
    """A ``tf.Graph`` holding ``definition``, for a session.

    Imported through TensorFlow's C API alone where that works (:func:`_c_import`), else through
    the public import.
    """
    graph = tf.Graph()
    try:
        _c_import(graph, definition)
        return graph
    except (AttributeError, ImportError, TypeError) as error:  # internals changed: the public import
        logger.debug("importing the pure graph through the C API failed (%s)", error)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(definition, name="")
    return graph


def _c_import(graph: Any, definition: Any) -> None:
    """Adds ``definition``'s nodes to ``graph``'s C graph only: a session reads nothing else, and
    the Python object the public import also builds for each node is, on a graph of thousands of
    operations, most of what the copy adds to the start-up."""
    from tensorflow.python.client import pywrap_tf_session as c_api
    from tensorflow.python.framework import c_api_util

    options = c_api_util.ScopedTFImportGraphDefOptions()
    buffer = c_api.TF_NewBufferFromString(definition.SerializeToString())
    try:
        with graph._c_graph.get() as c_graph:
            results = c_api.TF_GraphImportGraphDefWithResults(c_graph, buffer, options.options)
        c_api_util.ScopedTFImportGraphDefResults(results)  # frees them
    finally:
        c_api.TF_DeleteBuffer(buffer)


class SessionCall:
    """``x -> (packed, fetched)``: a pure graph (:func:`pure_graph_def`) run by its own session, on
    the calling thread when the graph is small (:mod:`optrun.evaluation.inline`).

    Args:
        definition: the pure graph.
        concrete: the traced function it was made from (its input and output names).
        fallback: makes the plain evaluation, which raises an error the session met with the
            user's own source line (made only then).
        options: the plain function's ``FunctionCallOptions`` (:mod:`optrun.evaluation.grappler`),
            whose Grappler settings the session takes; None: TensorFlow's own.
    """

    def __init__(
        self, definition: Any, concrete: Any, fallback: Callable[[], Evaluate], options: Any = None
    ) -> None:
        from tensorflow.core.protobuf import config_pb2

        graph = _imported(definition)
        config = None
        if options is not None:  # Grappler's rounds as for the plain function (OPTRUN_GRAPPLER)
            config = config_pb2.ConfigProto.FromString(options.config_proto_serialized)
        self._session = tf.compat.v1.Session(graph=graph, config=config)
        weakref.finalize(self, self._session.close)
        options = config_pb2.CallableOptions(
            feed=[concrete.inputs[0].name], fetch=[t.name for t in concrete.outputs]
        )
        self.inline = runs_inline(concrete.outputs)
        if self.inline:
            options.run_options.inter_op_thread_pool = -1  # the calling thread runs the ops
        self._run = self._session._make_callable_from_options(options)
        self._fallback = fallback
        self._plain: Evaluate | None = None
        self._trusted = True

    def __call__(self, x: np.ndarray) -> Result:
        if self._trusted:
            try:
                outputs = self._run(x)
                return outputs[0], list(outputs[1:])
            except tf.errors.OpError as error:
                logger.debug("session call failed (%s); evaluating with the plain function", error)
        if self._plain is None:
            self._plain = self._fallback()
        result = self._plain(x)  # raises the session's error again, with the user's line in it
        if self._trusted:  # it did not: the plain function serves from now on
            self._trusted = False
            self._session.close()  # its constants and buffers go
        return result

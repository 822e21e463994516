"""Whether an evaluation does more than compute: then each point runs exactly once.

Two things in the default mode evaluate a point more than once: the thin call
path is checked against the public call at its first points
(:mod:`optrun.evaluation.fastcall`), and the XLA tier is tried in the
background, checked at the switch and timed beside the first tier
(:mod:`optrun.evaluation.tiers`). That is harmless for a pure loss, but not
for one with side effects: a counter ``assign_add``, a Keras layer updating
its statistics, a random draw, a ``tf.print``, a pass over a dataset. For such
a loss optrun calls the traced function once per point, by the public call,
and never builds the XLA tier, so it runs as often as the solver evaluates
(``nfev``) and sees the same state as with ``jit_compile=False``.

A side effect is any stateful operation of the traced graph or of the
functions it calls, except::

    reads of variables (ReadVariableOp, ResourceGather, ...)   asserts
    the calls into nested functions (walked)   the evaluation's own writes of x

A graph whose nested functions cannot be walked (TensorFlow internals changed)
is judged on its outer operations alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optrun.evaluation.called import called_functions

#: Stateful operations that change nothing a later evaluation or the user could see.
HARMLESS = frozenset(
    {
        "ReadVariableOp",
        "VarHandleOp",
        "VariableShape",
        "ResourceGather",
        "ResourceGatherNd",
        "Assert",
        "CheckNumerics",
        "CheckNumericsV2",
        "LookupTableFind",
        "LookupTableFindV2",
        "LookupTableSize",
        "LookupTableSizeV2",
        # Calls into functions (nested tf.functions, control flow): their bodies are walked.
        "StatefulPartitionedCall",
        "PartitionedCall",
        "If",
        "While",
        "Case",
    }
)


def side_effect(concrete: Any, variables: Sequence[Any]) -> str:
    """The first operation of ``concrete`` with a side effect, as ``"type 'name'"``; empty if none.

    Args:
        concrete: the traced evaluation.
        variables: the optimized variables, whose assignment from ``x`` is the evaluation's own.
    """
    graph = concrete.graph
    # A distributed variable's assignment writes each of its components.
    handles = {id(part.handle) for v in variables for part in getattr(v, "values", None) or (v,)}
    own = {internal.op.name for external, internal in graph.captures if id(external) in handles}
    for op in graph.get_operations():
        if not op.op_def.is_stateful or op.type in HARMLESS:
            continue
        if op.type == "AssignVariableOp" and op.inputs[0].op.name in own:
            continue
        return f"{op.type} '{op.name}'"
    from tensorflow.python.framework import op_def_registry

    try:
        for atomic in called_functions(concrete):
            for node in atomic.definition.node_def:
                op_def = op_def_registry.get(node.op)  # None: a call of a function by its name
                if op_def is not None and op_def.is_stateful and node.op not in HARMLESS:
                    return f"{node.op} '{node.name}'"
    except Exception:  # noqa: BLE001 - internals changed: the outer graph is all we can judge
        pass
    return ""

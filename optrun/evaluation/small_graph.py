"""Whether a graph computes only small tensors: calls whose cost is dispatch, not arithmetic.

On such a graph each op's kernel takes about as long as handing it to
another thread, so one thread does better: graph mode runs its session calls
on the caller's thread (:mod:`optrun.evaluation.inline`), and so does
the TF2 default's first tier (:mod:`optrun.evaluation.pure_graph`). Decided
from static shapes::

    small  <=>  ops <= MAX_OPS  and  every output of every op has a known shape
                of at most MAX_ELEMENTS elements  and  no op calls a function

over the given ops and all they depend on. Ops that call functions (control
flow v2, a nested ``tf.function``) hide their own tensors, so a graph with
one counts as large: the walk errs towards "large".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The most elements of any tensor a small graph computes: about where one element-wise op on a
#: 2-core machine takes as long as a thread switch.
MAX_ELEMENTS = 16_384
#: The most ops a small graph runs (more are walked no further).
MAX_OPS = 2_000


def small_graph(ops: Iterable[Any]) -> bool:
    """Whether ``ops`` and every op they depend on (inputs and control inputs) are small."""
    todo = list(ops)
    seen: set[int] = set()
    while todo:
        op = todo.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if len(seen) > MAX_OPS or calls_functions(op) or not all(_small(t) for t in op.outputs):
            return False
        todo.extend(t.op for t in op.inputs)
        todo.extend(op.control_inputs)
    return True


def _small(tensor: Any) -> bool:
    count = tensor.shape.num_elements() if tensor.shape.rank is not None else None
    return count is not None and count <= MAX_ELEMENTS


def calls_functions(op: Any) -> bool:
    """Whether ``op`` runs functions (``PartitionedCall``, control flow v2's ``If`` and ``While``),
    whose tensors the walk cannot see."""
    return any(value.HasField("func") or len(value.list.func) for value in op.node_def.attr.values())

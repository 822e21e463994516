"""The functions a traced function calls, directly or not: nested ``tf.function``s, the branches
and bodies of its control flow, their gradients.

Walked through TensorFlow internals (``inference_fn``, ``children``); when those are missing it
raises, and each caller decides what that means for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def called_functions(concrete: Any) -> Iterator[Any]:
    """Each ``AtomicFunction`` that ``concrete`` calls, once, itself not included."""
    seen: set[bytes] = set()
    todo = list(concrete.inference_fn.children)
    while todo:
        atomic = todo.pop()
        if atomic.name in seen:
            continue
        seen.add(atomic.name)
        yield atomic
        todo.extend(atomic.children)


def op_types(concrete: Any) -> Iterator[str]:
    """The type of every operation of ``concrete``'s graph and of the functions it calls, one
    per operation (raises, partway, where the internals are missing)."""
    yield from (op.type for op in concrete.graph.get_operations())
    for atomic in called_functions(concrete):
        yield from (node.op for node in atomic.definition.node_def)

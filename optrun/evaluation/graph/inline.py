"""Whether a session callable runs its ops on the calling thread.

A ``Session`` hands each run to its inter-op thread pool and waits for it:
two thread switches per call, and, between the solver's calls, pool threads
that have gone to sleep and must be woken. On a graph of small tensors that
costs more than its arithmetic: on Rosenbrock N=100 an evaluation of an
L-BFGS-B run, scipy's work included, took 101 us through the pool and 54 us
on the calling thread (``python -m bench tf1rosen``). A graph with large
tensors gains from the pool running independent ops side by side, so the
choice is made from the static shapes of what the call computes::

    inline  <=>  ops <= MAX_OPS  and  every output of every op has a known shape
                 of at most MAX_ELEMENTS elements  and  no op calls a function

over the ops the fetches depend on (all of them, fed or not: the walk errs
towards the pool). Ops that call functions (control flow v2, a nested
``tf.function``) hide their own tensors, so they keep the pool.

Kernels keep their intra-op threads either way, and each op computes the same
values: only which thread runs it changes. ``OPTRUN_SESSION_RUN=inline`` or
``pool`` fixes the choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optrun.evaluation import switches

#: The most elements of any tensor an inline call computes: about where one element-wise op on a
#: 2-core machine takes as long as a thread switch.
MAX_ELEMENTS = 16_384
#: The most ops an inline call runs (more are walked no further: the pool serves).
MAX_OPS = 2_000


def runs_inline(fetches: Iterable[Any], targets: Iterable[Any] = ()) -> bool:
    """Whether a call computing ``fetches`` and running ``targets`` (ops) should run inline."""
    setting = switches.read(switches.SESSION_RUN)
    if setting != "auto":
        return setting == "inline"
    todo = [t.op for t in fetches] + list(targets)
    seen: set[int] = set()
    while todo:
        op = todo.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if len(seen) > MAX_OPS or _calls_functions(op) or not all(_small(t) for t in op.outputs):
            return False
        todo.extend(t.op for t in op.inputs)
        todo.extend(op.control_inputs)
    return True


def _small(tensor: Any) -> bool:
    count = tensor.shape.num_elements() if tensor.shape.rank is not None else None
    return count is not None and count <= MAX_ELEMENTS


def _calls_functions(op: Any) -> bool:
    """Whether ``op`` runs functions (``PartitionedCall``, control flow v2's ``If`` and ``While``),
    whose tensors the walk cannot see and whose ops would run inline too."""
    return any(value.HasField("func") or len(value.list.func) for value in op.node_def.attr.values())

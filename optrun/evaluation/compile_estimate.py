"""What XLA's compile of a traced evaluation is expected to cost, before it runs.

The default's tier policy (:mod:`optrun.evaluation.tiers`) decides whether and
when to build the XLA tier from this estimate, the smaller of two guesses::

    estimate = min(COMPILE_PER_TRACE * trace_s, COMPILE_PER_OP * ops)

``trace_s`` is the trace the XLA tier compiles (for code that needs AutoGraph,
the conversion of the functions it calls happens within it) and ``ops`` the
operations in its graph that are not constants. The trace scales
with the machine, but a small graph's trace is mostly TensorFlow's fixed cost
per trace (the first in a process most of all), which overstates its compile;
the operation count caps that. ``python -m bench compilecost`` measures both
guesses against the compile on five kinds of problem.
"""

from __future__ import annotations

from typing import Any

from optrun.evaluation.called import op_types

#: XLA's compile, in multiples of the trace it compiles (measured: 2.8-15.5x on the bench's
#: problems, 6.3-6.5x on the PINN, where the trace is what the estimate rests on; ``python -m
#: bench compilecost``).
COMPILE_PER_TRACE = 6.0
#: Seconds of XLA's compile per non-constant operation of the traced graph (measured: 1.6 ms on
#: Rosenbrock, 2.0-2.1 ms on logistic regression and the PINN, 2.9 ms on an MLP, 6.3 ms on a
#: Cholesky; ``python -m bench compilecost``).
COMPILE_PER_OP = 2.0e-3


def graph_ops(concrete: Any) -> int:
    """The operations of a concrete function's graph that are not constants, those of the
    functions it calls included (a nested ``tf.function``, the branches and bodies of control
    flow, their gradients): XLA compiles them all.

    The outer graph is counted from its operations, so that constants baked into it (data) are
    never serialized; the called functions through TensorFlow's internals (``inference_fn``,
    ``children``), and where those are missing the outer graph alone is counted.
    """
    try:
        return sum(1 for op_type in op_types(concrete) if op_type != "Const")
    except Exception:  # noqa: BLE001 - internals changed: the outer graph is still a fair guess
        return sum(1 for op in concrete.graph.get_operations() if op.type != "Const")


def compile_estimate(concrete: Any, trace_s: float) -> float:
    """Seconds XLA is expected to take to compile ``concrete``, traced in ``trace_s`` seconds."""
    return min(COMPILE_PER_TRACE * trace_s, COMPILE_PER_OP * graph_ops(concrete))

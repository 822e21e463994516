"""Freezing a traced function's stack traces before another thread compiles it.

TensorFlow keeps the Python stack trace of every traced op and turns it into
file/line frames on first use, under a per-trace lock that then takes the GIL.
XLA's compiler reads those frames without the GIL; an error in the same
function on the solver's thread reads them while holding the GIL. When the
two meet on one trace, each waits for what the other holds: the process
hangs. Tier 2 compiles the very trace tier 1 runs, so before its background
compile :func:`freeze` turns every trace of the function (and of the
functions it calls) into frames, with the GIL held; later reads of a frozen
trace take its lock only briefly and never the GIL.
"""

from __future__ import annotations

from typing import Any

from optrun.evaluation.called import called_functions


def freeze(concrete: Any) -> int:
    """Freezes the stack traces of ``concrete`` and every function it calls; returns how many
    functions it froze. Uses TensorFlow internals: when they are missing, it raises and the
    caller must not compile in the background."""
    from tensorflow.python.eager import context

    ctx = context.context()
    frozen = 0
    for atomic in (concrete.inference_fn, *called_functions(concrete)):
        ctx.get_graph_debug_info(atomic.name)  # builds the frames, which freezes each trace
        frozen += 1
    return frozen

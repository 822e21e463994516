"""How Grappler rewrites the plain evaluation: its passes once, where TensorFlow runs them twice.

Grappler, TensorFlow's graph optimizer, rewrites a traced function at its
first call, at a cost that grows with the graph, and TensorFlow runs its
passes twice. On optrun's evaluations the second round finds next to nothing
to rewrite, while the first is worth a great deal: one evaluation of the
constrained Rosenbrock chain of ``python -m bench constrained`` (304 ops, 10
constraints) takes about 4x as long without Grappler (``python -m bench
overhead``), the work its arithmetic and constant-folding rewrites save.

So by default (``OPTRUN_GRAPPLER=once``) optrun calls the plain
``tf.function`` (tier 1, and ``jit_compile=False``) with one round of
Grappler's passes: the first call comes sooner (on the bench's Burgers PINN,
``python -m bench firsteval``) and later calls are as fast.
``OPTRUN_GRAPPLER=tensorflow`` keeps TensorFlow's own settings, and ``off``
skips Grappler altogether (a faster first call on some large graphs, at the
risk of much slower later ones). The options go with optrun's own calls only
(as TensorFlow's own calls pass theirs), so every other function of the
process is optimized as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from optrun.evaluation import switches


def plain_call_options(setting: str | None = None) -> Any:
    """The ``FunctionCallOptions`` to call the plain evaluation with; None: the thread's own.

    Args:
        setting: ``once``, ``tensorflow`` or ``off``; None reads ``OPTRUN_GRAPPLER``.
    """
    setting = switches.read(switches.GRAPPLER) if setting is None else setting
    if setting == "tensorflow":
        return None
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    from tensorflow.python.eager import context

    config = config_pb2.ConfigProto()
    config.ParseFromString(context.context().function_call_options.config_proto_serialized)
    rewrites = config.graph_options.rewrite_options
    if setting == "off":
        rewrites.disable_meta_optimizer = True
    else:
        rewrites.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
    return context.FunctionCallOptions(config_proto=config)


@contextlib.contextmanager
def calling_with(options: Any) -> Iterator[None]:
    """Within the block, this thread's function calls pass ``options`` (None: nothing changes)."""
    if options is None:
        yield
        return
    from tensorflow.python.eager import context

    ctx = context.context()
    before = ctx.function_call_options
    ctx.function_call_options = options
    try:
        yield
    finally:
        ctx.function_call_options = before

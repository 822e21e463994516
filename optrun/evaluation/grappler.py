"""Whether the plain evaluation runs under Grappler: on a small graph yes, on a large one no.

Grappler, TensorFlow's graph optimizer, rewrites a traced function at its
first call, at a cost that grows with the graph. Whether that pays depends on
the graph:

* on a small one, whose ops are cheap and many of them overhead, the rewrites
  make each later call a little faster for a first call only a few
  milliseconds longer (Rosenbrock N=100, 84 ops: ``python -m bench rosen100``
  with and without ``OPTRUN_GRAPPLER=off``);
* on a large one, whose time goes into its arithmetic, the first call takes
  tens of milliseconds longer and the later ones are no faster (the bench's
  Burgers PINN, 633 ops: ``python -m bench firsteval``), so a short or
  medium run only loses; a long run moves to the XLA tier anyway.

So under ``OPTRUN_GRAPPLER=auto`` (the default) the plain ``tf.function``
(tier 1, and ``jit_compile=False``) is called with Grappler's meta-optimizer
off when its graph has more than :data:`MAX_NODES` ops, and as TensorFlow
calls it otherwise. The op count is the traced graph's own, so the choice is
the same in every run of a program. ``on`` and ``off`` choose for every graph.
The setting goes with optrun's own calls only (as TensorFlow's own calls pass
theirs), so every other function of the process is optimized as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from optrun.evaluation import switches

#: Under ``auto``, graphs with more ops than this are called without Grappler.
MAX_NODES = 250


def wanted(nodes: int) -> bool:
    """Whether a plain evaluation of ``nodes`` ops runs under Grappler, as ``OPTRUN_GRAPPLER`` says."""
    setting = switches.read(switches.GRAPPLER)
    return setting == "on" or (setting == "auto" and nodes <= MAX_NODES)


def plain_call_options(concrete: Any) -> Any:
    """The ``FunctionCallOptions`` to call the plain evaluation ``concrete`` with; None: the thread's own."""
    if wanted(len(concrete.graph.get_operations())):
        return None
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    config = config_pb2.ConfigProto()
    config.ParseFromString(context.context().function_call_options.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
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

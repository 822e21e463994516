"""Whether the plain evaluation runs under Grappler: yes, unless ``OPTRUN_GRAPPLER=off``.

Grappler, TensorFlow's graph optimizer, rewrites a traced function when it is
first called. Whether that pays depends on the problem: on the bench's eager
Burgers PINN (``python -m bench firsteval``) the first call of the plain
evaluation takes longer with it, and later calls are no faster; on
Rosenbrock N=100 (``python -m bench rosen100``) each later call is faster
with it, which a long run feels more. So optrun keeps TensorFlow's default,
and ``OPTRUN_GRAPPLER=off`` calls the plain ``tf.function`` (tier 1, and
``jit_compile=False``) with Grappler's meta-optimizer off. The setting goes
with optrun's own calls only (as TensorFlow's own calls pass theirs), so every
other function of the process is optimized as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from optrun.errors import InvalidArgumentError

#: ``on`` (TensorFlow's default) or ``off``: Grappler for the plain evaluation.
GRAPPLER_VARIABLE = "OPTRUN_GRAPPLER"


def plain_call_options() -> Any:
    """The ``FunctionCallOptions`` to call the plain evaluation with; None: the thread's own."""
    setting = os.environ.get(GRAPPLER_VARIABLE, "on")
    if setting not in ("on", "off"):
        raise InvalidArgumentError(
            f"{GRAPPLER_VARIABLE} must be on or off; got {setting!r}. Unset it to keep Grappler on."
        )
    if setting == "on":
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

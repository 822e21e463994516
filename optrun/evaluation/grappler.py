"""The Grappler setting the plain evaluation runs under: off, on a CPU-only host left at defaults.

Grappler rewrites a traced function when it is first called and, on CPU,
gained nothing here that pays for that: on the bench's eager Burgers PINN
(``python -m bench endtoend``) the first call took ~60 ms longer with it and
each later one about as long or longer; on a small Keras MLP and a small CNN
the first call took 15-25 ms longer, later ones the same; on Rosenbrock
N=100 the whole run came out even. So the plain ``tf.function`` (tier 1, and
``jit_compile=False``) is called with Grappler's meta-optimizer off, per call
(the setting travels with the call, as TensorFlow's own calls pass theirs),
leaving every other function of the process as it was.

It stays on where that was not measured or not wanted: when a GPU or other
accelerator is visible (Grappler's layout and fusion passes matter most
there), and when the process has configured Grappler or XLA's auto-clustering
itself (``tf.config.optimizer.set_experimental_options`` or ``set_jit``),
whose settings then apply as usual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

#: What ``tf.config.optimizer.get_experimental_options()`` says when nothing has been set.
_UNTOUCHED = {"disable_model_pruning": False, "disable_meta_optimizer": False}


def plain_call_options() -> Any:
    """The ``FunctionCallOptions`` to call the plain evaluation with; None: the process's own."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    if tf.config.optimizer.get_experimental_options() != _UNTOUCHED or tf.config.optimizer.get_jit():
        return None
    if any(d.device_type != "CPU" for d in tf.config.list_logical_devices()):
        return None
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

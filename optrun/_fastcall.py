"""Calling a traced function with as little Python between scipy and TF as possible.

``ConcreteFunction.__call__`` binds structured arguments, checks the
signature and records gradients, which costs ~40 us per call: more than the
whole numpy Rosenbrock. Our functions take one float64 vector and are never
differentiated through, so we dispatch the traced function by name, as
``AtomicFunction.call_flat`` does underneath.

That path uses TensorFlow internals, so it is verified against the public call
on the first point (same outputs, bit for bit) and abandoned, for the public
call, if the internals are missing or disagree. ``OPTRUN_SAFE_CALL=1`` forces
the public path.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

logger = logging.getLogger("optrun")

Result = tuple[np.ndarray, list[np.ndarray]]


def _public(concrete: Any) -> Callable[[np.ndarray], Result]:
    def call(x: np.ndarray) -> Result:
        packed, fetched = concrete(tf.constant(x, tf.float64))
        return packed.numpy(), [f.numpy() for f in fetched]

    return call


def _runtime(concrete: Any) -> Callable[[np.ndarray], Result]:
    from tensorflow.python.eager import context, execute

    atomic = concrete.inference_fn
    name = atomic.name.decode("utf-8")
    num_outputs = len(atomic.function_type.flat_outputs)
    captures = list(concrete.captured_inputs)
    ctx = context.context()
    attrs = tuple(itertools.chain(*ctx.function_call_options.as_attrs().items()))

    def call(x: np.ndarray) -> Result:
        outputs = execute.execute(name, num_outputs, [tf.constant(x, tf.float64), *captures], attrs, ctx)
        return outputs[0].numpy(), [o.numpy() for o in outputs[1:]]

    return call


def _same(a: Result, b: Result) -> bool:
    return (
        np.array_equal(a[0], b[0], equal_nan=True)
        and len(a[1]) == len(b[1])
        and all(np.array_equal(u, v) for u, v in zip(a[1], b[1], strict=True))
    )


def fast_caller(concrete: Any) -> Callable[[np.ndarray], Result]:
    """Returns ``x -> (packed, fetched)`` for a concrete function of one float64 vector."""
    public = _public(concrete)
    if os.environ.get("OPTRUN_SAFE_CALL") == "1":
        return public
    try:
        runtime = _runtime(concrete)
    except Exception as error:  # noqa: BLE001 - any missing internal means: use the public path
        logger.debug("fast call path unavailable (%s); using the public call", error)
        return public
    chosen: Callable[[np.ndarray], Result] | None = None

    def call(x: np.ndarray) -> Result:
        nonlocal chosen
        if chosen is not None:
            return chosen(x)
        expected = public(x)  # raises the user's own errors through the public path
        try:
            agrees = _same(runtime(x), expected)
        except Exception as error:  # noqa: BLE001
            logger.debug("fast call path failed (%s); using the public call", error)
            agrees = False
        chosen = runtime if agrees else public
        return expected

    return call

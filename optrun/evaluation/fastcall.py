"""Calling a traced function with as little Python between scipy and TF as possible.

``ConcreteFunction.__call__`` binds structured arguments, checks the
signature and records gradients, and ``tf.constant(x)`` builds a new input
tensor: together they make a small evaluation cost several times the thin
path below (``make bench``, case "One evaluation"). Our functions take one
float64 vector and are never
differentiated through, so the thin path

* keeps one host input tensor per function and copies each ``x`` into its
  buffer (a NumPy view of the tensor), instead of converting ``x`` anew;
* dispatches the traced function by name, as ``AtomicFunction.call_flat``
  does underneath;
* returns the packed output as a NumPy view of the output tensor (no copy).

That path uses TensorFlow internals, so it is checked against the public call
at the first two distinct points (same outputs, bit for bit) and abandoned,
for the public call, if the internals are missing or disagree. It is not
thread-safe: one caller at a time, as with any optimizer loop.
``OPTRUN_SAFE_CALL=1`` forces the public path.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.evaluation import switches
from optrun.evaluation.grappler import calling_with

logger = logging.getLogger("optrun")

Result = tuple[np.ndarray, list[np.ndarray]]
#: Distinct points at which the thin path must match the public call before it is used.
CHECKED_POINTS = 2


def _public(
    concrete: Any, extras: tuple[Any, ...] = (), options: Any = None
) -> Callable[[np.ndarray], Result]:
    def call(x: np.ndarray) -> Result:
        with calling_with(options):
            packed, fetched = concrete(tf.constant(x, tf.float64), *extras)
        return packed.numpy(), [f.numpy() for f in fetched]

    return call


def _by_name(concrete: Any, options: Any = None) -> Callable[[list[Any]], Any]:
    """``inputs -> outputs``: the traced function dispatched by name, as
    ``AtomicFunction.call_flat`` does underneath (with ``options``, if given, as the call's
    ``FunctionCallOptions``)."""
    from tensorflow.python.eager import context, execute

    atomic = concrete.inference_fn
    name = atomic.name.decode("utf-8")
    num_outputs = len(atomic.function_type.flat_outputs)
    ctx = context.context()
    attrs = tuple(itertools.chain(*(options or ctx.function_call_options).as_attrs().items()))
    return lambda inputs: execute.execute(name, num_outputs, inputs, attrs, ctx)


def _runtime(
    concrete: Any, extras: tuple[Any, ...] = (), options: Any = None
) -> Callable[[np.ndarray], Result]:
    execute = _by_name(concrete, options)
    shape = concrete.inputs[0].shape.as_list()
    with tf.device("CPU:0"):  # a host tensor, so that its NumPy view is its own memory
        x_tensor = tf.constant(np.zeros(shape), tf.float64)
    x_buffer = x_tensor._numpy()
    if not (x_buffer.flags.writeable and x_buffer.flags.c_contiguous and x_buffer.base is not None):
        raise RuntimeError("the input tensor's buffer is not a writeable view")
    inputs = [x_tensor, *extras, *concrete.captured_inputs]

    def call(x: np.ndarray) -> Result:
        if x.shape != x_buffer.shape:  # no broadcasting: a wrong shape is an error
            raise ValueError(f"x must have shape {x_buffer.shape}; got {x.shape}")
        x_buffer[...] = x
        outputs = execute(inputs)
        # A view, not a copy, and left writeable: flipping the flag slowed the L-BFGS-B loop.
        return outputs[0]._numpy(), [o.numpy() for o in outputs[1:]]

    return call


def shadow_call(concrete: Any, substitutes: dict[int, Any]) -> Callable[[np.ndarray], Result]:
    """``x -> (packed, fetched)`` with some captured inputs replaced: ``substitutes`` maps the
    ``id`` of a captured variable handle to another variable, whose handle is passed instead.

    Runs the function with no effect on the variables it captured, e.g. to compile and try an
    XLA evaluation in the background while the solver evaluates on the real variables.
    """
    execute = _by_name(concrete)
    captured = [substitutes[id(c)].handle if id(c) in substitutes else c for c in concrete.captured_inputs]
    if len(substitutes) != sum(id(c) in substitutes for c in concrete.captured_inputs):
        raise RuntimeError("not every variable to substitute is captured by the function")

    def call(x: np.ndarray) -> Result:
        outputs = execute([tf.constant(x, tf.float64), *captured])
        return outputs[0].numpy(), [o.numpy() for o in outputs[1:]]

    return call


def _same(a: Result, b: Result) -> bool:
    return (
        np.array_equal(a[0], b[0], equal_nan=True)
        and len(a[1]) == len(b[1])
        and all(np.array_equal(u, v, equal_nan=True) for u, v in zip(a[1], b[1], strict=True))
    )


class FastCaller:
    """``x -> (packed, fetched)`` for a concrete function of one float64 vector.

    ``extras`` are further inputs (tensors) passed after ``x`` on every call:
    values that stay fixed while ``x`` moves, such as fed placeholders.
    ``options`` (``FunctionCallOptions``) go with every call, on both paths; None: the thread's own
    (see :mod:`optrun.evaluation.grappler`). ``once``: only the public call, so that each point
    runs exactly once (an evaluation with side effects, :mod:`optrun.evaluation.side_effects`).

    ``packed`` may be a view of the output tensor; each call returns a new
    one and never touches earlier ones. Callers must not write into it.
    ``path`` says which call is in use: ``"checking"`` (both, until
    :data:`CHECKED_POINTS` distinct points agree), ``"thin"`` or ``"public"``.
    """

    def __init__(
        self, concrete: Any, extras: tuple[Any, ...] = (), options: Any = None, once: bool = False
    ) -> None:
        self._public = _public(concrete, extras, options)
        self._runtime: Callable[[np.ndarray], Result] | None = None
        self._thin: Callable[[np.ndarray], Result] | None = None  # set once trusted
        self._checked: list[np.ndarray] = []
        self._last: np.ndarray | None = None
        self._constant = False
        if once or switches.read(switches.SAFE_CALL) == "1":
            return
        try:
            self._runtime = _runtime(concrete, extras, options)
        except Exception as error:  # noqa: BLE001 - any missing internal means: use the public path
            logger.debug("fast call path unavailable (%s); using the public call", error)

    @property
    def path(self) -> str:
        if self._thin is not None:
            return "thin"
        return "checking" if self._runtime is not None else "public"

    def __call__(self, x: np.ndarray) -> Result:
        if self._thin is not None:
            try:
                return self._thin(x)
            except tf.errors.OpError:
                # The public call raises the same error with the user's source line in it.
                return self._public(x)
        if self._runtime is None:
            return self._public(x)
        expected = self._public(x)  # raises the user's own errors through the public path
        try:
            got = self._runtime(x)
            agrees = _same(got, expected)
        except Exception as error:  # noqa: BLE001
            logger.debug("fast call path failed (%s); using the public call", error)
            agrees = False
        if not agrees:
            self._runtime = None
            return expected
        if self._last is not None and np.may_share_memory(got[0], self._last):
            self._constant = True  # a constant-folded output: one shared buffer, so hand out copies
        self._last = got[0]
        if not any(np.array_equal(x, seen) for seen in self._checked):
            self._checked.append(np.array(x, np.float64))
            if len(self._checked) >= CHECKED_POINTS:
                self._thin = _copying(self._runtime) if self._constant else self._runtime
                self._last = None
        return expected


def _copying(call: Callable[[np.ndarray], Result]) -> Callable[[np.ndarray], Result]:
    def copied(x: np.ndarray) -> Result:
        packed, fetched = call(x)
        return packed.copy(), fetched

    return copied

"""Whether XLA can compile a function, found before compiling it where an op may lack a kernel.

A compile that fails for want of a kernel (``AsString``, a string or a Python op) logs
TensorFlow's C++ error block on stderr, which a library cannot silence. So before compiling,
each op type of the traced function is looked up in TensorFlow's kernel registry; when one has
no XLA kernel, the function is lowered to XLA's IR (no compile), which fails with the same
message and logs nothing. Lowering costs about a tenth of a compile, so it runs only then.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from tensorflow.python.framework import kernels  # no public API lists the XLA kernels

from optrun.causes import no_xla_kernel
from optrun.evaluation.called import op_types

_XLA_DEVICE = "XLA_CPU_JIT"
#: A function's inputs: XLA takes them as its parameters, with no kernel of their own.
_STRUCTURAL = frozenset({"Placeholder"})


@functools.cache
def _registered() -> bool:
    """XLA adds its kernels to the registry on its first use in a process: one tiny function's
    IR does it (about 40 ms, once)."""
    tiny = tf.function(lambda x: x + 1.0, jit_compile=True, autograph=False)
    tiny.experimental_get_compiler_ir(tf.TensorSpec([], tf.float32))(stage="hlo")
    return True


@functools.cache
def has_xla_kernel(op_type: str) -> bool:
    """Whether XLA can compile operations of ``op_type`` (on the CPU)."""
    _registered()
    found = kernels.get_registered_kernels_for_op(op_type).kernel
    return any(kernel.device_type == _XLA_DEVICE for kernel in found)


class XlaRefused(Exception):
    """XLA cannot compile a function: TensorFlow's own message, which names the op."""


def check_compiles(function: Any, spec: Sequence[tf.TensorSpec]) -> None:
    """Raises XLA's own error, without its C++ log, when ``function`` (a ``tf.function`` with
    ``jit_compile=True``, over ``spec``) uses an op XLA has no kernel for; else returns.

    Raises:
        XlaRefused: with TensorFlow's message for the op.
    """
    try:
        suspects = set(op_types(function.get_concrete_function(*spec))) - _STRUCTURAL
        suspects = {t for t in suspects if not has_xla_kernel(t)}
    except Exception:  # noqa: BLE001 - the registry or internals changed: the compile will tell
        return
    if not suspects:
        return
    try:  # perhaps handled by XLA's bridge all the same: only lowering it can tell
        function.experimental_get_compiler_ir(*spec)(stage="hlo")
    except Exception as error:
        # Only a missing kernel is refused here: lowering also fails where the compile need not
        # (an input of unknown shape, which a call makes concrete), and the compile decides those.
        if no_xla_kernel(str(error)):
            raise XlaRefused(str(error)) from error

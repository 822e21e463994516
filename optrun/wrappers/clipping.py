"""``VariableClippingOptimizer``: max-norm on variables, after each update.

After the wrapped optimizer's update, each listed variable is clipped to L2
norm <= ``max_norm`` along its dims, as ``tf.clip_by_norm`` does:

    v <- v * max_norm / max(||v||_dims, max_norm)

``[1]`` clips each row of a matrix, ``[0]`` each column. For a sparse
gradient (``tf.IndexedSlices``, e.g. from an embedding lookup) only the rows
whose indices appear are clipped, each once; when 0 is among the dims a row
is not a unit, so the whole variable is clipped densely (logged: it is slow).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun.varkeys import as_tf_variable, resolve_var_keyed, variable_label
from optrun.wrappers.base import WrapperOptimizer

logger = logging.getLogger("optrun")


def clip_dense(value: Any, max_norm: Any, dims: Sequence[int]) -> tf.Tensor:
    """``value`` clipped to L2 norm <= ``max_norm`` along ``dims``: the fast form.

    ``value * max_norm * rsqrt(sum(value**2))`` where the norm is above ``max_norm``: what
    ``tf.clip_by_norm`` computes to within an ulp, in three passes over the data where it takes
    five; slices within the norm are returned bit for bit. float16 and bfloat16 norms are
    computed in float32, where their squares do not overflow.
    """
    value = tf.convert_to_tensor(value)
    work = tf.float32 if value.dtype in (tf.float16, tf.bfloat16) else value.dtype
    wide = tf.cast(value, work)
    limit = tf.cast(max_norm, work)
    squares = tf.reduce_sum(tf.square(wide), axis=list(dims), keepdims=True)
    scale = tf.where(squares > limit * limit, limit * tf.math.rsqrt(squares), tf.ones_like(squares))
    return tf.cast(wide * scale, value.dtype)


def write_clip(
    var: Any,
    value: Any,
    max_norm: Any,
    dims: Sequence[int],
    rows: tf.Tensor | None = None,
    use_locking: bool | None = None,
    tf1: bool = False,
) -> Any:
    """Writes ``value`` (all of ``var``, or its ``rows``) back into ``var`` clipped along ``dims``.

    Args:
        tf1: TF1's arithmetic, for graph mode: subtract ``value - tf.clip_by_norm(value,
            max_norm, dims)``, which gives TF1's numbers bit for bit in float32 and float64.
            Otherwise (the Keras wrappers) :func:`clip_dense`'s faster form is assigned. Half
            precision takes that form either way: TF1, with float16 norms, zeroed a slice of
            norm above 256, and ``v - (v - c)`` is not ``c`` at that precision.

    Returns:
        The update (an op or tensor in graph mode).
    """
    value = tf.convert_to_tensor(value)
    locking = {} if use_locking is None else {"use_locking": use_locking}
    if tf1 and value.dtype not in (tf.float16, tf.bfloat16):
        delta = value - tf.clip_by_norm(value, max_norm, axes=list(dims))
        if rows is None:
            return var.assign_sub(delta, **locking)
        return var.scatter_sub(tf.IndexedSlices(delta, rows), **locking)
    clipped = clip_dense(value, max_norm, dims)
    if rows is None:
        return var.assign(clipped, **locking)
    return var.scatter_update(tf.IndexedSlices(clipped, rows), **locking)


def clip_rows(
    var: Any,
    indices: tf.Tensor,
    max_norm: Any,
    dims: Sequence[int],
    use_locking: bool = False,
    after: Sequence[Any] = (),
    tf1: bool = False,
) -> Any:
    """Clips only rows ``indices`` of ``var`` (duplicates once); ``dims`` must not contain 0.

    Args:
        tf1: TF1's arithmetic (see :func:`write_clip`).
        after: in a graph, the ops the rows are read after (the wrapped optimizer's update). The
            read takes them as direct control inputs: an order that only passes through the
            index computation is lost where Grappler rewrites that away (a reshape of a fed
            index vector), and the clip would then write the rows from before the update back.

    Returns the update (an op or tensor in graph mode).
    """
    unique, _ = tf.unique(tf.reshape(indices, [-1]))
    # Through a new op: a scope over ops an enclosing scope already holds would add nothing.
    with tf.control_dependencies([tf.group(*after)] if after else []):
        # A resource variable gathers only these rows; a TF1 reference variable is read here, so
        # that the read is ordered after its update (its cached snapshot may be a stale copy).
        source = var.read_value() if var.dtype._is_ref_dtype else var
        rows = tf.gather(source, unique)
        return write_clip(var, rows, max_norm, dims, rows=unique, use_locking=use_locking, tf1=tf1)


def check_clip_args(vars_to_clip_dims: Any, max_norm: Any) -> float:
    """Validates the arguments both worlds share; returns ``max_norm`` as a float."""
    norm = check_max_norm(max_norm)
    check_clip_targets(vars_to_clip_dims)
    return norm


def check_max_norm(max_norm: Any) -> float:
    """``max_norm`` as a float; raises unless it is a number > 0."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
        raise InvalidTypeError(f"max_norm must be a positive number; got {max_norm!r}")
    if not float(max_norm) > 0:
        raise InvalidArgumentError(f"max_norm must be > 0; got {max_norm}")
    return float(max_norm)


def check_clip_targets(vars_to_clip_dims: Any) -> None:
    """Raises unless ``vars_to_clip_dims`` is a mapping or a list of pairs (each pair is checked
    when its variable is clipped)."""
    if not isinstance(vars_to_clip_dims, (Mapping, list, tuple)):
        raise InvalidTypeError(
            "vars_to_clip_dims must be a dict keyed by variable, var.ref() or variable name, or a "
            f"list of (variable, dims) pairs; got {type(vars_to_clip_dims).__name__}"
        )


def log_dense_fallback(var: Any, dims: Sequence[int]) -> None:
    """Says once per variable that a sparse update is clipped densely (dim 0 among the dims)."""
    logger.warning(
        "clipping %r along dims %s includes dim 0, so its sparse update is clipped "
        "densely (the whole variable, every step): slow for large embeddings.",
        variable_label(var),
        list(dims),
    )


def check_dims(dims: Any, var: Any, argument: str = "vars_to_clip_dims") -> tuple[int, ...]:
    """``dims`` as a sorted tuple of non-negative axes of ``var``; raises if they do not fit."""
    label, rank = variable_label(var), len(as_tf_variable(var).shape)
    axis = lambda d: isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_))  # noqa: E731
    if axis(dims):
        dims = [dims]
    elif isinstance(dims, (range, np.ndarray)) and np.ndim(dims) <= 1:  # tf.clip_by_norm took these
        dims = list(np.atleast_1d(dims))
    if not isinstance(dims, (list, tuple)) or not dims or not all(axis(d) for d in dims):
        raise InvalidArgumentError(f"{argument} for {label!r} must be a non-empty list of ints; got {dims!r}")
    dims = [int(d) for d in dims]  # NumPy integers, as tf.clip_by_norm took them
    normalized = tuple(sorted({d % rank if -rank <= d < rank else d for d in dims}))
    bad = [d for d in normalized if not 0 <= d < rank]
    if bad:
        raise InvalidArgumentError(
            f"{argument} for {label!r} names dims {bad}, but the variable has rank {rank} "
            f"(shape {as_tf_variable(var).shape.as_list()})"
        )
    return normalized


@keras.saving.register_keras_serializable(package="optrun")
class VariableClippingOptimizer(WrapperOptimizer):
    """Wraps a Keras optimizer and clips the norm of listed variables after each update.

    Args:
        opt: the ``keras.optimizers.Optimizer`` that computes the updates.
        vars_to_clip_dims: variable -> dims, as a dict keyed by ``var.ref()``,
            a list of ``(variable, dims)`` pairs, or a dict keyed by variable
            name or Keras path (resolved when the optimizer is built).
        max_norm: the L2 norm to clip to, for every listed variable.
        use_locking: accepted for TF1 compatibility; TF2 resource variables
            need no lock.
        colocate_clip_ops_with_vars: place each clip op on its variable's device.
        name: the optimizer's name.

    Given a ``tf.compat.v1.train.Optimizer`` instead, it returns a
    :class:`optrun.wrappers.v1.clipping.VariableClippingOptimizerV1`, TF1's graph-mode
    optimizer with the same arguments.
    """

    V1_CLASS = "optrun.wrappers.v1.clipping.VariableClippingOptimizerV1"

    def __init__(
        self,
        opt: keras.optimizers.Optimizer,
        vars_to_clip_dims: Mapping[Any, Any] | Sequence[tuple[Any, Any]],
        max_norm: float,
        use_locking: bool = False,
        colocate_clip_ops_with_vars: bool = False,
        name: str = "VariableClipping",
    ) -> None:
        norm = check_clip_args(vars_to_clip_dims, max_norm)
        super().__init__(opt, name=name)
        self._vars_to_clip_dims: _Spec = _Spec(vars_to_clip_dims)
        self._max_norm: float = norm
        self._use_locking: bool = bool(use_locking)
        self._colocate: bool = bool(colocate_clip_ops_with_vars)

    def _build_own(self, var_list: list[Any]) -> None:
        dims = resolve_var_keyed(self._vars_to_clip_dims.value, var_list, argument="vars_to_clip_dims")
        self._vars_to_clip_dims.table = {
            id(as_tf_variable(v)): check_dims(d, v)
            for v, d in zip(var_list, dims, strict=True)
            if d is not None
        }

    def clip_dims(self, var: Any) -> tuple[int, ...] | None:
        """The dims ``var`` is clipped along, or None if it is not clipped."""
        return self._vars_to_clip_dims.table.get(id(as_tf_variable(var)))

    def _wrapped_apply(self, grads: list[Any], variables: list[Any]) -> None:
        self.inner_optimizer.apply(grads, variables)
        for grad, var in zip(grads, variables, strict=True):
            dims = self.clip_dims(var)
            if grad is None or dims is None:
                continue
            device = as_tf_variable(var).device if self._colocate else None
            with tf.device(device):
                self._clip(grad, var, dims)

    def _clip(self, grad: Any, var: Any, dims: tuple[int, ...]) -> None:
        if isinstance(grad, tf.IndexedSlices):
            if 0 not in dims:
                clip_rows(as_tf_variable(var), grad.indices, self._max_norm, dims)
                return
            if id(var) not in self._vars_to_clip_dims.warned:
                self._vars_to_clip_dims.warned.add(id(var))
                log_dense_fallback(var, dims)
        write_clip(var, var, self._max_norm, dims)

    def get_config(self) -> dict[str, Any]:
        """Serializable config (name-keyed ``vars_to_clip_dims`` only)."""
        config = super().get_config()
        spec = self._vars_to_clip_dims.value
        names = dict(spec) if isinstance(spec, Mapping) and all(isinstance(k, str) for k in spec) else {}
        config.update(
            vars_to_clip_dims=names,
            max_norm=self._max_norm,
            use_locking=self._use_locking,
            colocate_clip_ops_with_vars=self._colocate,
        )
        return config


class _Spec:
    """Plain holder for the user's mapping and its resolved table (kept out of Keras tracking)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.table: dict[int, tuple[int, ...]] = {}
        self.warned: set[int] = set()

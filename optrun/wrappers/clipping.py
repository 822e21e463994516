"""``VariableClippingOptimizer``: max-norm on variables, after each update.

After the wrapped optimizer's update, each listed variable is clipped to L2
norm <= ``max_norm`` along its dims, as ``tf.clip_by_norm`` does (the
arithmetic is :mod:`optrun.wrappers.max_norm`, which the graph-mode class
calls too):

    v <- v * max_norm / max(||v||_dims, max_norm)

``[1]`` clips each row of a matrix, ``[0]`` each column. For a sparse
gradient (``tf.IndexedSlices``, e.g. from an embedding lookup) only the rows
whose indices appear are clipped, each once; when 0 is among the dims a row
is not a unit, so the whole variable is clipped densely (logged: it is slow).
"""

from __future__ import annotations

import contextlib
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
from optrun.wrappers.max_norm import clip_rows, touched_by_any_replica, write_clip

logger = logging.getLogger("optrun")


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


class _Whole:
    """A variable listed with dims None: its whole norm (``tf.clip_by_norm(axes=None)``), not
    "not listed", which is what the variable-keyed lookup gives None for."""

    def __repr__(self) -> str:
        return "None"


WHOLE = _Whole()


def listed(vars_to_clip_dims: Any) -> Any:
    """``vars_to_clip_dims`` with each None dims as :data:`WHOLE`, ready for the lookup."""
    if isinstance(vars_to_clip_dims, Mapping):
        return {key: WHOLE if dims is None else dims for key, dims in vars_to_clip_dims.items()}
    return [
        (item[0], WHOLE) if isinstance(item, (list, tuple)) and len(item) == 2 and item[1] is None else item
        for item in vars_to_clip_dims
    ]


def check_dims(dims: Any, var: Any, argument: str = "vars_to_clip_dims") -> tuple[int, ...]:
    """``dims`` as a sorted tuple of non-negative axes of ``var``; raises if they do not fit.

    As ``tf.clip_by_norm``'s axes: None (:data:`WHOLE`) is every axis, the whole variable's
    norm; ``[]`` none, each element on its own.
    """
    label, rank = variable_label(var), len(as_tf_variable(var).shape)
    if dims is None or dims is WHOLE:
        return tuple(range(rank))
    if isinstance(dims, (list, tuple)) and not dims:
        return ()
    axis = lambda d: isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_))  # noqa: E731
    if axis(dims):
        dims = [dims]
    elif isinstance(dims, (range, np.ndarray)) and np.ndim(dims) <= 1:  # tf.clip_by_norm took these
        dims = list(np.atleast_1d(dims))
    if not isinstance(dims, (list, tuple)) or not dims or not all(axis(d) for d in dims):
        raise InvalidArgumentError(f"{argument} for {label!r} must be a list of ints (or None); got {dims!r}")
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
        spec = listed(self._vars_to_clip_dims.value)
        dims = resolve_var_keyed(spec, var_list, argument="vars_to_clip_dims")
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
            # The rows every replica touched, gathered where the strategy places its collectives
            # (a device scope of the clip's own would leave a multi-worker gather nowhere to go).
            rows = touched_by_any_replica(grad.indices) if isinstance(grad, tf.IndexedSlices) else None
            place = tf.device(as_tf_variable(var).device) if self._colocate else contextlib.nullcontext()
            with place:
                self._clip(rows, var, dims)

    def _clip(self, rows: tf.Tensor | None, var: Any, dims: tuple[int, ...]) -> None:
        if rows is not None:
            if 0 not in dims:
                clip_rows(as_tf_variable(var), rows, self._max_norm, dims)
                return
            if id(var) not in self._vars_to_clip_dims.warned:
                self._vars_to_clip_dims.warned.add(id(var))
                log_dense_fallback(var, dims)
        write_clip(var, var, self._max_norm, dims)

    def get_config(self) -> dict[str, Any]:
        """Serializable config; ``vars_to_clip_dims`` keyed by variables is saved keyed by their
        Keras paths (which name them again in the loaded model)."""
        config = super().get_config()
        config.update(
            vars_to_clip_dims=_by_name(
                self._vars_to_clip_dims.value, getattr(self, "_trainable_variables", [])
            ),
            max_norm=self._max_norm,
            use_locking=self._use_locking,
            colocate_clip_ops_with_vars=self._colocate,
        )
        return config


def _by_name(spec: Any, variables: list[Any]) -> dict[str, Any]:
    """``vars_to_clip_dims`` keyed by name: a variable (or its ``ref()``) by the end of its Keras
    path, ``layer/kernel``, when that names it alone among the optimizer's ``variables``. A loaded
    model's paths may lack an outer model's name, so a longer path could name nothing there, and
    a shorter one several; such an entry (or any, before the optimizer is built and the other
    variables are known) is left out of the config, with a warning."""
    items = spec.items() if isinstance(spec, Mapping) else spec
    known = [variable_label(v) for v in variables]
    names: dict[str, Any] = {}
    for key, dims in items:
        plain = [int(d) for d in np.atleast_1d(dims)] if dims is not None else None
        if isinstance(key, str):
            names[key] = plain
            continue
        var = as_tf_variable(key.deref() if hasattr(key, "deref") else key)
        # The Keras variable that wraps it, where one does: its path is the name to save.
        var = next((v for v in variables if as_tf_variable(v) is var), var)
        end = "/".join(variable_label(var).split("/")[-2:])
        if sum(p == end or p.endswith("/" + end) for p in known) == 1:
            names[end] = plain
            continue
        why = "names several variables" if known else "cannot be checked before the optimizer is built"
        logger.warning(
            "VariableClippingOptimizer config: clipping of %r is not saved (%r %s); a loaded model "
            "will not clip it. Key it by a name that names it alone, e.g. its layer's own.",
            variable_label(var),
            end,
            why,
        )
    return names


class _Spec:
    """Plain holder for the user's mapping and its resolved table (kept out of Keras tracking)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.table: dict[int, tuple[int, ...]] = {}
        self.warned: set[int] = set()

"""``VariableClippingOptimizer`` for ``tf.compat.v1`` graphs: TF1's optimizer.

What ``optrun.VariableClippingOptimizer(tf.compat.v1.train.Optimizer, ...)``
returns. ``apply_gradients`` returns one op that runs the wrapped
optimizer's update and then clips each listed variable with
:mod:`optrun.wrappers.clipping`'s shared math::

    v <- v * max_norm / max(||v||_dims, max_norm)

For a sparse gradient (``tf.IndexedSlices``) only the touched rows are
clipped, each once (TF1 subtracted twice for a repeated index); with 0 among
the dims the whole variable is clipped densely, with a logged warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from optrun.evaluation.probe import is_graph_tensor
from optrun.varkeys import resolve_var_keyed
from optrun.wrappers.clipping import (
    check_clip_targets,
    check_dims,
    check_max_norm,
    listed,
    log_dense_fallback,
)
from optrun.wrappers.max_norm import clip_rows, write_clip
from optrun.wrappers.v1.base import WrapperOptimizerV1


class VariableClippingOptimizerV1(WrapperOptimizerV1):
    """Wraps a ``tf.compat.v1.train.Optimizer`` and clips listed variables after each update.

    Args:
        opt: the ``tf.compat.v1.train.Optimizer`` that computes and applies the updates.
        vars_to_clip_dims: variable -> dims (as for ``tf.clip_by_norm``), as a dict keyed by
            the variables themselves (graph variables are hashable), by ``var.ref()`` or by
            name, or a list of ``(variable, dims)`` pairs.
        max_norm: the L2 norm to clip to, for every listed variable: a number, or a scalar
            tensor or variable of the graph (as TF1 took it).
        use_locking: use locks for the clip updates.
        colocate_clip_ops_with_vars: compute each clip on its variable's device.
        name: the name scope of the ops ``apply_gradients`` adds.
    """

    def __init__(
        self,
        opt: Any,
        vars_to_clip_dims: Mapping[Any, Any] | Sequence[tuple[Any, Any]],
        max_norm: float,
        use_locking: bool = False,
        colocate_clip_ops_with_vars: bool = False,
        name: str = "VariableClipping",
    ) -> None:
        # A graph tensor is taken as it is: TF1 handed it to tf.clip_by_norm, which takes one.
        self._max_norm: Any = max_norm if is_graph_tensor(max_norm) else check_max_norm(max_norm)
        check_clip_targets(vars_to_clip_dims)
        super().__init__(opt, name=name, use_locking=use_locking)
        # A defensive copy, as TF1 made: later edits of the caller's dict change nothing.
        self._vars_to_clip_dims = (
            dict(vars_to_clip_dims) if isinstance(vars_to_clip_dims, Mapping) else list(vars_to_clip_dims)
        )
        self._colocate = bool(colocate_clip_ops_with_vars)
        self._warned: set[str] = set()

    def apply_gradients(self, grads_and_vars: Any, global_step: Any = None, name: str | None = None) -> Any:
        """One op: the wrapped optimizer's update, then the clips."""
        self._check_graph_mode()
        grads_and_vars = list(grads_and_vars)
        dims = self._dims([v for _, v in grads_and_vars])
        with tf.name_scope(name or self._name) as scope:
            update = self._opt.apply_gradients(grads_and_vars, global_step=global_step)
            clips = []
            with tf.control_dependencies([update]):
                for (grad, var), var_dims in zip(grads_and_vars, dims, strict=True):
                    if grad is None or var_dims is None:
                        continue
                    with tf.name_scope("clip_" + var.op.name.replace("/", "_")):
                        clips.append(self._clip(grad, var, var_dims, update))
            # The scope's own name ("train/" names the op "train"), as TF1 named it.
            return tf.group(update, *clips, name=scope)

    def _dims(self, variables: list[Any]) -> list[tuple[int, ...] | None]:
        """The dims of each of ``variables``; keys may name any variable of the graph, as in TF1."""
        graph = tf.compat.v1.get_default_graph()
        known = {id(v): v for v in variables}
        for key in (tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, tf.compat.v1.GraphKeys.LOCAL_VARIABLES):
            known.update((id(v), v) for v in graph.get_collection(key))
        universe = list(known.values())
        table = dict(
            zip(
                map(id, universe),
                resolve_var_keyed(listed(self._vars_to_clip_dims), universe, argument="vars_to_clip_dims"),
                strict=True,
            )
        )
        return [None if table.get(id(v)) is None else check_dims(table[id(v)], v) for v in variables]

    def _clip(self, grad: Any, var: Any, dims: tuple[int, ...], update: Any) -> Any:
        place = tf.compat.v1.colocate_with(var) if self._colocate else contextlib.nullcontext()
        if isinstance(grad, tf.IndexedSlices):
            if 0 not in dims:
                with place:
                    return clip_rows(
                        var,
                        grad.indices,
                        self._max_norm,
                        dims,
                        use_locking=self._use_locking,
                        after=[update],
                        tf1=True,
                    )
            if var.op.name not in self._warned:
                self._warned.add(var.op.name)
                log_dense_fallback(var, dims)
        with place:
            return write_clip(
                var, var.read_value(), self._max_norm, dims, use_locking=self._use_locking, tf1=True
            )

"""``MovingAverageOptimizer`` for ``tf.compat.v1`` graphs: TF1's optimizer and swapping ``Saver``.

What ``optrun.MovingAverageOptimizer(tf.compat.v1.train.Optimizer, ...)``
returns. The update is :mod:`optrun.wrappers.moving_average`'s, shared with the Keras
wrapper::

    d    = min(average_decay, (1 + n) / (10 + n))   if num_updates n is given
    avg <- avg - (1 - d) * (avg - var)

The averages are TF1's, so TF1-era checkpoints keep working: one slot per
variable named ``<variable>/ExponentialMovingAverage``, of the variable's
dtype, placed with it, partitioned like it, and initialized from the
variable's value, or from its initial value while the variable is not
initialized (in the same ``session.run``, the same draw of a random
initializer). Reference variables under control flow v2 (eager TF's graphs
without ``disable_v2_behavior()``) always start from the initial value: a
read there fails while the variable is uninitialized.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tensorflow.python.training.saving import saveable_object_util

from optrun.errors import InvalidArgumentError, NotReadyError
from optrun.evaluation.probe import is_graph_tensor
from optrun.wrappers.ema import check_decay, check_num_updates, ema_decay, ema_delta
from optrun.wrappers.v1.base import WrapperOptimizerV1

SLOT = "ExponentialMovingAverage"


class MovingAverageOptimizerV1(WrapperOptimizerV1):
    """Keeps a moving average of the variables a ``tf.compat.v1.train.Optimizer`` updates.

    Args:
        opt: the ``tf.compat.v1.train.Optimizer`` that computes and applies the updates.
        average_decay: the decay ``d`` in [0, 1]: a number, or a scalar tensor or variable of
            the graph (as TF1 took it).
        num_updates: optional update count ``n`` (int, or integer variable or tensor such as
            the global step); then ``d = min(average_decay, (1 + n) / (10 + n))``.
        sequential_update: average the values after the update (True) or run the average
            beside the update, reading the values before it (False).

    Call :meth:`minimize` or :meth:`apply_gradients` first, then
    :meth:`swapping_saver` for a ``tf.compat.v1.train.Saver`` that writes each
    average under its variable's name, so that a plain ``Saver`` restores the
    averaged weights.
    """

    def __init__(
        self,
        opt: Any,
        average_decay: float = 0.9999,
        num_updates: Any = None,
        sequential_update: bool = True,
        name: str = "MovingAverage",
    ) -> None:
        # A graph tensor is taken as it is: TF1's ExponentialMovingAverage took one too.
        self._average_decay: Any = (
            average_decay if is_graph_tensor(average_decay) else check_decay(average_decay)
        )
        check_num_updates(num_updates)
        super().__init__(opt, name=name)
        self._num_updates = num_updates
        self._sequential_update = bool(sequential_update)
        self._swapped_names: dict[str, str] | None = None

    def apply_gradients(self, grads_and_vars: Any, global_step: Any = None, name: str | None = None) -> Any:
        """The wrapped optimizer's update, then (or beside it) the averages' update; one op."""
        self._check_graph_mode()
        grads_and_vars = list(grads_and_vars)
        train_op = self._opt.apply_gradients(grads_and_vars, global_step=global_step, name=name)
        var_list = [v for g, v in grads_and_vars if g is not None]
        averages = [self._average_slot(v) for v in var_list]
        if self._sequential_update:
            with tf.control_dependencies([train_op]):
                average_op = self._update(var_list, averages)
        else:
            average_op = self._update(var_list, averages)
        names = self._swapped_names = self._swapped_names or {}
        for var, avg in zip(var_list, averages, strict=True):
            names[var.op.name], names[avg.op.name] = avg.op.name, var.op.name
        return tf.group(train_op, average_op, name="train_with_avg")

    def _average_slot(self, var: Any) -> Any:
        existing = tf.compat.v1.train.Optimizer.get_slot(self, var, "average")
        if existing is not None:
            return existing
        # Starts at the variable's value when the average is initialized (a restored variable
        # gives its restored value), or at its initial value before, as TF1's did.
        with tf.init_scope(), tf.device(var.device):
            average = self._get_or_make_slot(var, _initialized_value(var), "average", SLOT)
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.MOVING_AVERAGE_VARIABLES, var)
        return average

    def _update(self, var_list: list[Any], averages: list[Any]) -> Any:
        with tf.name_scope(self._name):
            decay = ema_decay(self._average_decay, self._num_updates)
            # read_value() inside the control dependencies: the value after the update.
            updates = [
                avg.assign_sub(
                    ema_delta(avg, var.read_value(), decay, widen_half=False), use_locking=self._use_locking
                )
                for var, avg in zip(var_list, averages, strict=True)
            ]
            return tf.group(*updates)

    def average(self, var: Any) -> Any:
        """The average of ``var``, or None if ``var`` is not averaged."""
        return self.get_slot(var, "average")

    def swapping_saver(self, var_list: Any = None, name: str = "swapping_saver", **kwargs: Any) -> Any:
        """A ``tf.compat.v1.train.Saver`` that exchanges each variable and its average.

        Args:
            var_list: what to save, as for ``Saver`` (default: every global variable); it
                must hold each averaged variable's average too.
            name: the saver's name.
            **kwargs: other ``Saver`` arguments.

        Raises:
            NotReadyError: (a ``RuntimeError``) before ``apply_gradients`` or ``minimize``.
            InvalidArgumentError: (a ``ValueError``) ``var_list`` holds a variable but not its average.
        """
        if self._swapped_names is None:
            raise NotReadyError("Must call apply_gradients or minimize before creating the swapping_saver")
        if var_list is None:
            var_list = tf.compat.v1.global_variables()
        if not isinstance(var_list, dict):
            var_list = saveable_object_util.op_list_to_dict(var_list)
        by_name: dict[str, Any] = {}
        for key, value in var_list.items():
            if isinstance(value, (list, tuple)) or _is_partitioned(value):
                by_name.update((part.op.name, part) for part in value)
            else:
                by_name[key] = value
        swapped: dict[str, Any] = {}
        for key, value in var_list.items():
            if isinstance(value, (list, tuple)) or _is_partitioned(value):
                swapped[key] = [self._swapped(by_name, part.op.name, part) for part in value]
            else:
                swapped[key] = self._swapped(by_name, key, value)
        return tf.compat.v1.train.Saver(swapped, name=name, **kwargs)

    def _swapped(self, by_name: dict[str, Any], name: str, value: Any) -> Any:
        assert self._swapped_names is not None
        other = self._swapped_names.get(name)
        if other is None:
            return value
        if other not in by_name:
            raise InvalidArgumentError(
                f"Variable to swap {other!r} is not part of variables to save, but {name!r} is; "
                "this breaks MovingAverageOptimizer. Add it to var_list, or leave var_list out."
            )
        return by_name[other]


def _initialized_value(var: Any) -> Any:
    """``var``'s value once it is initialized, its initial value before: TF1's ``initialized_value()``."""
    if var.op.type != "VarHandleOp" and tf.compat.v1.control_flow_v2_enabled():
        # A reference variable under control flow v2: a read of it in the slot's initial value
        # fails while it is uninitialized (TF's own ExponentialMovingAverage fails there too),
        # so the average starts at the initial value.
        return var.initial_value
    return tf.cond(tf.compat.v1.is_variable_initialized(var), var.read_value, lambda: var.initial_value)


def _is_partitioned(value: Any) -> bool:
    return type(value).__name__ == "PartitionedVariable"

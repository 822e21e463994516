"""``MovingAverageOptimizer``: an exponential moving average of the variables.

The math is :mod:`optrun.wrappers.ema`, which the graph-mode class calls too.
Each average starts at its variable's value just before the first update.
With ``sequential_update=True`` the post-update values are averaged; with
False the pre-update ones, so the update and the average do not depend on
each other.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import tensorflow as tf

from optrun.errors import NotReadyError
from optrun.varkeys import as_tf_variable, variable_label
from optrun.wrappers.base import WrapperOptimizer, slot_prefix
from optrun.wrappers.ema import check_average_args, ema_decay, ema_delta

#: What the saved config says for ``num_updates=opt.iterations`` (as the spec's wrappers say it).
ITERATIONS = "iterations"


@keras.saving.register_keras_serializable(package="optrun")
class MovingAverageOptimizer(WrapperOptimizer):
    """Wraps a Keras optimizer and keeps a moving average of the variables it updates.

    Args:
        opt: the ``keras.optimizers.Optimizer`` that computes the updates.
        average_decay: the decay ``d`` in [0, 1].
        num_updates: optional update count ``n`` (int, or integer variable or
            tensor such as ``opt.iterations``); then ``d = min(average_decay,
            (1 + n) / (10 + n))``.
        sequential_update: average post-update values (True) or pre-update ones.
        name: the optimizer's name.

    Use :meth:`swapping_saver` to write checkpoints whose model variables hold
    the averages, :meth:`averaged` to evaluate with them, and
    :meth:`assign_averages` to keep them at the end of training.

    Given a ``tf.compat.v1.train.Optimizer`` instead, it returns a
    :class:`optrun.wrappers.v1.moving_average.MovingAverageOptimizerV1`, TF1's graph-mode
    optimizer with the same arguments.
    """

    V1_CLASS = "optrun.wrappers.v1.moving_average.MovingAverageOptimizerV1"

    def __init__(
        self,
        opt: keras.optimizers.Optimizer,
        average_decay: float = 0.9999,
        num_updates: Any = None,
        sequential_update: bool = True,
        name: str = "MovingAverage",
    ) -> None:
        decay = check_average_args(average_decay, num_updates)
        super().__init__(opt, name=name)
        self._average_decay = decay
        # Held out of Keras' attribute tracking: opt.iterations is the inner optimizer's variable,
        # and tracked here too it would be saved twice (a saved model would not load back).
        self._count = _Count(num_updates)
        self._sequential_update = bool(sequential_update)

    def _build_own(self, var_list: list[Any]) -> None:
        # One average per variable, plus a flag telling whether they hold their start values.
        self._averages = _Averages(
            {id(as_tf_variable(v)): (v, self._new_average(v)) for v in var_list},
            self.add_variable(shape=(), dtype="bool", initializer="zeros", name="averages_initialized"),
        )

    def _new_average(self, var: Any) -> Any:
        tf_var = as_tf_variable(var)
        if tf_var.dtype not in (tf.float16, tf.bfloat16):
            return self.add_variable_from_reference(var, name="average")
        # Half-precision variables get float32 averages: with d near 1 the per-step change
        # is far below a float16 ulp and would round away. Placed as a strategy would.
        name = slot_prefix(var) + "average"
        with tf.distribute.get_strategy().extended.colocate_vars_with(tf_var):
            return self.add_variable(shape=tuple(tf_var.shape), dtype="float32", name=name)

    def _wrapped_apply(self, grads: list[Any], variables: list[Any]) -> None:
        state = self._averages
        keys = [id(as_tf_variable(v)) for v in variables]
        pairs = [
            (state.table[k][1], v)
            for g, v, k in zip(grads, variables, keys, strict=True)
            if g is not None and k in state.table
        ]
        state.with_gradient.update(k for g, k in zip(grads, keys, strict=True) if g is not None)
        state.without_gradient.update(k for g, k in zip(grads, keys, strict=True) if g is None)
        # Every average starts at its variable's value before the first update, including
        # those whose gradient is None now: they may get one later.
        everything = [(avg, var) for var, avg in state.table.values()]
        tf.cond(
            tf.convert_to_tensor(state.initialized),
            lambda: None,
            lambda: _initialize(everything, state.initialized),
        )
        # n is read where TF1 read it: after the update with sequential_update (so
        # num_updates=opt.iterations counts this step), before it otherwise.
        if self._sequential_update:
            self.inner_optimizer.apply(grads, variables)
            _update(pairs, ema_decay(self._average_decay, self._count.value))
        else:
            _update(pairs, ema_decay(self._average_decay, self._count.value))
            self.inner_optimizer.apply(grads, variables)

    def average(self, var: Any) -> Any:
        """The average of ``var``, or None if ``var`` has not been averaged.

        A variable is averaged once an update has run (here, or before the
        checkpoint this optimizer was restored from), unless every gradient
        it got in this process was None.
        """
        state = getattr(self, "_averages", None)
        key = id(as_tf_variable(var))
        if state is None or key not in state.table or not state.started():
            return None
        if key in state.without_gradient and key not in state.with_gradient:
            return None
        return state.table[key][1]

    @property
    def has_averages(self) -> bool:
        """Whether an update has run (here or before a restored checkpoint), so averages exist."""
        state = getattr(self, "_averages", None)
        return state is not None and state.started()

    def average_pairs(self, built: bool = False) -> list[tuple[Any, Any]]:
        """``(variable, average)`` for every averaged variable; with ``built``, for every variable
        given an average when the optimizer was built, averaged yet or not."""
        if built:
            state = getattr(self, "_averages", None)
            return [] if state is None else [(var, avg) for var, avg in state.table.values()]
        return [(v, self.average(v)) for v in self._trainable_variables if self.average(v) is not None]

    def swap(self) -> None:
        """Exchanges every averaged variable's value with its average's.

        A float32 average of a float16 or bfloat16 variable is rounded to the variable's dtype
        on the way through it: swapped twice, it comes back rounded. :meth:`averaged` and the
        swapping saver keep it exact.
        """
        for var, avg in self.average_pairs():
            raw = tf.convert_to_tensor(var)
            var.assign(tf.cast(avg, raw.dtype))
            avg.assign(tf.cast(raw, avg.dtype))

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Within the block the variables hold their averages; afterwards their raw values."""
        self.require_averages("averaged()")
        # A float32 average swapped through a float16 variable comes back rounded: kept aside.
        exact = [(avg, tf.identity(avg)) for var, avg in self.average_pairs() if var.dtype != avg.dtype]
        self.swap()
        try:
            yield
        finally:
            self.swap()
            for avg, value in exact:
                avg.assign(value)

    def assign_averages(self) -> None:
        """Makes the averages permanent: each averaged variable takes its average's value."""
        self.require_averages("assign_averages()")
        for var, avg in self.average_pairs():
            var.assign(avg)

    def swapping_saver(self, **objects: Any) -> Any:
        """A saver that writes the averages under the variables' own names.

        Takes ``tf.train.Checkpoint``'s keyword arguments; see
        :class:`optrun.wrappers.swapping.SwappingSaver`.
        """
        from optrun.wrappers.swapping import SwappingSaver

        if getattr(self, "_averages", None) is None:  # built: a restore needs no step first
            raise NotReadyError(
                "Must call apply_gradients or minimize before creating the swapping_saver (or, to "
                "restore a swapped checkpoint, build(variables))"
            )
        return SwappingSaver(self, objects)

    def require_averages(self, what: str) -> None:
        """Raises :class:`NotReadyError` (saying ``what`` needs them) until an update has run."""
        if not self.has_averages:
            raise NotReadyError(f"Must call apply_gradients or minimize before {what}")

    def get_config(self) -> dict[str, Any]:
        """Serializable config: ``num_updates`` when it is a plain int, or ``"iterations"`` when it
        is the wrapped optimizer's step counter (another variable or tensor cannot be saved)."""
        config = super().get_config()
        count = self._count.value
        whole = lambda n: isinstance(n, numbers.Integral) and not isinstance(n, bool)  # noqa: E731
        config.update(
            average_decay=self._average_decay,
            num_updates=ITERATIONS if count is self.iterations else int(count) if whole(count) else None,
            sequential_update=self._sequential_update,
        )
        return config

    @classmethod
    def _arguments(cls, config: dict[str, Any], inner: Any) -> dict[str, Any]:
        # A saved num_updates="iterations" is the rebuilt inner optimizer's step counter.
        if config.get("num_updates") == ITERATIONS:
            return {**config, "num_updates": inner.iterations}
        return config

    def __repr__(self) -> str:
        averaged = [variable_label(v) for v, _ in self.average_pairs()] if self.built else []
        return f"MovingAverageOptimizer(decay={self._average_decay}, averaged={averaged})"


class _Count:
    """Plain holder for ``num_updates``, kept out of Keras' attribute tracking."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _Averages:
    """Plain holder, kept out of Keras' attribute tracking (the variables are tracked on creation)."""

    def __init__(self, table: dict[int, tuple[Any, Any]], initialized: Any) -> None:
        self.table = table
        self.initialized = initialized
        self.with_gradient: set[int] = set()
        self.without_gradient: set[int] = set()

    def started(self) -> bool:
        """Whether an update has run: read from the restorable flag, never from trace-time state.

        Inside a ``tf.function`` the flag cannot be read; there the averages are handed out.
        """
        if not tf.executing_eagerly():
            return True
        return bool(tf.convert_to_tensor(self.initialized).numpy())


def _initialize(pairs: Sequence[tuple[Any, Any]], flag: Any) -> None:
    # Automatic control dependencies order these assignments, eagerly and in tf.function.
    for avg, var in pairs:
        avg.assign(var)
    flag.assign(True)


def _update(pairs: Sequence[tuple[Any, Any]], decay: tf.Tensor) -> None:
    for avg, var in pairs:
        avg.assign_sub(ema_delta(avg, var, decay))

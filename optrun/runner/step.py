"""The compiled training step of ``optrun train`` without a ``tf.distribute`` strategy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from optrun.runner.distribute import all_finite


def single_device_step(model: Any, variables: list[Any], loss_fn: Callable[[Any, Any], Any], opt: Any) -> Any:
    """The compiled step without a strategy: ``step(batch) -> (loss, finite)``."""

    @tf.function
    def train_step(batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = tf.cast(loss_fn(model, batch), tf.float32)
        if loss.shape.rank != 0:  # checked while tracing: a usage error before any file is written
            raise ValueError(f"the loss must return a scalar; got shape {loss.shape.as_list()}")
        grads = tape.gradient(loss, variables)
        finite = all_finite(loss, grads)

        def apply() -> None:
            opt.apply_gradients(zip(grads, variables, strict=True))

        # A non-finite update is never applied: 'stop' ends the run, 'skip' goes on.
        tf.cond(finite, apply, lambda: None)
        return loss, finite

    return train_step

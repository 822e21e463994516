"""Training under a ``tf.distribute`` strategy: the global batch, its split, and the step.

The data builder yields global batches (``data.global_batch_size`` rows);
``strategy.experimental_distribute_dataset`` splits each across the replicas.
Each replica computes the mean loss over its rows and weights it by its share
of the step's rows, ``n_i / N``, so the replicas' sum is the mean over the
global batch: the loss and gradients of one device with the same batch, also
for a last batch that does not split evenly (a replica with no rows adds 0).
Keras' optimizer sums the replicas' gradients (an all-reduce) and applies the
sum on every replica; optrun's wrappers then average and clip each replica's
copy, which all hold the same values, once per step.

A step is one compiled function: the gradients (``strategy.run``, the loss
reduced with ``strategy.reduce``), then, only when every replica's loss and
gradients are finite, the update: a second ``strategy.run`` inside a
``tf.cond`` taken in cross-replica context. (The update's all-reduce may not
sit in a branch *inside* a replica function, and passing per-replica gradients
from one ``tf.function`` to another loses their devices.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from optrun.config import LoadedSpec
from optrun.errors import ConfigError, LoadError
from optrun.strategy import Plan


def batch_rows(batch: Any) -> Any:
    """Rows in a batch: the leading dimension of its first tensor."""
    first = tf.nest.flatten(batch)[0]
    shape = getattr(first, "shape", None)
    if shape is None or tf.TensorShape(shape).rank == 0:
        raise ValueError(
            f"a batch must hold tensors with a leading batch dimension; its first part is {first!r:.80}"
        )
    return tf.shape(first)[0]


def check_global_batch(loaded: LoadedSpec, plan: Plan, batch: Any) -> int | None:
    """The global batch size: ``data.global_batch_size``, checked against the first batch.

    Raises:
        ConfigError: unset while a strategy is used, or not the first batch's rows.
    """
    spec = loaded.spec.data
    declared = spec.global_batch_size if spec is not None else None
    if declared is None:
        if plan.kind != "default":
            raise ConfigError(
                loaded.source,
                [
                    f"data.global_batch_size: required with strategy.kind {plan.kind}; set it to the rows "
                    "in each batch data.builder yields (the global batch, split across the replicas)"
                ],
            )
        return None
    try:
        rows = int(batch_rows(batch))
    except (ValueError, TypeError) as error:
        raise LoadError(f"data.builder: {error}") from None
    if rows != declared:
        raise ConfigError(
            loaded.source,
            [
                f"data.global_batch_size: {declared}, but the first batch data.builder yields has {rows} "
                f"rows; make the builder batch by {declared}, or state {rows}"
            ],
        )
    return declared


def all_finite(loss: Any, grads: list[Any]) -> tf.Tensor:
    """Whether the loss and every gradient (dense or sparse; None skipped) are finite."""
    finite = tf.math.is_finite(loss)
    for grad in grads:
        if grad is not None:
            values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(values)))
    return finite


def distribute_data(plan: Plan, data: Any, ref: str) -> Any:
    """The dataset split across the replicas (``experimental_distribute_dataset``).

    Raises:
        LoadError: the builder did not return a ``tf.data.Dataset``.
    """
    assert plan.strategy is not None
    if not isinstance(data, tf.data.Dataset):
        raise LoadError(
            f"data.builder: {ref} returned {type(data).__name__}; with strategy.kind {plan.kind} it must "
            "return a tf.data.Dataset of global batches, which the strategy splits across replicas."
        )
    return plan.strategy.experimental_distribute_dataset(data)


class DistributedStep:
    """One training step under ``plan``'s strategy: ``step(batch) -> (loss, finite)``.

    ``batch`` is an element of :func:`distribute_data`'s dataset; ``loss`` is
    the global batch's mean loss, ``finite`` whether the update was applied.
    Trace with :meth:`trace` on the dataset's ``element_spec``: an iterator made
    just to get a batch would use up one of a shuffled dataset's reshuffles.
    """

    def __init__(
        self,
        plan: Plan,
        model: Any,
        variables: list[Any],
        loss_fn: Callable[[Any, Any], Any],
        optimizer: Any,
    ) -> None:
        assert plan.strategy is not None
        self.strategy = plan.strategy
        self.model, self.variables, self.loss_fn, self.optimizer = model, variables, loss_fn, optimizer
        self.has_gradient: list[bool] = []  # which variables get a gradient: known once traced
        self.step = tf.function(self._step, autograph=False)

    def _replica_gradients(self, batch: Any) -> tuple[Any, list[Any], Any]:
        context = tf.distribute.get_replica_context()
        assert context is not None
        rows = tf.cast(batch_rows(batch), tf.float32)
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, rows)
        with tf.GradientTape() as tape:
            loss = tf.cast(self.loss_fn(self.model, batch), tf.float32)
            if loss.shape.rank != 0:  # checked while tracing: a usage error before any file is written
                raise ValueError(f"the loss must return a scalar; got shape {loss.shape.as_list()}")
            # The mean over no rows is NaN: such a replica adds exactly 0, and so do its gradients.
            share = tf.math.multiply_no_nan(loss, rows / total)
        grads = tape.gradient(share, self.variables)
        finite = all_finite(share, grads)
        self.has_gradient[:] = [g is not None for g in grads]
        return share, [g for g in grads if g is not None], tf.cast(tf.logical_not(finite), tf.int32)

    def _step(self, batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
        share, grads, nonfinite = self.strategy.run(self._replica_gradients, args=(batch,))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, share, axis=None)
        bad = self.strategy.reduce(tf.distribute.ReduceOp.SUM, nonfinite, axis=None)
        finite = tf.logical_and(tf.equal(bad, 0), tf.math.is_finite(loss))

        def update() -> None:  # in cross-replica context: the all-reduce is not inside a replica's branch
            self.strategy.run(self._replica_update, args=(grads,))

        tf.cond(finite, update, lambda: None)
        return loss, finite

    def _replica_update(self, grads: list[Any]) -> None:
        present = iter(grads)
        full = [next(present) if has else None for has in self.has_gradient]
        # In replica context Keras sums the replicas' gradients (all-reduce), then updates each copy.
        self.optimizer.apply_gradients(zip(full, self.variables, strict=True))

    def trace(self, batch: Any) -> None:
        """Traces the step on ``batch`` (or its spec): mistakes surface before any file is written."""
        self.step.get_concrete_function(batch)

    def __call__(self, batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
        return self.step(batch)

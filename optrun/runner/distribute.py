"""Training under a ``tf.distribute`` strategy: the global batch, its split, and the step.

The data builder yields global batches (``data.global_batch_size`` rows, or as
many as the dataset's static batch dimension says when that key is not set);
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

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import tensorflow as tf

from optrun.errors import ConfigError, LoadError, Problem, RunError, naming
from optrun.runner.batches import first_batch
from optrun.scale.strategy import Plan, make_strategy, read_tf_config
from optrun.spec.load import LoadedSpec
from optrun.spec.strategy import StrategySpec


def batch_rows(batch: Any) -> Any:
    """Rows in a batch: the leading dimension of its first tensor."""
    first = tf.nest.flatten(batch)[0]
    shape = getattr(first, "shape", None)
    if shape is None or tf.TensorShape(shape).rank == 0:
        raise ValueError(
            f"a batch must hold tensors with a leading batch dimension; its first part is {first!r:.80}"
        )
    return tf.shape(first)[0]


class GlobalBatch(NamedTuple):
    """The global batch size and where it came from (both None: no strategy and no size given)."""

    size: int | None = None
    #: ``"data.global_batch_size"`` (the spec), or ``"dataset"`` (its static batch dimension).
    source: str | None = None


def static_batch(data: Any) -> int | None:
    """The batch dimension a ``tf.data.Dataset`` states in its ``element_spec`` (None: not static).

    ``.batch(64, drop_remainder=True)`` states 64; ``.batch(64)`` states None, as its last
    batch may be smaller. The first component decides, as in :func:`batch_rows`.
    """
    shape = _first_shape(data)
    return tf.compat.dimension_value(shape[0]) if shape is not None and shape.rank else None


def _first_shape(data: Any) -> tf.TensorShape | None:
    """The shape of a dataset's batches (their first component), when ``data`` is a dataset."""
    if not isinstance(data, tf.data.Dataset):
        return None
    shape = getattr(tf.nest.flatten(data.element_spec)[0], "shape", None)
    return tf.TensorShape(shape) if shape is not None else None


def _rows(batch: Any) -> int:
    try:
        return int(batch_rows(batch))
    except (ValueError, TypeError) as error:
        raise LoadError.at("data.builder", str(error)) from None


def check_global_batch(
    loaded: LoadedSpec, plan: Plan, batch: Any, data: Any = None, *, required: bool = True
) -> GlobalBatch:
    """The global batch size: ``data.global_batch_size``, checked against the first batch; with a
    strategy and no size given, the static batch dimension of ``data`` (the builder's dataset).

    Args:
        loaded: the spec.
        plan: the strategy.
        batch: the first batch the data builder yields.
        data: what the builder returned (a dataset's static batch dimension is read from it).
        required: whether a strategy needs the size (train); False for a full-batch minimize,
            which sums over every batch whatever its rows: the size is then only reported.

    Raises:
        ConfigError: no size given or stated by the dataset while a strategy needs it, or a size
            that is not the first batch's rows.
    """
    spec = loaded.spec.data
    declared = spec.global_batch_size if spec is not None else None
    if declared is None:
        if plan.kind == "default":
            return GlobalBatch()
        stated = static_batch(data)
        if stated is not None:  # every batch has these rows: the dataset says so
            return GlobalBatch(stated, "dataset")
        if not required:
            return GlobalBatch()
        raise ConfigError(loaded.source, [Problem("data.global_batch_size", _unstated(plan, batch, data))])
    rows = _rows(batch)
    if rows != declared:
        message = (
            f"{declared}, but the first batch data.builder yields has {rows} rows; "
            f"make the builder batch by {declared}, or state {rows}"
        )
        raise ConfigError(loaded.source, [Problem("data.global_batch_size", message)])
    return GlobalBatch(declared, "data.global_batch_size")


def _unstated(plan: Plan, batch: Any, data: Any) -> str:
    """Why the global batch is not known, and the two ways to state it."""
    rows, shape = _rows(batch), _first_shape(data)
    required = f"required with strategy.kind {plan.kind}"
    if shape is None:
        return (
            f"{required}; set it to the rows in each batch data.builder yields (the global batch, "
            f"split across the replicas): data.global_batch_size: {rows}"
        )
    shown = shape.as_list() if shape.rank is not None else "unknown"
    return (
        f"{required}, and the dataset's batch dimension is not static (its batches' shape is "
        f"{shown}: the last batch may be smaller), so the global batch cannot be read from it; "
        f"set data.global_batch_size: {rows}, or batch with drop_remainder=True "
        f"(.batch({rows}, drop_remainder=True))"
    )


def unstarted_plan(spec: StrategySpec, source: str) -> Plan:
    """The plan to validate with: the strategy itself, except that a multi_worker one has its
    TF_CONFIG checked but starts no worker (that would wait for the whole cluster)."""
    if spec.kind == "multi_worker":
        try:
            read_tf_config(os.environ.get("TF_CONFIG"))
        except RunError as error:  # the kind is what needs TF_CONFIG: the place is strategy.kind
            raise naming(error, "strategy.kind") from None
        return Plan("multi_worker")
    try:
        return make_strategy(spec, source)
    except RunError as error:  # TensorFlow's devices were set up already: the place is logical_cpus
        raise naming(error, "strategy.logical_cpus") from None


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
        raise LoadError.at(
            "data.builder",
            f"{ref} returned {type(data).__name__}; with strategy.kind {plan.kind} it must "
            "return a tf.data.Dataset of global batches, which the strategy splits across replicas.",
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


def full_batch_scale(loaded: LoadedSpec, plan: Plan, data: Any) -> dict[str, Any]:
    """What a full-batch minimize under a strategy records of its global batch (as train does):
    ``global_batch`` and ``global_batch_from`` when stated or read from the dataset, else nothing.

    Raises:
        ConfigError: a ``data.global_batch_size`` that is not the first batch's rows.
    """
    if plan.kind == "default" or loaded.spec.data is None:
        return {}
    batch, _ = first_batch(data, loaded.spec.data.builder)
    size, source = check_global_batch(loaded, plan, batch, data, required=False)
    return {} if size is None else {"global_batch": size, "global_batch_from": source}

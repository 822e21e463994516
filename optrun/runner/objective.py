"""What ``optrun minimize`` minimizes, from the spec: the loss and the constraints as thunks.

* ``minimize_loss``: ``fn(model)``, a Keras loss on one full batch, or (``minimize.data``)
  a per-batch loss summed (or averaged) over every batch of the data;
* ``constraints``: ``fn(model)`` for ``minimize.constraints``, then ``fn(model, batch)``
  summed over the data the same way for ``minimize.data.equalities`` / ``inequalities``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from optrun.config import LoadedSpec
from optrun.errors import ConfigError
from optrun.full_batch import dataset_loss
from optrun.loading import load_callable
from optrun.runner.build import build_data, keras_loss, train_loss, variables_of
from optrun.spec import CallableLoss


def minimize_loss(loaded: LoadedSpec, model: Any, strategy: Any = None) -> Callable[[], tf.Tensor]:
    """Zero-argument loss for the scipy interface: ``fn(model)``, a Keras loss on the full data,
    or (``minimize.data``) a per-batch loss summed over the dataset."""
    spec = loaded.spec.loss
    full_batch = loaded.spec.minimize.data if loaded.spec.minimize else None
    if full_batch is not None:
        return _full_batch_loss(loaded, model, full_batch.reduction, strategy)
    if isinstance(spec, CallableLoss):
        fn = load_callable(spec.ref, loaded.base_dir, "loss")
        return lambda: fn(model)
    loss = keras_loss(spec)
    data = build_data(loaded)
    batches = list(data)
    if len(batches) != 1:
        raise ConfigError(
            loaded.source,
            [f"data: minimize with a Keras loss needs one full batch; the builder gave {len(batches)}"],
        )
    x, y = batches[0]
    return lambda: tf.reduce_mean(loss(y, model(x)))


def full_batch_data(loaded: LoadedSpec) -> tf.data.Dataset:
    """The dataset of ``minimize.data``: iterated once per evaluation, in compiled code.

    Raises:
        ConfigError: the data builder returned something other than a ``tf.data.Dataset``.
    """
    data = build_data(loaded)
    if not isinstance(data, tf.data.Dataset):
        raise ConfigError(
            loaded.source,
            [
                f"data.builder: minimize.data needs a tf.data.Dataset (it is iterated once per "
                f"evaluation, in compiled code); {loaded.spec.data.builder if loaded.spec.data else ''} "
                f"returned {type(data).__name__}"
            ],
        )
    return data


def _full_batch_loss(
    loaded: LoadedSpec, model: Any, reduction: str, strategy: Any
) -> Callable[[], tf.Tensor]:
    """``minimize.data``: the training-style loss (per batch) summed over every batch."""
    data = full_batch_data(loaded)
    per_batch = train_loss(loaded, training=False)  # (model, batch) -> scalar
    jit = loaded.spec.minimize.jit_compile if loaded.spec.minimize else None
    return dataset_loss(
        lambda batch: per_batch(model, batch),
        data,
        reduction=reduction,
        var_list=variables_of(model, loaded.spec.model.builder),
        jit_compile=jit,
        strategy=strategy,
    )


def constraints(
    loaded: LoadedSpec, model: Any, strategy: Any = None
) -> tuple[list[Callable[[], Any]], list[Callable[[], Any]]]:
    """The equality and inequality thunks: ``lambda: fn(model)`` for minimize.constraints, then
    ``fn(model, batch)`` summed (or averaged) over the data for minimize.data's."""
    minimize = loaded.spec.minimize
    if minimize is None:
        return [], []

    def bind(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        return lambda: fn(model)

    def thunks(refs: list[str], what: str) -> list[Callable[[], Any]]:
        return [bind(load_callable(ref, loaded.base_dir, f"{what}[{i}]")) for i, ref in enumerate(refs)]

    def summed(refs: list[str], what: str) -> list[Callable[[], Any]]:
        if not refs or minimize.data is None:
            return []
        data = full_batch_data(loaded)
        variables = variables_of(model, loaded.spec.model.builder)
        found = []
        for i, ref in enumerate(refs):
            fn = load_callable(ref, loaded.base_dir, f"{what}[{i}]")
            found.append(
                dataset_loss(
                    functools.partial(fn, model),
                    data,
                    reduction=minimize.data.reduction,
                    var_list=variables,
                    jit_compile=minimize.jit_compile,
                    strategy=strategy,
                )
            )
        return found

    equalities = thunks(minimize.constraints.equalities, "minimize.constraints.equalities")
    inequalities = thunks(minimize.constraints.inequalities, "minimize.constraints.inequalities")
    if minimize.data is not None:
        equalities += summed(minimize.data.equalities, "minimize.data.equalities")
        inequalities += summed(minimize.data.inequalities, "minimize.data.inequalities")
    return equalities, inequalities

"""Iterating training data: the first batch, passes over the data, a model built on a batch,
the loss and gradients of one step."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import keras
import tensorflow as tf

from optrun.errors import ConfigError, LoadError, Problem
from optrun.evaluation.probe import nonfinite, scalar_message
from optrun.runner.interrupts import stopping
from optrun.varkeys import variable_label


def steps_per_epoch(data: Any) -> int | None:
    """Batches in one pass over ``data``, when it is known."""
    if isinstance(data, tf.data.Dataset):
        count = int(data.cardinality())
        return count if count >= 0 else None
    return len(data) if hasattr(data, "__len__") else None


#: The data iterator of the pass a signal stopped, kept until the process ends (see :class:`Batches`).
_parked: list[Any] = []


class Batches:
    """``passes`` passes over the data (None: endless), minus the first ``skip`` batches.

    Each pass re-iterates the data; when the builder returned a one-shot
    iterator (a generator, say), each pass after the first calls the builder
    again. A pass that yields nothing ends the batches and sets ``exhausted``.

    When Ctrl-C or SIGTERM stops the loop over the batches, the iterator of the
    pass in progress is kept (the last such one per process), not freed: freeing
    a ``tf.data`` iterator waits for its autotuning thread, which TensorFlow may
    wake only seconds to a minute later, and the interrupted run would wait that
    long before its checkpoint, its result.json and its exit. The CLI then ends
    the process without freeing it.
    """

    def __init__(self, data: Any, rebuild: Any, skip: int, passes: int | None) -> None:
        self.data, self.rebuild, self.skip, self.passes = data, rebuild, skip, passes
        self.exhausted = False

    def __iter__(self) -> Iterator[Any]:
        seen, done, data = 0, 0, self.data
        while self.passes is None or done < self.passes:
            if done and iter(data) is data:  # a one-shot iterator: its one pass is spent
                data = self.rebuild()
            empty = True
            batches = iter(data)
            try:
                for batch in batches:
                    empty = False
                    seen += 1
                    if seen > self.skip:
                        yield batch
            except BaseException:  # the loop over the batches ended early (or a signal came in it)
                if stopping():
                    _parked[:] = [batches]
                raise
            done += 1
            if empty:
                self.exhausted = True
                return


def first_batch(data: Any, ref: str) -> tuple[Any, Any]:
    """The first batch and the data to train on (a one-shot iterator gets it put back)."""
    iterator = iter(data)
    first = next(iterator, None)
    if first is None:
        raise LoadError.at("data.builder", f"{ref} yielded no batches; training needs at least one.")
    return first, (itertools.chain([first], iterator) if iterator is data else data)


def build_on_first_batch(model: Any, batch: Any) -> None:
    """Builds an unbuilt Keras model on one batch, so that its variables exist."""
    if isinstance(model, keras.Model) and not model.built:
        if not _pair(batch):
            raise LoadError.at(
                "data.builder",
                f"batches must be (x, y) pairs to build the model; data.builder gives {_described(batch)}",
            )
        model(batch[0])


def step_gradients(
    loss_fn: Callable[[Any, Any], Any], model: Any, batch: Any, variables: list[Any]
) -> tuple[tf.Tensor, list[Any]]:
    """The loss on ``batch`` and its gradients, eagerly, refused where the training step refuses them.

    Raises:
        ConfigError: the loss is not a scalar (shape [1] neither: the step takes rank 0 only).
    """
    with tf.GradientTape() as tape:
        loss = tf.convert_to_tensor(loss_fn(model, batch))
        if loss.shape.rank != 0:
            raise not_scalar_at(loss.shape)
    return loss, tape.gradient(loss, variables)


def not_scalar_at(shape: tf.TensorShape, path: str = "loss", what: str = "loss") -> ConfigError:
    """A loss (or a constraint, ``what``) that is not a scalar: one problem at ``path``, in the
    same words from ``optrun validate``'s dry run and a run's first step (the spec's line is
    added where the error is placed in the spec, e.g. by :func:`optrun.errors.problems_in`)."""
    error = ConfigError(path, [Problem(path, scalar_message(what, shape))])
    # Raised while a step is traced: AutoGraph passes it on as it is (its problems kept), not
    # rewritten into a StagingError.
    setattr(error, "ag_pass_through", True)  # noqa: B010 - an attribute ConfigError does not declare
    return error


def _pair(batch: Any) -> bool:
    return isinstance(batch, (tuple, list)) and len(batch) == 2


def _described(batch: Any) -> str:
    """What a batch that is not an ``(x, y)`` pair is, in the plural: "single tensors of shape (4, 2)"."""
    if isinstance(batch, (tuple, list)):
        return f"{type(batch).__name__}s of {len(batch)}"
    if isinstance(batch, dict):
        return f"dicts (keys {', '.join(map(repr, batch))})"
    shape = getattr(batch, "shape", None)
    if shape is None:
        return type(batch).__name__
    if getattr(shape, "rank", 0) is None:  # a generator's TensorSpec(None)
        return "single tensors"
    return f"single tensors of shape {tuple(shape)}"


def not_pairs_at(batch: Any, loss: str) -> ConfigError | None:
    """A batch a Keras loss cannot take (it takes ``(x, y)``): one problem at ``data.builder``,
    raised as :func:`not_scalar_at` is; None for a pair."""
    if _pair(batch):
        return None
    message = (
        f"the Keras loss {loss!r} takes (x, y) batches, and data.builder gives {_described(batch)}: "
        "return (x, y) pairs, or give loss as a function of (model, batch)"
    )
    error = ConfigError("data.builder", [Problem("data.builder", message)])
    setattr(error, "ag_pass_through", True)  # noqa: B010 - as in not_scalar_at
    return error


def nonfinite_step(loss: Any, variables: list[Any], grads: list[Any]) -> list[str]:
    """What a training step would find non-finite (``the loss is nan``): the loss, else each gradient."""
    values = {"the loss": loss}
    for var, grad in zip(variables, grads, strict=True):
        if grad is not None and math.isfinite(float(loss)):  # a NaN loss has NaN gradients: say it once
            values[f"the loss's gradient for {variable_label(var)!r}"] = tf.convert_to_tensor(grad)
    return [f"{what} is {value}" for what, value in nonfinite(values).items()]

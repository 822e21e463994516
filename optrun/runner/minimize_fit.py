"""A spec's loss and constraints as ``optrun minimize`` takes them, and what to change when not.

minimize calls the loss with the model alone (``fn(model)``, or a Keras loss
on one full batch), unless the spec gives ``minimize.data``: then each part is
a per-batch function summed over the data, and each batch's value must be one
number. A train spec given to minimize breaks the first rule; the advice here
names each way out in the spec's words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from optrun.evaluation.probe import not_one_number
from optrun.runner.batches import not_scalar_at
from optrun.signatures import refusal
from optrun.spec.load import LoadedSpec


def one_batch_advice(loaded: LoadedSpec, count: int) -> str:
    """Why a Keras loss over several batches cannot be minimized as it is, and what to change."""
    ref = loaded.spec.data.builder if loaded.spec.data else "data.builder"
    # A train spec given to optrun minimize lands here: name each way out in the spec's words.
    return (
        f"minimize with a Keras loss needs the data as one full batch; {ref} gave "
        f"{count or 'no'} batch{'es' if count != 1 else ''}. Add minimize.data (e.g. "
        "minimize: {data: {reduction: mean}}, or --set 'minimize.data={reduction: mean}') to average "
        "the loss over every batch at each point, make data.builder return one batch, "
        "or train on the batches with optrun train"
    )


def takes_batch(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes ``(model, batch)`` and cannot be called with the model alone."""
    return refusal(fn, 1) is not None and refusal(fn, 2) is None


def batch_loss_advice(ref: str, has_data: bool) -> str:
    """Why a loss of ``(model, batch)`` cannot be minimized as it is (the spec has a ``data``
    section or not), and what to change."""
    data = "" if has_data else "a data.builder and "
    return (
        f"{ref} takes (model, batch), but minimize calls the loss with the model alone unless the "
        f"spec gives minimize.data. Add {data}minimize.data (e.g. "
        "minimize: {data: {reduction: mean}}, or --set 'minimize.data={reduction: mean}') to average "
        "the loss over every batch at each point, or train on the batches with optrun train"
    )


def one_number(fn: Callable[..., Any], path: str, ref: str, *args: Any) -> tf.Tensor:
    """``fn(*args)``, refused at ``path`` (as validate and the run both say it) unless one number."""
    value = tf.convert_to_tensor(fn(*args))
    if not_one_number(value.shape):
        raise not_scalar_at(value.shape, path, ref)
    return value

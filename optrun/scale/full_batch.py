"""Full-batch objectives over a dataset: the loss summed (or averaged) over every batch, at every x.

GPflow's ``Scipy``, TFP's ``lbfgs_minimize`` and TF1's contrib interface all
need the whole loss as one tensor on one device. :func:`dataset_loss` turns a
loss written per batch into a zero-argument loss for
:class:`~optrun.ScipyOptimizerInterface` (or a constraint) whose value and
gradient are accumulated batch by batch inside one compiled call::

    f(x)      = sum_b loss(batch_b)            (reduction="sum")
    grad f(x) = sum_b grad loss(batch_b)
    (divided by the number of batches for reduction="mean")

Each batch's gradient is taken on its own and added to a running total, so
memory does not grow with the dataset: a dataset larger than one batch's
memory is fitted full-batch (``make bench``, case "stream": peak RSS 679 MB
at 10k points, 739 MB at 1M). The per-batch step is compiled with XLA when it
can be; the loop over the dataset (a ``tf.while_loop`` over its iterator) is
not XLA code, so give the interface ``jit_compile=False``.

How the outer ``GradientTape`` sees that gradient without recording the loop:
the returned value is ``total + (s - stop_gradient(s))`` with
``s = sum_i <stop_gradient(g_i), v_i>``. ``s - s`` is exactly 0.0, so the value
is the accumulated total bit for bit, and ``d/dv_i`` of it is ``g_i``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError, OptrunError
from optrun.evaluation.probe import NO_XLA, check_scalar
from optrun.signatures import refusal
from optrun.varkeys import as_tf_variable

BatchLoss = Callable[[Any], Any]
logger = logging.getLogger("optrun")


def _dataset(data: Any) -> tf.data.Dataset:
    if isinstance(data, tf.data.Dataset):
        # Each evaluation reads every batch: an endless dataset would never return.
        if int(data.cardinality()) == tf.data.INFINITE_CARDINALITY:
            raise InvalidArgumentError(
                "dataset_loss: data is infinite (it repeats without end, e.g. .repeat() with no "
                "count), so one evaluation would never finish; pass the dataset before .repeat(), "
                "or .take(n) batches of it."
            )
        return data
    raise InvalidTypeError(
        f"data must be a tf.data.Dataset of batches; got {type(data).__name__}. Wrap arrays with "
        "tf.data.Dataset.from_tensor_slices(...).batch(n)."
    )


def _variables(loss: BatchLoss, batch: Any, var_list: Sequence[Any] | None) -> list[tf.Variable]:
    """``var_list`` as TF variables, or the trainable variables the loss reads on ``batch``."""
    if var_list is not None:
        return [as_tf_variable(v) for v in var_list]
    with tf.GradientTape() as tape:
        check_scalar(loss(batch), "loss")
    found = [v for v in tape.watched_variables() if v.trainable]
    if not found:
        raise InvalidArgumentError(
            "dataset_loss: the loss reads no trainable variable on the first batch; pass var_list."
        )
    return found


def _untaped(fn: Callable[[], Any]) -> Any:
    """``fn()`` built where no ``GradientTape`` records it: in a thread of its own (tapes are
    per thread), into the caller's graph when tracing. Recorded, the loop would keep every
    batch's intermediates for a backward pass that never comes; memory would grow with the data.
    """
    graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            if graph is None:
                result["value"] = fn()
            else:
                with graph.as_default():
                    result["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
            result["error"] = error

    thread = threading.Thread(target=run, name="optrun-dataset-loss")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def dataset_loss(
    loss: BatchLoss,
    data: tf.data.Dataset,
    *,
    reduction: str = "sum",
    var_list: Sequence[Any] | None = None,
    jit_compile: bool | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> Callable[[], tf.Tensor]:
    """A zero-argument loss: ``loss(batch)`` summed (or averaged) over every batch of ``data``.

    Args:
        loss: ``batch -> scalar``, for one batch as ``data`` yields it.
        data: a finite ``tf.data.Dataset`` of batches; it is iterated once per evaluation.
        reduction: "sum" over batches, or "mean" (the sum over the number of batches).
        var_list: the variables to differentiate; default: the trainable ones the loss
            reads on the first batch.
        jit_compile: XLA for the per-batch step: None tries it and falls back, True
            requires it, False disables it. Not used under a ``strategy`` (no XLA there).
        strategy: a ``tf.distribute`` strategy whose scope made the variables: each batch is
            split over its replicas (``experimental_distribute_dataset``) and the parts'
            values and gradients are summed. The loss must then add up over examples (a sum,
            not a mean), since each replica sees a part of the batch.

    Returns:
        The loss, for :class:`~optrun.ScipyOptimizerInterface` or as an equality or inequality
        constraint; an interface's default ``jit_compile`` (None) runs it without XLA.

    Raises:
        InvalidArgumentError: an unknown reduction, an empty or infinite dataset, a loss that
            cannot take one batch, or no variables.
        InvalidTypeError: data is not a dataset, or the loss does not return a scalar.
    """
    if reduction not in ("sum", "mean"):
        raise InvalidArgumentError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    if jit_compile not in (None, True, False):
        raise InvalidTypeError(f"jit_compile must be None, True or False; got {jit_compile!r}")
    if not callable(loss):
        raise InvalidTypeError(f"dataset_loss: loss must be callable, batch -> scalar; got {loss!r:.60}")
    if refused := refusal(loss, 1):
        raise InvalidArgumentError(
            f"dataset_loss: loss {refused[0]} cannot be called with one batch ({refused[1]}); it is "
            "called once per batch, as loss(batch), with the batch as data yields it."
        )
    data = _dataset(data)
    if strategy is not None and var_list is None:
        # A tape sees one copy of a mirrored variable; the variables themselves must be named.
        raise InvalidArgumentError("dataset_loss: with a strategy, pass var_list (the model's variables).")
    first = next(iter(data), None)
    if first is None:
        raise InvalidArgumentError("dataset_loss: data yields no batches; give at least one.")
    variables = _variables(loss, first, var_list)

    def value_and_grads(batch: Any) -> tuple[tf.Tensor, list[tf.Tensor]]:
        # Variables read are watched as read: under a strategy, each replica its own copy.
        with tf.GradientTape() as tape:
            tape.watch(variables)
            value = tf.cast(tf.reshape(loss(batch), []), tf.float64)
        grads = tape.gradient(value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return value, [tf.cast(g, tf.float64) for g in grads]

    zeros = tuple(tf.zeros(v.shape, tf.float64) for v in variables)
    if strategy is not None:
        # Traced in each replica's context as part of the loop, so each replica reads and
        # differentiates its own copy of the variables (a step traced outside would not).
        distributed = strategy.experimental_distribute_dataset(data)
        total_sum = tf.distribute.ReduceOp.SUM

        def replicated(batch: Any) -> Any:
            value, grads = strategy.run(value_and_grads, args=(batch,))
            return strategy.reduce(total_sum, value, axis=None), [
                strategy.reduce(total_sum, g, axis=None) for g in grads
            ]

        return _full(_loop(distributed, replicated, zeros), variables, reduction)

    # Traced once, for the dataset's element spec (the last batch may be shorter), as the loop
    # below will call it; XLA is tried on the first batch and dropped if it fails there.
    signature = (data.element_spec,)
    step = _own_function(value_and_grads, input_signature=signature, jit_compile=jit_compile is not False)
    try:
        step(first)
    except OptrunError:  # optrun's own refusal of the loss (not a scalar, ...), not XLA's
        raise
    except Exception as error:  # any XLA failure; a bug in the loss fails again below
        # e.g. a second derivative through slices of a batch of unknown length: XLA's gradient
        # of a slice then has no gradient of its own.
        if jit_compile:
            raise InvalidArgumentError(
                f"dataset_loss: jit_compile=True, but XLA cannot compile the per-batch step: "
                f"{str(error).strip().splitlines()[0]}. Pass jit_compile=None or False."
            ) from error
        logger.info("dataset_loss: the per-batch step runs without XLA (%s)", type(error).__name__)
        step = _own_function(value_and_grads, input_signature=signature)
        step(first)

    return _full(_loop(data, step, zeros), variables, reduction)


def _loop(batches: Any, step: Callable[[Any], Any], zeros: tuple[tf.Tensor, ...]) -> Callable[[], Any]:
    """``() -> (count, total, *grads)``: ``step`` summed over every batch of ``batches``.

    A function of its own: built once, and called as one op, so an outer GradientTape
    records the call, not the loop (whose outputs it never differentiates: see :func:`_full`).
    A while loop over the iterator, not Dataset.reduce: the step then runs with the caller's
    threads (tf.data runs its own functions with one intra-op thread).
    """

    def loop() -> Any:
        iterator = iter(batches)

        def more(next_batch: Any, count: Any, total: Any, grads: Any) -> Any:
            return next_batch.has_value()

        def accumulate(next_batch: Any, count: Any, total: Any, grads: Any) -> Any:
            value, batch_grads = step(next_batch.get_value())
            grads = tuple(a + b for a, b in zip(grads, batch_grads, strict=True))
            return iterator.get_next_as_optional(), count + 1, total + value, grads

        init = (
            iterator.get_next_as_optional(),
            tf.constant(0, tf.int64),
            tf.constant(0.0, tf.float64),
            zeros,
        )
        _, count, total, grads = tf.while_loop(more, accumulate, init)
        return (tf.cast(count, tf.float64), total, *grads)

    return _own_function(loop, autograph=False)


def _own_function(fn: Callable[..., Any], **options: Any) -> Any:
    """``tf.function(fn, **options)``, its traces counted apart from other functions' of the
    same source: TensorFlow warns of "excessive retracing" once five functions of one code
    object have traced, which every dataset_loss of a process after the fifth (a sweep's
    trials, validate over several specs) would otherwise set off."""
    return tf.function(functools.partial(fn), **options)


def _full(loop: Callable[[], Any], variables: list[tf.Variable], reduction: str) -> Callable[[], tf.Tensor]:
    """The loss from the loop's ``(count, total, *grads)``, with the gradient the outer tape sees."""

    def full() -> tf.Tensor:
        count, total, *grads = _untaped(loop)
        if reduction == "mean":
            total, grads = total / count, [g / count for g in grads]
        total, grads = tf.stop_gradient(total), [tf.stop_gradient(g) for g in grads]
        linear = tf.add_n(
            [tf.reduce_sum(g * tf.cast(v, tf.float64)) for g, v in zip(grads, variables, strict=True)]
        )
        return total + (linear - tf.stop_gradient(linear))

    setattr(full, NO_XLA, True)  # the loop over the data: the per-batch step inside is XLA's
    return full

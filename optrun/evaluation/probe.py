"""Finding and checking what an external optimizer runs over: the loss, constraints and variables.

Two forms, one per world:

* TF2: zero-argument callables, run once eagerly under a ``GradientTape`` to
  check that each returns a scalar and to find the variables they read;
* ``tf.compat.v1``: scalar graph tensors of one graph; ``var_list`` defaults
  to that graph's trainable variables, as in TF1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError, OptrunError
from optrun.signatures import check_zero_argument
from optrun.varkeys import as_tf_variable, variable_label

Thunk = Callable[[], Any]
#: Set (True) on a loss or constraint XLA cannot compile as a whole, such as the loop over a dataset
#: of :func:`optrun.dataset_loss`: with ``jit_compile=None`` such a problem runs without XLA.
NO_XLA = "_optrun_no_xla"


def wants_no_xla(*thunks: Any) -> bool:
    """Whether any of the loss and constraints is marked :data:`NO_XLA`."""
    return any(getattr(t, NO_XLA, False) for t in thunks)


def is_graph_tensor(value: Any) -> bool:
    """Whether ``value`` is a tensor or variable of a ``tf.compat.v1`` graph (not eager, not
    inside a tf.function)."""
    if isinstance(value, tf.Variable):
        graph = getattr(value, "graph", None)
        return graph is not None and not graph.building_function and not tf.executing_eagerly()
    return (
        isinstance(value, tf.Tensor)
        and tf.is_symbolic_tensor(value)
        and not getattr(value.graph, "building_function", False)
    )


def _graph_scalar(value: Any, what: str) -> None:
    """``_scalar_shape`` for a graph tensor or variable, adding nothing to the graph."""
    dtype = value.dtype.base_dtype
    if not (dtype.is_floating or dtype.is_integer):
        raise InvalidTypeError(f"{what} must be a number; got a {dtype.name} tensor")
    if not_one_number(value.shape):
        raise not_scalar(what, value.shape)


def not_one_number(shape: tf.TensorShape) -> bool:
    """Whether a static shape is known to hold more than one number ([] and [1] are one)."""
    return shape.rank is not None and shape.rank != 0 and shape.num_elements() != 1


def scalar_message(what: str, shape: tf.TensorShape) -> str:
    """What ``what`` (``loss``, ``equalities[0]``, a spec reference) returned, and what to do.

    One message wherever it is checked (a dry run, a training step, an interface): the loss
    is "the loss", to be reduced; a constraint is to be split (never summed).
    """
    subject = "the loss" if what == "loss" else what
    dims = shape.as_list()
    unknown = " (None: a size known only when it runs, e.g. the batch's)" if None in dims else ""
    return f"{subject} must return a scalar; got shape {dims}{unknown}. {scalar_advice(what)}"


def not_scalar(what: str, shape: tf.TensorShape) -> InvalidArgumentError:
    """The error for a non-scalar ``what``, noting (as :func:`run_user` does) which argument it is."""
    error = InvalidArgumentError(scalar_message(what, shape))
    error.add_note(f"optrun: raised by {what}")
    return error


def as_thunks(items: Sequence[Thunk] | None, argument: str) -> tuple[Thunk, ...]:
    if items is None:
        return ()
    if callable(items) or isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidTypeError(
            f"{argument} must be a list of zero-argument callables; got {type(items).__name__}"
        )
    for i, item in enumerate(items):
        if not callable(item):
            raise InvalidTypeError(
                f"{argument}[{i}] must be a zero-argument callable returning a scalar tensor "
                f"(e.g. lambda: v[0] - 1.); got {type(item).__name__}: {item!r:.60}"
            )
        check_zero_argument(item, f"{argument}[{i}]")
    return tuple(items)


def check_fetches(fetches: Sequence[Any]) -> None:
    """Refuses a TF2 fetch that is neither a zero-argument callable nor a variable."""
    for i, item in enumerate(fetches):
        if callable(item):
            check_zero_argument(item, f"fetches[{i}]")
            continue
        try:
            as_tf_variable(item)
        except InvalidTypeError:
            raise InvalidTypeError(
                f"fetches[{i}] must be a zero-argument callable or a variable; got "
                f"{type(item).__name__}: {item!r:.80}"
            ) from None


def scalar_advice(what: str) -> str:
    """What to do about a non-scalar: a loss may be reduced; a constraint must be split."""
    if what == "loss":
        return "Reduce it, e.g. with tf.reduce_mean or tf.reduce_sum."
    # Never 'sum it': a summed inequality holds on average, not element by element.
    return "Write one constraint per element (for v[0] - 1. and v[1] - 1., two constraints)."


def run_user(thunk: Thunk, what: str) -> Any:
    """Runs user code once; an exception says which argument raised (``equalities[0]``)."""
    try:
        return thunk()
    except Exception as error:
        error.add_note(f"optrun: raised by {what}")
        raise


def _scalar_shape(value: Any, what: str) -> tf.Tensor:
    try:
        tensor = tf.convert_to_tensor(value)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"{what} must return a scalar tensor; got {type(value).__name__}: {value!r:.60}"
        ) from None
    if not (tensor.dtype.is_floating or tensor.dtype.is_integer):
        raise InvalidTypeError(f"{what} must return a number; got a {tensor.dtype.name} tensor")
    # While tracing a shape may be unknown: only a known non-scalar is refused here.
    if not_one_number(tensor.shape):
        raise not_scalar(what, tensor.shape)
    return tensor


def check_scalar(value: Any, what: str) -> tf.Tensor:
    """``value`` as a tensor, if it is one number; else an error naming ``what`` and saying what to do.

    Raises:
        InvalidTypeError: not a number.
        InvalidArgumentError: more than one element (a loss may be reduced; a constraint must be split).
    """
    try:
        return _scalar_shape(value, what)
    except OptrunError as error:  # whose it is, as data (as :func:`run_user` says it)
        error.add_note(f"optrun: raised by {what}")
        raise


K = TypeVar("K")


def nonfinite(values: Mapping[K, Any]) -> dict[K, float]:
    """Each key whose value (a number, an array or a tensor; None is skipped) holds a NaN or
    an Inf, with the first such value."""
    found: dict[K, float] = {}
    for key, value in values.items():
        flat = np.asarray(value if value is not None else [], np.float64).ravel()
        bad = flat[~np.isfinite(flat)]
        if bad.size:
            found[key] = float(bad[0])
    return found


def probe_callables(loss: Thunk, equalities: tuple[Thunk, ...], inequalities: tuple[Thunk, ...]) -> list[Any]:
    """Runs everything once, eagerly, to find the trainable variables read (no ``var_list``
    given): checks that each returns a scalar. Keras models built lazily are built here."""
    with tf.GradientTape() as tape:
        _scalar_shape(run_user(loss, "loss"), "loss")
        for name, thunks in (("equalities", equalities), ("inequalities", inequalities)):
            for i, thunk in enumerate(thunks):
                _scalar_shape(run_user(thunk, f"{name}[{i}]"), f"{name}[{i}]")
    return [v for v in tape.watched_variables() if v.trainable]


def _is_variable(value: Any) -> bool:
    try:
        as_tf_variable(value)
    except InvalidTypeError:
        return False
    return True


def check_var_list(var_list: Any) -> list[Any]:
    """``var_list`` as a list: any iterable of variables, as TF1's ``list(var_list)`` took."""
    if _is_variable(var_list):
        raise InvalidTypeError(
            f"var_list must be a list of variables; got one variable, {variable_label(var_list)!r}: "
            "pass var_list=[variable]"
        )
    if isinstance(var_list, (str, bytes, Mapping, tf.Tensor)) or not isinstance(var_list, Iterable):
        raise InvalidTypeError(f"var_list must be a list of variables; got {type(var_list).__name__}")
    var_list = list(var_list)  # a generator is read once, here
    seen: set[int] = set()
    for i, var in enumerate(var_list):
        try:
            tf_var = as_tf_variable(var)
        except InvalidTypeError:
            raise InvalidTypeError(
                f"var_list[{i}] must be a tf.Variable or a Keras variable; got "
                f"{type(var).__name__}: {var!r:.60}"
            ) from None
        if id(tf_var) in seen:
            raise InvalidArgumentError(f"var_list lists {variable_label(var)!r} twice; list it once.")
        seen.add(id(tf_var))
    if not var_list:
        raise InvalidArgumentError("var_list is empty; give at least one variable to optimize.")
    return list(var_list)


def graph_tensors(items: Any, argument: str, graph: Any) -> tuple[tf.Tensor, ...]:
    """Checks a list of scalar graph tensors of ``graph`` (the loss's)."""
    if items is None:
        return ()
    if isinstance(items, tf.Tensor) or not isinstance(items, Sequence):
        raise InvalidTypeError(f"{argument} must be a list of scalar tensors; got {type(items).__name__}")
    for i, item in enumerate(items):
        if not is_graph_tensor(item):
            raise InvalidTypeError(
                f"{argument}[{i}] must be a scalar tensor of the loss's graph, as the loss is one; "
                f"got {type(item).__name__}: {item!r:.60}"
            )
        if item.graph is not graph:
            raise InvalidArgumentError(
                f"{argument}[{i}] ({item.name}) belongs to another graph than the loss; "
                "build both in one graph."
            )
        _graph_scalar(item, f"{argument}[{i}]")
    return tuple(items)


def probe_graph(
    loss: tf.Tensor, equalities: Any, inequalities: Any, var_list: list[Any] | None
) -> tuple[tuple[tf.Tensor, ...], tuple[tf.Tensor, ...], list[Any]]:
    """Checks graph-mode arguments; returns the constraints and the variables to optimize."""
    graph = loss.graph
    _graph_scalar(loss, "loss")
    eqs = graph_tensors(equalities, "equalities", graph)
    ineqs = graph_tensors(inequalities, "inequalities", graph)
    if var_list is None:
        var_list = list(graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES))
    for i, var in enumerate(var_list):
        if getattr(var, "graph", None) is not graph:
            raise InvalidArgumentError(
                f"var_list[{i}] ({variable_label(var)!r}) belongs to another graph than the loss; "
                "create the variables and the loss in one graph."
            )
    return eqs, ineqs, var_list

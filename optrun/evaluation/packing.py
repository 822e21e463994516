"""Pack many variables into one float64 vector, and back.

External optimizers see one flat ``float64`` vector ``x``; TensorFlow sees a
list of variables of any shape and floating dtype. :class:`Layout` is the
plain-data description of that mapping (shapes, sizes, dtypes, offsets), with
helpers on both sides: NumPy for bounds and results, TensorFlow for the
compiled evaluation, where packing happens inside the graph.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun.varkeys import as_tf_variable, variable_label


@dataclass(frozen=True)
class Layout:
    """Where each variable lives in the packed vector.

    Attributes:
        labels: the variables' display names.
        shapes: each variable's static shape.
        dtypes: each variable's dtype.
        sizes: number of elements per variable.
    """

    labels: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[tf.DType, ...]
    sizes: tuple[int, ...]

    @classmethod
    def of(cls, variables: Sequence[Any]) -> Layout:
        """Describes ``variables``; each must have a fully defined floating shape."""
        labels, shapes, dtypes, sizes = [], [], [], []
        for var in variables:
            tf_var = as_tf_variable(var)
            label = variable_label(var)
            if not tf_var.dtype.is_floating:
                raise InvalidTypeError(
                    f"variable {label!r} has dtype {tf_var.dtype.name}; only floating "
                    "variables can be optimized. Leave it out of var_list."
                )
            if not tf_var.shape.is_fully_defined():
                raise InvalidArgumentError(
                    f"variable {label!r} has shape {tf_var.shape}, which is not fully "
                    "defined; give it a static shape."
                )
            shape = tuple(int(d) for d in tf_var.shape)
            labels.append(label)
            shapes.append(shape)
            dtypes.append(tf_var.dtype)
            sizes.append(math.prod(shape))
        return cls(tuple(labels), tuple(shapes), tuple(dtypes), tuple(sizes))

    @property
    def size(self) -> int:
        """Length of the packed vector."""
        return sum(self.sizes)

    @functools.cached_property
    def offsets(self) -> list[int]:
        """Start of each variable in the packed vector, plus the total at the end."""
        return [0, *np.cumsum(self.sizes, dtype=np.int64).tolist()]

    def element_name(self, index: int) -> str:
        """``'w'[1, 2]``: which variable element sits at ``index`` of the packed vector."""
        offsets = self.offsets
        var = int(np.searchsorted(offsets, index, side="right")) - 1
        where = np.unravel_index(index - offsets[var], self.shapes[var]) if self.shapes[var] else ()
        return f"{self.labels[var]!r}[{', '.join(str(int(i)) for i in where)}]"

    def pack_np(self, values: Sequence[Any]) -> np.ndarray:
        """Concatenates per-variable values into one float64 vector."""
        if not values:
            return np.zeros(0, np.float64)
        return np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in values])

    def unpack_np(self, x: np.ndarray) -> list[np.ndarray]:
        """Splits a packed vector into arrays of the variables' shapes (float64)."""
        offsets = self.offsets
        return [
            np.asarray(x[offsets[i] : offsets[i + 1]]).reshape(shape) for i, shape in enumerate(self.shapes)
        ]

    def pack_tf(self, tensors: Sequence[Any]) -> tf.Tensor:
        """Inside a graph: casts to float64, flattens and concatenates (no op where one is not needed:
        every op added here is paid again when a session or ``tf.function`` builds its graph)."""
        if not tensors:
            return tf.zeros([0], tf.float64)
        flat = [_flat64(t) for t in tensors]
        return flat[0] if len(flat) == 1 else tf.concat(flat, axis=0)

    def unpack_tf(self, x: tf.Tensor) -> list[tf.Tensor]:
        """Inside a graph: splits ``x`` and casts each piece to its variable's dtype."""
        # One variable takes x whole; tf.split would add an op.
        pieces = tf.split(x, list(self.sizes)) if len(self.sizes) > 1 else [x][: len(self.sizes)]
        return [
            tf.cast(piece if tuple(piece.shape) == shape else tf.reshape(piece, shape), dtype)
            for piece, shape, dtype in zip(pieces, self.shapes, self.dtypes, strict=True)
        ]


def _flat64(value: Any) -> tf.Tensor:
    """``value`` as a 1-D float64 tensor (``tf.cast`` adds no op to a float64 one)."""
    tensor = tf.cast(tf.convert_to_tensor(value), tf.float64)
    return tensor if tensor.shape.rank == 1 else tf.reshape(tensor, [-1])


def as_scalar(value: Any) -> tf.Tensor:
    """``value`` reshaped to ``[]``; the tensor itself where its static shape already is ``[]``."""
    tensor = tf.convert_to_tensor(value)
    return tensor if tensor.shape.rank == 0 else tf.reshape(tensor, [])


@dataclass(frozen=True)
class PackedBounds:
    """Element-wise bounds on the packed vector; ``-inf``/``+inf`` mean unbounded.

    It also reads like TF1's ``packed_bounds``: a sequence of ``(low, high)``
    pairs, one per element, None where a side is unbounded, so a subclass
    written for ``tf.contrib.opt`` can index it, iterate it, or hand it to
    scipy's ``bounds=`` unchanged.
    """

    lower: np.ndarray
    upper: np.ndarray

    def __len__(self) -> int:
        return int(self.lower.shape[0])

    @overload
    def __getitem__(self, index: int) -> tuple[float | None, float | None]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[float | None, float | None]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self.as_pairs()[index]
        return _pair(self.lower[index], self.upper[index])

    def __iter__(self) -> Iterator[tuple[float | None, float | None]]:
        return iter(self.as_pairs())

    def as_pairs(self) -> list[tuple[float | None, float | None]]:
        """TF1's form: one ``(low, high)`` per element, None where unbounded."""
        return [_pair(lo, hi) for lo, hi in zip(self.lower, self.upper, strict=True)]

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Projects ``x`` onto the box."""
        return np.clip(x, self.lower, self.upper)

    def outside(self, x: np.ndarray) -> int:
        """How many elements of ``x`` lie outside the box."""
        return int(np.count_nonzero((x < self.lower) | (x > self.upper)))


def _pair(lo: Any, hi: Any) -> tuple[float | None, float | None]:
    return (None if np.isneginf(lo) else float(lo), None if np.isposinf(hi) else float(hi))


def _none_to(value: Any, default: float) -> Any:
    """``[None, 2.]`` -> ``[default, 2.]`` (TF1 took None per element; NumPy would read it as NaN)."""
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        return [_none_to(item, default) for item in value]
    return value


@dataclass(frozen=True)
class ElementwiseBounds:
    """scipy's own ``bounds=`` as given, packed by :func:`pack_elementwise_bounds` once the size is known."""

    given: Any


def gives_bounds(var_to_bounds: Any) -> bool:
    """Whether ``var_to_bounds`` (or an :class:`ElementwiseBounds`) bounds anything, told before the
    variables are known: ``{v: None}`` or ``(None, None)`` pairs bound nothing."""
    if isinstance(var_to_bounds, ElementwiseBounds):
        return True
    if isinstance(var_to_bounds, Mapping):
        values = list(var_to_bounds.values())
    else:
        values = [p[1] if isinstance(p, (tuple, list)) and len(p) == 2 else p for p in var_to_bounds or []]
    nothing = [v is None or (isinstance(v, (tuple, list)) and all(s is None for s in v)) for v in values]
    return not all(nothing)


def pack_elementwise_bounds(bounds: Any, size: int) -> PackedBounds | None:
    """scipy's own ``bounds=`` for the packed vector, as TF 1.0 passed it on: a ``Bounds``
    (``lb``, ``ub``) or one ``(low, high)`` pair per element; checked as :func:`pack_bounds` checks.

    Raises:
        InvalidArgumentError: not one pair per element, or a pair that :func:`pack_bounds` refuses.
    """
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        pair = (bounds.lb, bounds.ub)
    else:
        try:  # pairs as tuples, lists or arrays, or an (n, 2) array, as scipy takes them
            pairs = [tuple(p) for p in bounds]
        except TypeError:
            pairs = []
        if len(pairs) != size or any(len(p) != 2 for p in pairs):
            raise InvalidArgumentError(
                f"bounds= takes one (low, high) pair per element of the packed vector ({size}), or a "
                f"scipy.optimize.Bounds; got {bounds!r:.80}. Or key them by variable: var_to_bounds."
            )
        pair = ([p[0] for p in pairs], [p[1] for p in pairs])
    return pack_bounds([pair], Layout(("bounds=",), ((size,),), (tf.float64,), (size,)))


def _bound_array(value: Any, default: float, shape: tuple[int, ...], where: str) -> np.ndarray:
    if value is None:
        return np.full(shape, default)
    value = _none_to(value, default)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{where} must be a number, an array or None; got {value!r:.80}") from None
    try:
        array = np.broadcast_to(array, shape)
    except ValueError:
        raise InvalidArgumentError(
            f"{where} has shape {array.shape}, which does not broadcast to the variable's "
            f"shape {shape}; give a scalar or an array of shape {shape}."
        ) from None
    if np.isnan(array).any():
        raise InvalidArgumentError(f"{where} contains NaN; use None or +-inf for no bound.")
    return np.array(array)  # broadcast_to gives a read-only view


def _first(mask: np.ndarray) -> tuple[int, ...] | None:
    """The first index where ``mask`` holds (``()`` for a scalar's), or None."""
    if mask.ndim == 0:  # np.argwhere finds nothing in a 0-d array
        return () if bool(mask) else None
    found = np.argwhere(mask)
    return tuple(int(i) for i in found[0]) if len(found) else None


def _at(index: tuple[int, ...]) -> str:
    return f" at index {index}" if index else ""


def pack_bounds(bounds: Sequence[Any | None], layout: Layout) -> PackedBounds | None:
    """Packs per-variable ``(low, high)`` pairs; None when nothing is bounded (all None or +-inf).

    Args:
        bounds: one entry per variable: None, or a ``(low, high)`` pair where
            each side is None, a scalar or an array broadcastable to the
            variable's shape.
        layout: the variables' layout.

    Raises:
        InvalidArgumentError: a pair is malformed, has the wrong shape, has
            ``low > high`` somewhere, or a lower bound of +inf (an upper of -inf).
    """
    if all(b is None for b in bounds):
        return None
    lowers, uppers = [], []
    for given, label, shape in zip(bounds, layout.labels, layout.shapes, strict=True):
        bound = (None, None) if given is None else given
        if not isinstance(bound, (tuple, list)) or len(bound) != 2:
            raise InvalidArgumentError(
                f"var_to_bounds for {label!r} must be a (low, high) pair; got {bound!r:.80}"
            )
        low = _bound_array(bound[0], -np.inf, shape, f"lower bound of {label!r}")
        high = _bound_array(bound[1], np.inf, shape, f"upper bound of {label!r}")
        index = _first(low > high)
        if index is not None:
            raise InvalidArgumentError(
                f"bounds of {label!r} are empty{_at(index)}: low {low[index]} > "
                f"high {high[index]}; swap or widen them."
            )
        for side, array, wrong in (("lower", low, np.inf), ("upper", high, -np.inf)):
            index = _first(array == wrong)
            if index is not None:  # nothing finite lies there: no point satisfies it
                raise InvalidArgumentError(
                    f"{side} bound of {label!r} is {wrong}{_at(index)}; no value satisfies it. "
                    f"Use None for no {side} bound."
                )
        lowers.append(low.reshape(-1))
        uppers.append(high.reshape(-1))
    lower, upper = np.concatenate(lowers), np.concatenate(uppers)
    return None if np.isneginf(lower).all() and np.isposinf(upper).all() else PackedBounds(lower, upper)

"""Pack many variables into one float64 vector, and back.

External optimizers see one flat ``float64`` vector ``x``; TensorFlow sees a
list of variables of any shape and floating dtype. :class:`Layout` is the
plain-data description of that mapping (shapes, sizes, dtypes, offsets), with
helpers on both sides: NumPy for bounds and results, TensorFlow for the
compiled evaluation, where packing happens inside the graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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

    @property
    def offsets(self) -> list[int]:
        """Start of each variable in the packed vector, plus the total at the end."""
        return [0, *np.cumsum(self.sizes, dtype=np.int64).tolist()]

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
        """Inside a graph: casts to float64, flattens and concatenates."""
        if not tensors:
            return tf.zeros([0], tf.float64)
        return tf.concat(
            [tf.reshape(tf.cast(tf.convert_to_tensor(t), tf.float64), [-1]) for t in tensors],
            axis=0,
        )

    def unpack_tf(self, x: tf.Tensor) -> list[tf.Tensor]:
        """Inside a graph: splits ``x`` and casts each piece to its variable's dtype."""
        pieces = tf.split(x, list(self.sizes)) if self.sizes else []
        return [
            tf.cast(tf.reshape(piece, shape), dtype)
            for piece, shape, dtype in zip(pieces, self.shapes, self.dtypes, strict=True)
        ]


@dataclass(frozen=True)
class PackedBounds:
    """Element-wise bounds on the packed vector; ``-inf``/``+inf`` mean unbounded."""

    lower: np.ndarray
    upper: np.ndarray

    def as_pairs(self) -> list[tuple[float | None, float | None]]:
        """TF1's form: one ``(low, high)`` per element, None where unbounded."""
        return [
            (None if np.isneginf(lo) else float(lo), None if np.isposinf(hi) else float(hi))
            for lo, hi in zip(self.lower, self.upper, strict=True)
        ]

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Projects ``x`` onto the box."""
        return np.clip(x, self.lower, self.upper)


def _bound_array(value: Any, default: float, shape: tuple[int, ...], where: str) -> np.ndarray:
    if value is None:
        return np.full(shape, default)
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


def pack_bounds(bounds: Sequence[Any | None], layout: Layout) -> PackedBounds | None:
    """Packs per-variable ``(low, high)`` pairs; None when no variable is bounded.

    Args:
        bounds: one entry per variable: None, or a ``(low, high)`` pair where
            each side is None, a scalar or an array broadcastable to the
            variable's shape.
        layout: the variables' layout.

    Raises:
        InvalidArgumentError: a pair is malformed, has the wrong shape, or has
            ``low > high`` somewhere.
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
        bad = np.argwhere(low > high)
        if bad.size:
            index = tuple(int(i) for i in bad[0])
            raise InvalidArgumentError(
                f"bounds of {label!r} are empty at index {index}: low {low[index]} > "
                f"high {high[index]}; swap or widen them."
            )
        lowers.append(low.reshape(-1))
        uppers.append(high.reshape(-1))
    return PackedBounds(np.concatenate(lowers), np.concatenate(uppers))

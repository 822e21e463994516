"""Pack many variables into one float64 vector, and back.

External optimizers see one flat ``float64`` vector ``x``; TensorFlow sees a
list of variables of any shape and floating dtype. :class:`Layout` is the
plain-data description of that mapping (shapes, sizes, dtypes, offsets), with
helpers on both sides: NumPy for results, TensorFlow for the compiled
evaluation, where packing happens inside the graph. Bounds on the vector are
:mod:`optrun.evaluation.bounds`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun.varkeys import as_tf_variable, numbered, variable_label


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

    @functools.cached_property
    def keys(self) -> tuple[str, ...]:
        """The labels, each once: a repeated one numbered from its second use on (``v``, ``v#2``),
        for records keyed by variable (two Keras layers may name their variables alike)."""
        return numbered(self.labels)

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

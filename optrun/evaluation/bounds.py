"""Bounds on the packed vector: per-variable ``(low, high)`` pairs, or scipy's own per element.

:class:`PackedBounds` is what an external optimizer gets, in both of TF1's
forms (a sequence of pairs, and ``lower``/``upper`` arrays). :func:`pack_bounds`
packs ``var_to_bounds`` along a :class:`~optrun.evaluation.packing.Layout`;
:func:`pack_elementwise_bounds` takes scipy's ``bounds=`` as TF 1.0 passed it on;
:func:`gives_bounds` tells, before the variables are known, whether either bounds
anything (None and +-inf sides do not).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError
from optrun.evaluation.packing import Layout


@dataclass(frozen=True)
class PackedBounds:
    """Element-wise bounds on the packed vector; ``-inf``/``+inf`` mean unbounded.

    It also reads like TF1's ``packed_bounds``: a sequence of ``(low, high)``
    float pairs, one per element, ``-inf``/``inf`` where a side is unbounded (as
    TF1 filled in variables without bounds), so a subclass written for
    ``tf.contrib.opt`` can index it, iterate it, clip with it, or hand it to
    scipy's ``bounds=`` unchanged.
    """

    lower: np.ndarray
    upper: np.ndarray

    def __len__(self) -> int:
        return int(self.lower.shape[0])

    @overload
    def __getitem__(self, index: int) -> tuple[float, float]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[float, float]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self.as_pairs()[index]
        return float(self.lower[index]), float(self.upper[index])

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return iter(self.as_pairs())

    def as_pairs(self) -> list[tuple[float, float]]:
        """TF1's form: one ``(low, high)`` per element, ``-inf``/``inf`` where unbounded."""
        return list(zip(self.lower.tolist(), self.upper.tolist(), strict=True))

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Projects ``x`` onto the box."""
        return np.clip(x, self.lower, self.upper)

    def outside(self, x: np.ndarray) -> int:
        """How many elements of ``x`` lie outside the box."""
        return int(np.count_nonzero((x < self.lower) | (x > self.upper)))


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
    """Whether ``var_to_bounds`` (or :class:`ElementwiseBounds`) bounds anything, told before the
    variables are known, as :func:`pack_bounds` would: None and +-inf sides bound nothing."""
    given = getattr(var_to_bounds, "given", var_to_bounds)
    try:
        if isinstance(var_to_bounds, ElementwiseBounds):
            pairs = [(given.lb, given.ub)] if hasattr(given, "lb") else list(given)
        else:
            pairs = list(given.values()) if isinstance(given, Mapping) else [_second(p) for p in given or []]
    except (TypeError, ValueError):  # malformed (bounds=5): counted as given, so packing says what is wrong
        return True
    return not all(_unbounded(pair) for pair in pairs)


def _second(item: Any) -> Any:
    return item[1] if isinstance(item, (tuple, list)) and len(item) == 2 else item


def _unbounded(pair: Any) -> bool:
    try:
        low, high = (None, None) if pair is None else pair
        low, high = (np.asarray(_none_to(v, d), np.float64) for v, d in ((low, -np.inf), (high, np.inf)))
        return bool(np.isneginf(low).all() and np.isposinf(high).all())
    except (TypeError, ValueError):  # malformed: pack_bounds says what is wrong
        return False


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
        if isinstance(bound, np.ndarray) and bound.ndim >= 1 and len(bound) == 2:
            bound = (bound[0], bound[1])  # TF1 read bounds[0] and bounds[1]: an array's rows work too
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

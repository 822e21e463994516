"""Serving one compiled evaluation to an external optimizer: the packed output and its cache.

The backend returns, per point ``x``, one float64 vector
``[f | grad f | e | J_e | h | J_h]``. :class:`Evaluation` slices it,
:class:`PointCache` keeps the last one so that every quantity asked for at the
same ``x`` costs one TF call, and :class:`Component` / :func:`stack` hand
single constraints (or all of them at once) to the optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optrun.errors import InvalidArgumentError, NonFiniteError

Evaluator = Callable[[np.ndarray], tuple[np.ndarray, list[np.ndarray]]]


@dataclass(frozen=True)
class Evaluation:
    """Everything known at one point ``x`` (views into one packed vector)."""

    loss: float
    grad: np.ndarray
    equalities: np.ndarray
    equality_jacobian: np.ndarray
    inequalities: np.ndarray
    inequality_jacobian: np.ndarray

    @property
    def violation(self) -> float:
        """``max(|e_i|, max(0, -h_j))``: 0 when every constraint holds."""
        parts = [np.abs(self.equalities), np.maximum(0.0, -self.inequalities)]
        return float(max((p.max() for p in parts if p.size), default=0.0))

    @classmethod
    def split(cls, packed: np.ndarray, n: int, n_eq: int, n_ineq: int) -> Evaluation:
        """Slices the backend's packed output ``[f | g | e | J_e | h | J_h]``."""
        e0 = 1 + n
        h0 = e0 + n_eq * (1 + n)
        end = h0 + n_ineq * (1 + n)
        return cls(
            loss=float(packed[0]),
            grad=packed[1:e0],
            equalities=packed[e0 : e0 + n_eq],
            equality_jacobian=packed[e0 + n_eq : h0].reshape(n_eq, n),
            inequalities=packed[h0 : h0 + n_ineq],
            inequality_jacobian=packed[h0 + n_ineq : end].reshape(n_ineq, n),
        )


def as_point(x: Any, n: int) -> np.ndarray:
    """``x`` as a float64 vector of the packed length ``n``; no broadcasting."""
    point = np.asarray(x, np.float64)
    if point.shape != (n,):
        raise InvalidArgumentError(
            f"x must be a flat vector of {n} values (the packed variables); got shape {point.shape}"
        )
    return point


class PointCache:
    """Evaluates at most once per distinct ``x``; calls ``loss_callback`` on each loss request.

    The :class:`Evaluation` view is only built when asked for: L-BFGS-B and
    friends read just the loss and gradient, through :meth:`loss_and_grad`.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        counts: tuple[int, int, int],
        loss_callback: Callable[..., Any] | None = None,
        finite: Callable[[int], str] | None = None,
    ) -> None:
        """``finite``, when given, names an element of ``x`` (e.g. ``'w'[3]``) and turns on
        the check: a NaN or Inf anywhere in an evaluation raises :class:`NonFiniteError`."""
        self._evaluator = evaluator
        self._name_of = finite
        self._counts = counts
        self._n = counts[0]
        self._loss_callback = loss_callback
        # Raw bytes of the last x: cheaper than np.array_equal, and a copy, since callers
        # may mutate the array they pass. Bitwise: -0.0 and 0.0 are different points.
        self._key: bytes | None = None
        self._packed: np.ndarray | None = None
        self._value: Evaluation | None = None
        self._fetched: list[Any] = []
        self.evaluations = 0
        #: Loss requests (:meth:`loss_and_grad` calls), cached or not: what scipy reports as ``nfev``.
        self.loss_requests = 0
        #: With the finite check on: the lowest loss evaluated so far (its point: :attr:`best_x`).
        self.best_loss: float = math.inf
        self._best_key: bytes | None = None

    @property
    def evaluator(self) -> Evaluator:
        """The backend's evaluator this cache calls."""
        return self._evaluator

    def _packed_at(self, x: Any) -> np.ndarray:
        x = as_point(x, self._n)
        key = x.tobytes()
        if key == self._key and self._packed is not None:
            return self._packed
        packed, fetched = self._evaluator(x)
        self.evaluations += 1
        if self._name_of is not None:
            # Not packed.sum(): finite values can overflow it, with a RuntimeWarning.
            if not np.isfinite(packed).all():
                raise NonFiniteError(f"{self._nonfinite(packed)} at evaluation {self.evaluations}")
            loss = float(packed[0])
            if loss < self.best_loss:
                self.best_loss, self._best_key = loss, key
        self._key, self._packed, self._value, self._fetched = key, packed, None, fetched
        return packed

    @property
    def best_x(self) -> np.ndarray | None:
        """The point of :attr:`best_loss` (a copy), or None before a finite evaluation."""
        return None if self._best_key is None else np.frombuffer(self._best_key, np.float64).copy()

    def _nonfinite(self, packed: np.ndarray) -> str:
        """What went bad first: the loss, a constraint, or a gradient element."""
        assert self._name_of is not None
        ev = Evaluation.split(packed, *self._counts)
        parts: list[tuple[str, np.ndarray, np.ndarray]] = [
            ("the loss", np.array([ev.loss]), ev.grad[None, :])
        ]
        parts += [
            (f"equalities[{i}]", ev.equalities[i : i + 1], ev.equality_jacobian[i : i + 1])
            for i in range(len(ev.equalities))
        ]
        parts += [
            (f"inequalities[{i}]", ev.inequalities[i : i + 1], ev.inequality_jacobian[i : i + 1])
            for i in range(len(ev.inequalities))
        ]
        for name, value, gradient in parts:
            if not np.isfinite(value).all():
                return f"{name} is {value[0]}"
            bad = np.flatnonzero(~np.isfinite(gradient))
            if bad.size:
                where = self._name_of(int(bad[0]))
                return f"the gradient of {name} is {gradient.reshape(-1)[bad[0]]} at {where}"
        return "an evaluation is not finite"

    def peek(self, x: np.ndarray) -> Evaluation | None:
        """The cached evaluation if it is at ``x``; never evaluates."""
        x = np.asarray(x, np.float64)
        if self._packed is not None and x.shape == (self._n,) and x.tobytes() == self._key:
            return self(x)
        return None

    def loss_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))``; the gradient is a fresh copy the caller may keep.

        Calls ``loss_callback(*fetched)`` every time, also when ``x`` is cached
        (TF1 called it on every loss request).
        """
        self.loss_requests += 1
        packed = self._packed_at(x)
        if self._loss_callback is not None:
            self._loss_callback(*self._fetched)
        return float(packed[0]), packed[1 : 1 + self._n].copy()

    def typed_loss_and_grad(self, loss: Any, gradient: Any) -> Callable[[np.ndarray], tuple[Any, np.ndarray]]:
        """:meth:`loss_and_grad` giving the loss as a ``loss`` scalar and the gradient as ``gradient``:
        what ``session.run`` gave TF1's ``_minimize`` for float32 (float16) variables."""
        if np.dtype(loss) == np.float64 and np.dtype(gradient) == np.float64:
            return self.loss_and_grad

        def typed(x: np.ndarray) -> tuple[Any, np.ndarray]:
            value, grad = self.loss_and_grad(x)
            return np.dtype(loss).type(value), grad.astype(gradient)

        return typed

    def __call__(self, x: np.ndarray) -> Evaluation:
        packed = self._packed_at(x)
        if self._value is None:
            self._value = Evaluation.split(packed, *self._counts)
        return self._value


class Component:
    """``x -> getattr(cache(x), field)[index : index + 1]``: one constraint value, as an array of
    shape ``(1,)``, or its gradient, as a ``(1, n)`` Jacobian row.

    TF1's constraint functions returned one-element lists (``[value]``, ``[gradient]``), so code
    written for them indexes ``[0]`` or concatenates; a one-element array serves both. A plain
    callable for any external optimizer; :func:`stack` recognises a list of them and reads all
    rows with one cache lookup.
    """

    def __init__(self, cache: PointCache, field: str, index: int) -> None:
        self.cache, self.field, self.index = cache, field, index

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # A copy: the caller may keep or mutate what it gets.
        return np.array(getattr(self.cache(x), self.field)[self.index : self.index + 1])


def stack(
    funcs: Sequence[Callable[[np.ndarray], Any]], jacobian: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """Turns per-constraint callables into one ``x -> array``: values ``(m,)``, or with ``jacobian``
    the rows ``(m, n)``; each callable may give its value or row bare or in a one-element list."""
    first = funcs[0] if funcs else None
    if (
        isinstance(first, Component)
        and all(isinstance(f, Component) and f.cache is first.cache and f.field == first.field for f in funcs)
        and [f.index for f in funcs if isinstance(f, Component)] == list(range(len(funcs)))
    ):
        cache, field = first.cache, first.field
        return lambda x: np.array(getattr(cache(x), field))
    if jacobian:
        return lambda x: np.vstack([np.reshape(np.asarray(f(x), np.float64), (1, -1)) for f in funcs])
    return lambda x: np.concatenate([np.reshape(np.asarray(f(x), np.float64), -1) for f in funcs])

"""What one point evaluates to: the loss, its gradient, the constraints and their Jacobians
as one float64 vector, the same from either backend.

The vector is built in the graph (:func:`pack_outputs`) where one traced
function returns it, or fetched in pieces (:func:`output_parts`) and joined in
NumPy (:func:`joiner`) where a session call does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

#: Up to this many constraint values are gathered with a select chain (see :func:`stack_scalars`).
SELECT_LIMIT = 32


def stack_scalars(values: Sequence[tf.Tensor]) -> tf.Tensor:
    """Scalars -> one float64 vector, in a form XLA fuses into a single kernel.

    A concat gives each operand a kernel of its own; past 8 kernels XLA's CPU
    runtime runs them on the thread pool, and on small problems the handoffs
    cost more than the work (see the README's benchmarks). A
    chain of selects is exact (no arithmetic on the values) and fuses with
    the constraint computations. It grows with k^2, so long lists are stacked.
    """
    values = [tf.cast(v, tf.float64) for v in values]
    if not values:
        return tf.zeros([0], tf.float64)
    if len(values) > SELECT_LIMIT:
        return tf.stack(values)
    index = tf.range(len(values))
    out = tf.zeros([len(values)], tf.float64)
    for i, value in enumerate(values):
        out = tf.where(tf.equal(index, i), value, out)
    return out


class Reach:
    """What the traced gradients reached: the variables no output's gradient reached
    (``ungraded``, by index), and per output, in :func:`output_parts`' order (loss, equalities,
    inequalities), whether its gradient reached no variable at all (``flat``: TF1 silently
    gave such a constraint a zero Jacobian row, which no solver can act on)."""

    def __init__(self, count: int) -> None:
        self.ungraded = set(range(count))
        self.flat: list[bool] = []

    def saw(self, grads: Sequence[Any]) -> None:
        """Records one output's gradients (None where a variable was not reached)."""
        self.ungraded.difference_update(i for i, g in enumerate(grads) if g is not None)
        self.flat.append(all(g is None for g in grads))


def pack_outputs(
    loss: tf.Tensor,
    equalities: Sequence[tf.Tensor],
    inequalities: Sequence[tf.Tensor],
    gradient: Callable[[tf.Tensor], tf.Tensor],
) -> tf.Tensor:
    """The one float64 vector both backends return per point::

        [ f | grad f | e | J_e (row-major) | h | J_h (row-major) ]

    Whether it is all finite is checked by the caller, in NumPy: a check in the
    graph would add ops that every session and every trace builds again, which
    costs a short graph-mode run more than the check costs per point.

    Args:
        loss: the loss, shape ``[]``.
        equalities: equality constraint values, each of shape ``[]``.
        inequalities: inequality constraint values, each of shape ``[]``.
        gradient: scalar tensor -> its packed gradient (zeros for gradient-free
            methods). It is called on the tensors given here, so that a tape
            that recorded them can differentiate them.
    """
    return join_parts(output_parts(loss, equalities, inequalities, gradient))


def output_parts(
    loss: tf.Tensor,
    equalities: Sequence[tf.Tensor],
    inequalities: Sequence[tf.Tensor],
    gradient: Callable[[tf.Tensor], tf.Tensor],
) -> list[tf.Tensor]:
    """The pieces of :func:`pack_outputs`' vector, in its order: the loss as given (shape ``[]``,
    its own dtype), then 1-D float64 tensors. A session fetches these and joins them with
    a :func:`joiner`: a graph that ends in the join costs a short run more to prepare (about
    3 ms a callable on Rosenbrock N=100) than the join costs in NumPy over the whole run."""
    parts = [loss, gradient(loss)]
    for values in (equalities, inequalities):
        if values:  # an empty part would only add ops
            parts.append(stack_scalars(values))
            parts += [gradient(c) for c in values]
    return parts


def join_parts(parts: Sequence[tf.Tensor]) -> tf.Tensor:
    """:func:`output_parts` as one float64 vector, in the graph."""
    # One concat of the parts: its Jacobian rows are m x n, so no second copy of the whole.
    return tf.concat([tf.reshape(tf.cast(parts[0], tf.float64), [1]), *parts[1:]], axis=0)


def joiner(parts: Sequence[tf.Tensor]) -> Callable[[Sequence[Any]], np.ndarray]:
    """``values -> vector``: fetched :func:`output_parts` as one float64 vector, in NumPy."""
    # Every part's size is static: Layout takes only fully defined variable shapes.
    ends = np.cumsum([1, *(p.shape.num_elements() for p in parts[1:])]).tolist()
    spans = list(itertools.pairwise(ends))
    total = ends[-1]

    def join(values: Sequence[Any]) -> np.ndarray:
        # Filled in place, with the spans worked out once: paid at every point.
        out = np.empty(total, np.float64)
        out[0] = values[0]
        for (start, stop), value in zip(spans, values[1:], strict=True):
            out[start:stop] = value
        return out

    return join

"""Max-norm clipping, written once for both worlds: a variable, or only some of its rows, clipped
to L2 norm <= ``max_norm`` along ``dims``, as ``tf.clip_by_norm`` computes it::

    v <- v * max_norm / max(||v||_dims, max_norm)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf


def clip_dense(value: Any, max_norm: Any, dims: Sequence[int]) -> tf.Tensor:
    """``value`` clipped to L2 norm <= ``max_norm`` along ``dims``: the fast form.

    ``value * max_norm * rsqrt(sum(value**2))`` where the norm is above ``max_norm``: what
    ``tf.clip_by_norm`` computes to within an ulp, in three passes over the data where it takes
    five; slices within the norm are returned bit for bit. float16 and bfloat16 norms are
    computed in float32, where their squares do not overflow.
    """
    value = tf.convert_to_tensor(value)
    work = tf.float32 if value.dtype in (tf.float16, tf.bfloat16) else value.dtype
    wide = tf.cast(value, work)
    limit = tf.cast(max_norm, work)
    squares = tf.reduce_sum(tf.square(wide), axis=list(dims), keepdims=True)
    scale = tf.where(squares > limit * limit, limit * tf.math.rsqrt(squares), tf.ones_like(squares))
    return tf.cast(wide * scale, value.dtype)


def write_clip(
    var: Any,
    value: Any,
    max_norm: Any,
    dims: Sequence[int],
    rows: tf.Tensor | None = None,
    use_locking: bool | None = None,
    tf1: bool = False,
) -> Any:
    """Writes ``value`` (all of ``var``, or its ``rows``) back into ``var`` clipped along ``dims``.

    Args:
        tf1: TF1's arithmetic, for graph mode: subtract ``value - tf.clip_by_norm(value,
            max_norm, dims)``, which gives TF1's numbers bit for bit in float32 and float64.
            Otherwise (the Keras wrappers) :func:`clip_dense`'s faster form is assigned. Half
            precision takes that form either way: TF1, with float16 norms, zeroed a slice of
            norm above 256, and ``v - (v - c)`` is not ``c`` at that precision.

    Returns:
        The update (an op or tensor in graph mode).
    """
    value = tf.convert_to_tensor(value)
    locking = {} if use_locking is None else {"use_locking": use_locking}
    if tf1 and value.dtype not in (tf.float16, tf.bfloat16):
        delta = value - tf.clip_by_norm(value, max_norm, axes=list(dims))
        if rows is None:
            return var.assign_sub(delta, **locking)
        return var.scatter_sub(tf.IndexedSlices(delta, rows), **locking)
    clipped = clip_dense(value, max_norm, dims)
    if rows is None:
        return var.assign(clipped, **locking)
    return var.scatter_update(tf.IndexedSlices(clipped, rows), **locking)


def clip_rows(
    var: Any,
    indices: tf.Tensor,
    max_norm: Any,
    dims: Sequence[int],
    use_locking: bool = False,
    after: Sequence[Any] = (),
    tf1: bool = False,
) -> Any:
    """Clips only rows ``indices`` of ``var`` (duplicates once); ``dims`` must not contain 0.

    Args:
        tf1: TF1's arithmetic (see :func:`write_clip`).
        after: in a graph, the ops the rows are read after (the wrapped optimizer's update). The
            read takes them as direct control inputs: an order that only passes through the
            index computation is lost where Grappler rewrites that away (a reshape of a fed
            index vector), and the clip would then write the rows from before the update back.

    Returns the update (an op or tensor in graph mode).
    """
    unique, _ = tf.unique(tf.reshape(indices, [-1]))
    # Through a new op: a scope over ops an enclosing scope already holds would add nothing.
    with tf.control_dependencies([tf.group(*after)] if after else []):
        # A resource variable gathers only these rows; a TF1 reference variable is read here, so
        # that the read is ordered after its update (its cached snapshot may be a stale copy).
        source = var.read_value() if var.dtype._is_ref_dtype else var
        rows = tf.gather(source, unique)
        return write_clip(var, rows, max_norm, dims, rows=unique, use_locking=use_locking, tf1=tf1)


def touched_by_any_replica(indices: tf.Tensor) -> tf.Tensor:
    """The rows any replica's gradient touched: under a strategy of several replicas, each sees
    the indices of its own share of the batch, while the all-reduced update moved the rows of
    every share. Padded to one length (all-gathered parts must agree), then the padding dropped.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return indices
    flat = tf.reshape(indices, [-1])
    longest = tf.reduce_max(context.all_gather(tf.reshape(tf.size(flat), [1]), axis=0))
    padded = tf.pad(flat, [[0, longest - tf.size(flat)]], constant_values=-1)
    every = context.all_gather(padded, axis=0)
    return tf.boolean_mask(every, every >= 0)

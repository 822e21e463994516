"""VariableClippingOptimizer on tf.compat.v1 optimizers: TF1's scenarios, worked by hand.

SGD with learning rate 3; a row (or column) whose norm after the update is
above 2 is scaled to norm 2.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun.errors import InvalidArgumentError, UnknownVariableError
from optrun.wrappers.v1.clipping import VariableClippingOptimizerV1

DTYPES = [tf.float16, tf.float32, tf.float64]


def _tol(dtype: Any) -> float:
    return 2e-3 if dtype == tf.float16 else 1e-6


def _clipped(row: list[float]) -> np.ndarray:
    row_array = np.asarray(row)
    return 2.0 * row_array / np.linalg.norm(row_array)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _session(distributed: bool) -> Iterator[tuple[Any, Any, Any]]:
    """A graph and session; distributed: an in-process cluster, variables on /job:ps."""
    graph = tf.Graph()
    if not distributed:
        with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
            yield sess, None, None
        return
    cluster = tf.train.ClusterSpec(
        {"ps": [f"127.0.0.1:{_free_port()}"], "worker": [f"127.0.0.1:{_free_port()}"]}
    )
    servers = [
        tf.distribute.Server(cluster, job_name=job, task_index=0, start=True) for job in ("ps", "worker")
    ]
    with graph.as_default(), tf.compat.v1.Session(servers[1].target, graph=graph) as sess:
        yield sess, "/job:ps/task:0", "/job:worker/task:0"


@pytest.mark.parametrize("distributed", [False, True], ids=["local", "ps"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_dense(use_resource: bool, dtype: Any, distributed: bool) -> None:
    with _session(distributed) as (sess, ps, worker):
        with tf.device(ps):
            var0 = tf.compat.v1.Variable([[0.0, 1.0], [2.0, 3.0]], dtype=dtype, use_resource=use_resource)
            var1 = tf.compat.v1.Variable([4.0, 5.0], dtype=dtype, use_resource=use_resource)
        with tf.device(worker):
            grads0 = tf.constant([[0.1, 0.1], [0.1, 0.1]], dtype)
            grads1 = tf.constant([0.01, 0.01], dtype)
            opt = optrun.VariableClippingOptimizer(
                tf.compat.v1.train.GradientDescentOptimizer(3.0), {var0: [1]}, 2.0
            )
            assert isinstance(opt, VariableClippingOptimizerV1)
            update = opt.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(update)
        out0, out1 = sess.run([var0, var1])
        tol = _tol(dtype)
        np.testing.assert_allclose(out0[0], [-0.3, 0.7], atol=tol, rtol=tol)  # norm < 2: kept
        np.testing.assert_allclose(out0[1], _clipped([1.7, 2.7]), atol=tol, rtol=tol)
        np.testing.assert_allclose(out1, [3.97, 4.97], atol=tol, rtol=tol)  # not listed: not clipped


@pytest.mark.parametrize("distributed", [False, True], ids=["local", "ps"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_sparse(use_resource: bool, dtype: Any, distributed: bool, caplog: pytest.LogCaptureFixture) -> None:
    with _session(distributed) as (sess, ps, worker):
        with tf.device(ps):
            var0 = tf.compat.v1.Variable(
                [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], dtype=dtype, use_resource=use_resource
            )
            var1 = tf.compat.v1.Variable(
                [[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]], dtype=dtype, use_resource=use_resource
            )
        with tf.device(worker):
            grads = tf.IndexedSlices(
                tf.constant([[0.1, 0.1], [0.1, 0.1]], dtype), tf.constant([0, 2]), tf.constant([3, 2])
            )
            opt = optrun.VariableClippingOptimizer(
                tf.compat.v1.train.GradientDescentOptimizer(3.0), {var0: [1], var1: [0]}, 2.0
            )
            with caplog.at_level(logging.WARNING, logger="optrun"):
                update = opt.apply_gradients(zip([grads, grads], [var0, var1], strict=True))
        assert "includes dim 0" in caplog.text  # var1 is clipped densely, and says so
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(update)
        out0, out1 = sess.run([var0, var1])
        tol = _tol(dtype)
        np.testing.assert_allclose(out1[:, 0], [-0.3, 0.0, -0.3], atol=tol, rtol=tol)  # norm < 2
        np.testing.assert_allclose(out1[:, 1], _clipped([0.7, 3.0, 4.7]), atol=tol, rtol=tol)
        np.testing.assert_allclose(out0[0], [-0.3, 0.7], atol=tol, rtol=tol)
        np.testing.assert_allclose(out0[1], [2.0, 3.0], atol=tol, rtol=tol)  # untouched row: not clipped
        np.testing.assert_allclose(out0[2], _clipped([3.7, 4.7]), atol=tol, rtol=tol)


def test_repeated_sparse_index_is_clipped_once(sess: Any, use_resource: bool) -> None:
    var = tf.compat.v1.Variable([[3.0, 4.0], [0.0, 1.0]], use_resource=use_resource)
    grads = tf.IndexedSlices(tf.zeros([2, 2]), tf.constant([0, 0]), tf.constant([2, 2]))
    opt = optrun.VariableClippingOptimizer(tf.compat.v1.train.GradientDescentOptimizer(1.0), {var: [1]}, 1.0)
    update = opt.apply_gradients([(grads, var)])
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(update)
    np.testing.assert_allclose(sess.run(var), [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)  # [3, 4] / 5


def test_minimize_chaining_and_delegation(sess: Any, use_resource: bool) -> None:
    a = tf.compat.v1.Variable([3.0, 4.0], name="a", use_resource=use_resource)
    b = tf.compat.v1.Variable([0.0, 6.0], name="b", use_resource=use_resource)
    momentum = tf.compat.v1.train.MomentumOptimizer(0.0, 0.9)  # no move: only the clips act
    opt = optrun.VariableClippingOptimizer(
        optrun.VariableClippingOptimizer(momentum, {a: [0]}, 1.0), {"b": [0]}, 3.0
    )
    train_op = opt.minimize(tf.reduce_sum(a) + tf.reduce_sum(b))
    assert opt.get_slot(a, "momentum") is not None and opt.get_slot_names() == ["momentum"]
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    np.testing.assert_allclose(sess.run(a), [0.6, 0.8], atol=1e-6)
    np.testing.assert_allclose(sess.run(b), [0.0, 3.0], atol=1e-6)


def test_the_train_op_has_tf1s_name(sess: Any) -> None:
    # TF1 named the returned op after its name scope: minimize(name="train") is the op "train".
    w = tf.compat.v1.Variable(np.ones((2, 2), np.float32))
    opt = optrun.VariableClippingOptimizer(tf.compat.v1.train.AdagradOptimizer(0.1), {w: [1]}, 1.0)
    assert opt.minimize(tf.reduce_sum(w), name="train").name == "train"
    unnamed = [opt.minimize(tf.reduce_sum(w)).name for _ in range(2)]
    assert unnamed == ["VariableClipping", "VariableClipping_1"]
    assert sess.graph.get_operation_by_name("train").type == "NoOp"


def test_bad_arguments(sess: Any) -> None:
    v = tf.compat.v1.Variable([[1.0]])
    sgd = tf.compat.v1.train.GradientDescentOptimizer(1.0)
    with pytest.raises(InvalidArgumentError, match="max_norm must be > 0; got -1"):
        optrun.VariableClippingOptimizer(sgd, {v: [0]}, -1.0)
    with pytest.raises(UnknownVariableError, match="'nope'"):
        optrun.VariableClippingOptimizer(sgd, {"nope": [0]}, 1.0).apply_gradients([(tf.ones([1, 1]), v)])
    with pytest.raises(InvalidArgumentError, match="rank 2"):
        optrun.VariableClippingOptimizer(sgd, {v: [2]}, 1.0).apply_gradients([(tf.ones([1, 1]), v)])


CLIPPED_ROW = [1.0656265, 1.6924657]  # [1.7, 2.7] * 2 / ||[1.7, 2.7]||, as in the TF2 tests


@pytest.mark.parametrize("average_outside", [True, False], ids=["average(clip)", "clip(average)"])
def test_chaining_with_moving_average(sess: Any, use_resource: bool, average_outside: bool) -> None:
    var0 = tf.compat.v1.Variable([[0.0, 1.0], [2.0, 3.0]], dtype=tf.float64, use_resource=use_resource)
    sgd = tf.compat.v1.train.GradientDescentOptimizer(3.0)
    if average_outside:
        ema = opt = optrun.MovingAverageOptimizer(
            optrun.VariableClippingOptimizer(sgd, {var0: [1]}, 2.0), 0.5
        )
    else:
        ema = optrun.MovingAverageOptimizer(sgd, average_decay=0.5)
        opt = optrun.VariableClippingOptimizer(ema, {var0: [1]}, 2.0)
    update = opt.apply_gradients([(tf.fill([2, 2], tf.constant(0.1, tf.float64)), var0)])
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(update)
    np.testing.assert_allclose(sess.run(var0), [[-0.3, 0.7], CLIPPED_ROW], atol=1e-6)
    start = np.array([[0.0, 1.0], [2.0, 3.0]])
    # Outside, the average sees the clipped value; inside, the unclipped SGD result [1.7, 2.7].
    seen = np.array([[-0.3, 0.7], CLIPPED_ROW]) if average_outside else np.array([[-0.3, 0.7], [1.7, 2.7]])
    np.testing.assert_allclose(sess.run(ema.average(var0)), 0.5 * (start + seen), atol=1e-6)


# SGD by hand: rows 0 and 2 step by -0.5 each time; row 0 is clipped after the first step
# ([2.5, 3.5] / 4.3012), row 2 after the third ([-0.9, -0.7] / 1.1402).
BY_HAND = [[-0.418762, -0.186267], [30.0, 40.0], [-0.789352, -0.613941], [6.0, 8.0]]


@pytest.mark.parametrize(
    ("make_opt", "by_hand"),
    [
        (lambda: tf.compat.v1.train.GradientDescentOptimizer(0.5), BY_HAND),
        (lambda: tf.compat.v1.train.AdamOptimizer(0.5), None),
    ],
    ids=["sgd", "adam"],
)
def test_fed_sparse_rows_are_clipped_after_the_update(
    sess: Any, use_resource: bool, make_opt: Any, by_hand: Any
) -> None:
    # Indices fed at run time (an embedding lookup): the clip must read the rows the update wrote.
    start = np.array([[3.0, 4.0], [30.0, 40.0], [0.6, 0.8], [6.0, 8.0]], np.float32)
    emb = tf.compat.v1.Variable(start, use_resource=use_resource)
    ids = tf.compat.v1.placeholder(tf.int32, [None])
    inner = make_opt()
    train = optrun.VariableClippingOptimizer(inner, {emb: [1]}, 1.0).minimize(
        tf.reduce_sum(tf.gather(emb, ids))
    )
    # The same optimizer alone, then the touched rows clipped in numpy: the independent answer.
    twin = tf.compat.v1.Variable(start, use_resource=use_resource)
    step = make_opt().minimize(tf.reduce_sum(tf.gather(twin, ids)))
    sess.run(tf.compat.v1.global_variables_initializer())
    expected = start.copy()
    for _ in range(3):
        sess.run(train, {ids: [0, 2]})
        sess.run(twin.assign(expected))
        sess.run(step, {ids: [0, 2]})
        expected = sess.run(twin)
        for row in (0, 2):
            norm = np.linalg.norm(expected[row])
            expected[row] *= min(1.0, 1.0 / norm)
    np.testing.assert_allclose(sess.run(emb), expected, rtol=1e-5, atol=1e-6)
    if by_hand is not None:
        np.testing.assert_allclose(expected, by_hand, atol=1e-5)


@pytest.mark.parametrize("dims", [[1], [0], [0, 1]], ids=str)
def test_clips_are_tf1s_numbers_bit_for_bit(sess: Any, use_resource: bool, dims: list[int]) -> None:
    # TF1's own arithmetic on a twin variable is the reference: after the update,
    # v -= v - clip_by_norm(v) (densely; for a sparse gradient, on the gathered rows).
    start = np.random.default_rng(0).normal(0.0, 1.0, (50, 7)).astype(np.float32)
    ours = tf.compat.v1.Variable(start, use_resource=use_resource)
    twin = tf.compat.v1.Variable(start, use_resource=use_resource)
    sparse = dims == [1]
    ids = tf.constant([3, 7, 11, 40])

    def loss(v: Any) -> Any:
        return tf.reduce_sum(tf.gather(v, ids)) if sparse else tf.reduce_sum(v)

    train = optrun.VariableClippingOptimizer(
        tf.compat.v1.train.GradientDescentOptimizer(0.3), {ours: dims}, 1.7
    )
    step = train.minimize(loss(ours))
    update = tf.compat.v1.train.GradientDescentOptimizer(0.3).minimize(loss(twin))
    with tf.control_dependencies([update]):
        if sparse:
            rows = tf.gather(twin.read_value(), ids)
            delta = tf.IndexedSlices(rows - tf.clip_by_norm(rows, 1.7, dims), ids)
            reference = twin.scatter_sub(delta)
        else:
            value = twin.read_value()
            reference = twin.assign_sub(value - tf.clip_by_norm(value, 1.7, dims))
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(3):
        sess.run(step)
        sess.run(reference)
    np.testing.assert_array_equal(sess.run(ours), sess.run(twin))
    assert not np.array_equal(sess.run(ours), start)


def test_max_norm_as_a_tensor(sess: Any, use_resource: bool) -> None:
    # TF1 handed max_norm to tf.clip_by_norm, so a tensor (a placeholder, to anneal it) worked.
    var = tf.compat.v1.Variable([[3.0, 4.0], [0.0, 1.0]], use_resource=use_resource)
    norm = tf.compat.v1.placeholder(tf.float32, [])
    sgd = tf.compat.v1.train.GradientDescentOptimizer(0.0)  # no move: only the clip acts
    update = optrun.VariableClippingOptimizer(sgd, {var: [1]}, norm).minimize(tf.reduce_sum(var))
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(update, {norm: 2.5})
    np.testing.assert_allclose(sess.run(var), [[1.5, 2.0], [0.0, 1.0]], atol=1e-6)  # [3, 4] * 2.5 / 5


def test_a_max_norm_tensor_still_has_vars_to_clip_dims_checked(sess: Any) -> None:
    norm = tf.compat.v1.placeholder(tf.float32, [])
    sgd = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    with pytest.raises(optrun.InvalidTypeError, match=r"vars_to_clip_dims must be a dict .* got set"):
        optrun.VariableClippingOptimizer(sgd, {"a"}, norm)


def test_numpy_integer_dims_are_taken_as_tf_clip_by_norm_took_them(sess: Any) -> None:
    # Row norms of [[3, 4], [0, 1]] along dim 1: 5 and 1; clipped to 1: [[0.6, 0.8], [0, 1]].
    for dims in (list(np.arange(1, 2)), np.array([1]), range(1, 2), np.int64(1)):
        w = tf.compat.v1.Variable([[3.0, 4.0], [0.0, 1.0]])
        sgd = tf.compat.v1.train.GradientDescentOptimizer(0.0)
        update = optrun.VariableClippingOptimizer(sgd, {w: dims}, 1.0).minimize(tf.reduce_sum(w))
        sess.run(tf.compat.v1.global_variables_initializer())
        sess.run(update)
        np.testing.assert_allclose(sess.run(w), [[0.6, 0.8], [0.0, 1.0]], atol=1e-6)

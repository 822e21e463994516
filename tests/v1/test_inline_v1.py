"""Session calls on the calling thread: for graphs of small tensors only, with the same numbers."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun.evaluation.inline import runs_inline
from optrun.evaluation.small_graph import MAX_ELEMENTS


def test_small_tensors_run_inline_large_or_unknown_ones_in_the_pool(sess: Any) -> None:
    x = tf.compat.v1.placeholder(tf.float64, [100])
    small = tf.reduce_sum(tf.square(x[1:] - x[:-1]))
    assert runs_inline([small])
    side = int(np.sqrt(MAX_ELEMENTS)) + 1  # one tensor just over the limit
    big = tf.reduce_sum(tf.zeros([side, side], tf.float64)) + small
    assert not runs_inline([big])
    unknown = tf.reduce_sum(tf.compat.v1.placeholder(tf.float64, [None]))  # shape known only when fed
    assert not runs_inline([unknown])
    assert not runs_inline([small], targets=[big.op])  # an op to run counts as a fetch does


@pytest.mark.parametrize(("setting", "expected"), [("inline", True), ("pool", False)])
def test_the_switch_fixes_the_choice(
    sess: Any, monkeypatch: pytest.MonkeyPatch, setting: str, expected: bool
) -> None:
    monkeypatch.setenv("OPTRUN_SESSION_RUN", setting)
    tiny = tf.constant(1.0) + 1.0
    large = tf.reduce_sum(tf.zeros([1000, 1000]))
    assert runs_inline([tiny]) is expected and runs_inline([large]) is expected


def test_a_bad_switch_is_refused_with_its_values(monkeypatch: pytest.MonkeyPatch, sess: Any) -> None:
    monkeypatch.setenv("OPTRUN_SESSION_RUN", "caller")
    v = tf.compat.v1.Variable([1.0, 2.0], dtype=tf.float64)
    with pytest.raises(optrun.InvalidArgumentError, match="OPTRUN_SESSION_RUN must be auto, inline or pool"):
        optrun.ScipyOptimizerInterface(tf.reduce_sum(tf.square(v)))


def test_ops_that_call_functions_keep_the_pool(sess: Any) -> None:
    # Control flow v2 and nested functions hide their tensors (here one of a million elements).
    x = tf.compat.v1.placeholder(tf.float64, [4])

    @tf.function
    def hidden(a: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.zeros([1000, 1000], tf.float64)) + tf.reduce_sum(a)

    assert not runs_inline([hidden(x)])
    assert runs_inline([tf.reduce_sum(x)])


@pytest.mark.parametrize(("setting", "on_caller"), [("inline", True), ("pool", False)])
def test_inline_calls_run_on_the_calling_thread(
    sess: Any, monkeypatch: pytest.MonkeyPatch, setting: str, on_caller: bool
) -> None:
    # The loss records the thread its op runs on: the caller's inline, a pool thread otherwise.
    monkeypatch.setenv("OPTRUN_SESSION_RUN", setting)
    v = tf.compat.v1.Variable([3.0, -2.0], dtype=tf.float64, name="v")
    threads: list[int] = []

    def record(value: np.ndarray) -> np.ndarray:
        threads.append(threading.get_ident())
        return value

    seen = tf.compat.v1.py_func(record, [tf.reduce_sum(tf.square(v - 1.0))], tf.float64)
    seen.set_shape([])
    sess.run(tf.compat.v1.global_variables_initializer())
    opt = optrun.ScipyOptimizerInterface(seen + 0.0 * tf.reduce_sum(v), jit_compile=False)
    with opt._backend.bound(sess, None):
        opt._backend.evaluator()(np.array([2.0, 0.0]))
    assert threads and all((t == threading.get_ident()) is on_caller for t in threads)


def test_inline_and_pool_evaluate_the_same_values(sess: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tanh network's loss and gradient, its tensors at the inline limit (128 x 128 = 16,384
    # elements, so that kernels split work across threads): identical bits on either thread.
    rng = np.random.default_rng(0)
    data = tf.constant(rng.normal(size=(128, 3)))
    w1 = tf.compat.v1.Variable(rng.normal(size=(3, 128)), name="w1")
    w2 = tf.compat.v1.Variable(rng.normal(size=(128, 1)), name="w2")
    loss = tf.reduce_mean(tf.square(tf.tanh(data @ w1) @ w2 - 1.0))
    sess.run(tf.compat.v1.global_variables_initializer())
    points = [np.linspace(-1.0, 1.0, 512) * k for k in (1.0, 0.5, 2.0)]
    got = {}
    for setting in ("inline", "pool"):
        monkeypatch.setenv("OPTRUN_SESSION_RUN", setting)
        opt = optrun.ScipyOptimizerInterface(loss, jit_compile=False)
        with opt._backend.bound(sess, None):
            evaluate = opt._backend.evaluator()
            got[setting] = [evaluate(p)[0] for p in points]
    for a, b in zip(got["inline"], got["pool"], strict=True):
        np.testing.assert_array_equal(a, b)
    # And they are the numbers: session.run of the loss at the last point, by TF1's own feed.
    sess.run([w1.assign(points[-1][:384].reshape(3, 128)), w2.assign(points[-1][384:].reshape(128, 1))])
    assert got["inline"][-1][0] == sess.run(loss)

"""MovingAverageOptimizer on tf.compat.v1 optimizers: TF1's scenarios, worked by hand.

Loss ``sum(g0 * var0) + sum(g1 * var1)`` has gradients g0 = [0.1, 0.1] and
g1 = [0.01, 0.01]; SGD with learning rate 2 moves var0 [1, 2] -> [0.8, 1.8]
-> [0.6, 1.6] and var1 [3, 4] -> [2.98, 3.98] -> [2.96, 3.96]. With decay
0.5 the sequential averages after step 1 are (1 + 0.8) / 2 = 0.9 and
(3 + 2.98) / 2 = 2.99.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun.errors import InvalidArgumentError, NotReadyError
from optrun.wrappers.v1.moving_average import MovingAverageOptimizerV1


def _tol(dtype: Any) -> float:
    return 2e-3 if dtype == tf.float16 else 1e-6


def _pick(name: str, part: str, average: bool) -> Any:
    found = [
        v
        for v in tf.compat.v1.global_variables()
        if name in v.op.name and part in v.op.name and ("ExponentialMovingAverage" in v.op.name) == average
    ]
    assert len(found) == 1, [v.op.name for v in found]
    return found[0]


@pytest.mark.parametrize("dtype", [tf.float16, tf.float32, tf.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("sequential", [True, False], ids=["sequential", "parallel"])
@pytest.mark.parametrize("partitioned", [False, True], ids=["plain", "partitioned"])
def test_run_save_restore(
    tmp_path: Any, use_resource: bool, dtype: Any, sequential: bool, partitioned: bool
) -> None:
    parts = ["part_0", "part_1"] if partitioned else [""]
    for part in parts:
        graph = tf.Graph()
        with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
            reps = 2 if partitioned else 1
            partitioner = tf.compat.v1.fixed_size_partitioner(2) if partitioned else None
            kw = {"use_resource": use_resource, "partitioner": partitioner}
            var0 = tf.compat.v1.get_variable("var0", initializer=tf.constant([1.0, 2.0] * reps, dtype), **kw)
            var1 = tf.compat.v1.get_variable("var1", initializer=tf.constant([3.0, 4.0] * reps, dtype), **kw)
            g0, g1 = tf.constant([0.1, 0.1] * reps, dtype), tf.constant([0.01, 0.01] * reps, dtype)
            loss = tf.reduce_sum(g0 * var0) + tf.reduce_sum(g1 * var1)
            opt = optrun.MovingAverageOptimizer(
                tf.compat.v1.train.GradientDescentOptimizer(2.0),
                average_decay=0.5,
                sequential_update=sequential,
            )
            assert isinstance(opt, MovingAverageOptimizerV1) and isinstance(opt, tf.compat.v1.train.Optimizer)
            update = opt.minimize(loss)
            v0, v1 = _pick("var0", part, False), _pick("var1", part, False)
            a0, a1 = _pick("var0", part, True), _pick("var1", part, True)
            assert a0.op.name == v0.op.name + "/ExponentialMovingAverage" and a0.dtype == v0.dtype
            with pytest.raises(InvalidArgumentError, match="Variable to swap"):
                opt.swapping_saver(var_list=[v0])
            train_saver = opt.swapping_saver()
            subset_saver = opt.swapping_saver(var_list=[v0, a0])
            plain_saver = tf.compat.v1.train.Saver()
            path = os.path.join(tmp_path, f"{part or 'model'}-{sequential}")
            tol = _tol(dtype)

            def check(values: dict[Any, list[float]]) -> None:
                for variable, expected in values.items():
                    np.testing.assert_allclose(sess.run(variable), expected, atol=tol, rtol=tol)

            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(update)
            check({v0: [0.8, 1.8], v1: [2.98, 3.98]})
            if sequential:
                check({a0: [0.9, 1.9], a1: [2.99, 3.99]})
            else:  # a benign race, as in TF1: the values before the update, or after it
                got = sess.run(a0)
                assert np.allclose(got, [1.0, 2.0], atol=tol) or np.allclose(got, [0.9, 1.9], atol=tol)
            train_saver.save(sess, path)
            train_saver.restore(sess, path)  # save then restore: the identity
            check({v0: [0.8, 1.8], v1: [2.98, 3.98]})
            if sequential:
                check({a0: [0.9, 1.9], a1: [2.99, 3.99]})
                subset_saver.save(sess, path + "-subset")
                sess.run([v0.assign_add([1.0, 1.0]), v1.assign_add([2.0, 2.0])])
                sess.run([a0.assign_add([3.0, 3.0]), a1.assign_add([4.0, 4.0])])
                subset_saver.restore(sess, path + "-subset")  # only var0 and its average
                check({v0: [0.8, 1.8], a0: [0.9, 1.9], v1: [4.98, 5.98], a1: [6.99, 7.99]})
                train_saver.restore(sess, path)
                plain_saver.restore(sess, path)  # a plain Saver reads the averages into the variables
                check({v0: [0.9, 1.9], v1: [2.99, 3.99], a0: [0.8, 1.8], a1: [2.98, 3.98]})
                train_saver.restore(sess, path)
            sess.run(update)
            check({v0: [0.6, 1.6], v1: [2.96, 3.96]})
            if sequential:  # (0.9 + 0.6) / 2 and (2.99 + 2.96) / 2
                check({a0: [0.75, 1.75], a1: [2.975, 3.975]})
            train_saver.save(sess, path)
            plain_saver.restore(sess, path)
            averaged0, averaged1 = sess.run([v0, v1])
            assert np.all(averaged0 > [0.6, 1.6]) and np.all(averaged0 < [1.0, 2.0])
            assert np.all(averaged1 > [2.96, 3.96]) and np.all(averaged1 < [3.0, 4.0])


def test_saver_before_apply_gradients_is_a_runtime_error(sess: Any, use_resource: bool) -> None:
    var = tf.compat.v1.Variable([1.0], name="var", use_resource=use_resource)
    opt = optrun.MovingAverageOptimizer(tf.compat.v1.train.GradientDescentOptimizer(2.0))
    with pytest.raises(RuntimeError, match="apply_gradients or minimize"):
        opt.swapping_saver([var])
    assert isinstance(NotReadyError("x"), RuntimeError)


def test_wrapped_optimizer_methods_are_called(sess: Any, use_resource: bool) -> None:
    calls: list[str] = []

    class Recording(tf.compat.v1.train.GradientDescentOptimizer):
        def compute_gradients(self, *args: Any, **kwargs: Any) -> Any:
            calls.append("compute")
            return super().compute_gradients(*args, **kwargs)

        def apply_gradients(self, *args: Any, **kwargs: Any) -> Any:
            calls.append("apply")
            return super().apply_gradients(*args, **kwargs)

    var = tf.compat.v1.Variable([1.2], name="var", use_resource=use_resource)
    train_op = optrun.MovingAverageOptimizer(Recording(2.0)).minimize(var**2)
    assert calls == ["compute", "apply"]
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    assert sess.run(var)[0] == pytest.approx(1.2 - 2.0 * 2.4)  # -3.6


def test_num_updates_and_slots_delegate(sess: Any, use_resource: bool) -> None:
    step = tf.compat.v1.train.get_or_create_global_step()
    var = tf.compat.v1.Variable([1.0], name="w", use_resource=use_resource)
    opt = optrun.MovingAverageOptimizer(
        tf.compat.v1.train.MomentumOptimizer(0.5, 0.9), average_decay=0.99, num_updates=step
    )
    train_op = opt.minimize(tf.reduce_sum(var), global_step=step)
    assert opt.get_slot(var, "momentum") is not None and "momentum" in opt.get_slot_names()
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    # Sequential: the step is read after the update bumped it, n = 1, as in TF1;
    # d = min(0.99, 2/11); var 1 -> 0.5; avg = 1 - (9/11) * (1 - 0.5)
    assert sess.run(opt.average(var))[0] == pytest.approx(1 - 9 / 22, abs=1e-6)
    assert sess.run(step) == 1


def test_swapping_saver_in_a_monitored_training_session(tmp_path: Any, use_resource: bool) -> None:
    graph = tf.Graph()
    with graph.as_default():
        step = tf.compat.v1.train.get_or_create_global_step()
        var = tf.compat.v1.Variable([4.0], name="w", use_resource=use_resource)
        opt = optrun.MovingAverageOptimizer(
            tf.compat.v1.train.GradientDescentOptimizer(0.5), average_decay=0.5
        )
        train_op = opt.minimize(tf.reduce_sum(tf.square(var)), global_step=step)
        scaffold = tf.compat.v1.train.Scaffold(saver=opt.swapping_saver())
        with tf.compat.v1.train.MonitoredTrainingSession(
            checkpoint_dir=str(tmp_path),
            scaffold=scaffold,
            save_checkpoint_steps=None,
            save_checkpoint_secs=None,
        ) as sess:
            for _ in range(2):
                sess.run(train_op)  # w: 4 -> 0 -> 0; average: 2 -> 1 (sequential, decay 0.5)
            scaffold.saver.save(sess._tf_sess(), os.path.join(tmp_path, "model.ckpt"))
    with tf.Graph().as_default():
        plain = tf.compat.v1.Variable([0.0], name="w", use_resource=use_resource)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver([plain]).restore(sess, os.path.join(tmp_path, "model.ckpt"))
            assert sess.run(plain)[0] == pytest.approx(1.0)  # evaluation code gets the average


def test_bad_arguments(sess: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=r"average_decay must be in \[0, 1\]; got 1.5"):
        optrun.MovingAverageOptimizer(tf.compat.v1.train.GradientDescentOptimizer(0.1), average_decay=1.5)


@pytest.mark.parametrize(("dtype", "decay", "rtol"), [(tf.float32, 0.999, 1e-6), (tf.float64, 0.999, 1e-12)])
def test_decay_close_to_one_matches_numpy(
    sess: Any, use_resource: bool, dtype: Any, decay: float, rtol: float
) -> None:
    var = tf.compat.v1.Variable([1.0, 2.0], dtype=dtype, use_resource=use_resource)
    opt = optrun.MovingAverageOptimizer(
        tf.compat.v1.train.GradientDescentOptimizer(0.05), average_decay=decay
    )
    update = opt.apply_gradients([(tf.constant([1.0, 1.0], dtype), var)])
    sess.run(tf.compat.v1.global_variables_initializer())
    avg = sess.run(var).astype(np.float64)
    for _ in range(50):
        sess.run(update)
        # numpy, float64, with TF1's rate: 1 - d formed in float32
        avg = avg - (avg - sess.run(var).astype(np.float64)) * float(np.float32(1) - np.float32(decay))
    np.testing.assert_allclose(sess.run(opt.average(var)), avg, rtol=rtol, atol=rtol)


def test_none_gradient_gets_no_average(sess: Any, use_resource: bool) -> None:
    var0 = tf.compat.v1.Variable([1.0, 2.0], name="var0", use_resource=use_resource)
    var1 = tf.compat.v1.Variable([3.0, 4.0], name="var1", use_resource=use_resource)
    opt = optrun.MovingAverageOptimizer(tf.compat.v1.train.GradientDescentOptimizer(2.0), average_decay=0.5)
    update = opt.apply_gradients([(tf.constant([0.1, 0.1]), var0), (None, var1)])
    assert opt.average(var1) is None and opt.average(var0) is not None
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(update)
    np.testing.assert_allclose(sess.run(var1), [3.0, 4.0])
    np.testing.assert_allclose(sess.run(opt.average(var0)), [0.9, 1.9], atol=1e-6)


@pytest.mark.parametrize("num_updates", [False, True], ids=["fixed", "num_updates"])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=lambda d: d.name)
def test_averages_are_tf1s_numbers(sess: Any, use_resource: bool, dtype: Any, num_updates: bool) -> None:
    # TF1's own ExponentialMovingAverage, run after the same updates of a twin variable, is the
    # reference: at 0.9999 it forms 1 - d in float32, which a float64 1 - d misses by 1.7e-4.
    def build(name: str) -> tuple[Any, Any, Any]:
        var = tf.compat.v1.Variable([0.0, 1.0], dtype=dtype, name=name, use_resource=use_resource)
        step = tf.compat.v1.Variable(0, dtype=tf.int64, name=f"{name}_step", trainable=False)
        loss = tf.reduce_sum(var * tf.constant([1.0, 0.5], dtype))
        return var, step, loss

    var, step, loss = build("ours")
    opt = optrun.MovingAverageOptimizer(
        tf.compat.v1.train.GradientDescentOptimizer(1.0),
        average_decay=0.9999,
        num_updates=step if num_updates else None,
        sequential_update=True,
    )
    ours = opt.minimize(loss, global_step=step)
    twin, twin_step, twin_loss = build("tf1")
    ema = tf.compat.v1.train.ExponentialMovingAverage(0.9999, num_updates=twin_step if num_updates else None)
    update = tf.compat.v1.train.GradientDescentOptimizer(1.0).minimize(twin_loss, global_step=twin_step)
    with tf.control_dependencies([update]):
        reference = ema.apply([twin])
    # TF's average initializer reads the variable under a cond, which needs it initialized first.
    sess.run(twin.initializer)
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(300):
        sess.run([ours, reference])
    np.testing.assert_array_equal(sess.run(var), sess.run(twin))
    np.testing.assert_array_equal(sess.run(opt.average(var)), sess.run(ema.average(twin)))


def test_an_average_made_after_a_restore_starts_from_it(tmp_path: Any, use_resource: bool) -> None:
    """TF1 initialized the average from ``initialized_value()``: a fine-tuned model's averages start at
    the restored weights. w = 5 restored, GD(0.1) on sum(w^2): w -> 5 - 0.1 * 10 = 4; decay 0.9: 4.9."""
    path = str(tmp_path / "pre")
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        w = tf.compat.v1.Variable([[5.0, 5.0]], name="w", use_resource=use_resource)
        sess.run(w.initializer)
        path = tf.compat.v1.train.Saver([w]).save(sess, path)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        w = tf.compat.v1.Variable([[1.0, 1.0]], name="w", use_resource=use_resource)
        opt = optrun.MovingAverageOptimizer(tf.compat.v1.train.GradientDescentOptimizer(0.1), 0.9)
        train = opt.minimize(tf.reduce_sum(tf.square(w)))
        tf.compat.v1.train.Saver([w]).restore(sess, path)
        others = [v for v in tf.compat.v1.global_variables() if v is not w]
        sess.run(tf.compat.v1.variables_initializer(others))
        sess.run(train)
        np.testing.assert_allclose(sess.run(w), [[4.0, 4.0]], rtol=1e-6)
        # A reference variable under control flow v2 cannot be read uninitialized there: the
        # average starts at the initial value, 1 - 0.1 * (1 - 4) = 1.3 (documented).
        reads = use_resource or not tf.compat.v1.control_flow_v2_enabled()
        expected = [[4.9, 4.9]] if reads else [[1.3, 1.3]]
        np.testing.assert_allclose(sess.run(opt.get_slot(w, "average")), expected, rtol=1e-6)


def test_average_decay_as_a_tensor(sess: Any, use_resource: bool) -> None:
    # w = 1, GD(0.1) on sum(w^2): w -> 0.8; decay 0.9 fed: avg = 1 - 0.1 * (1 - 0.8) = 0.98.
    w = tf.compat.v1.Variable([1.0], use_resource=use_resource)
    decay = tf.compat.v1.placeholder(tf.float32, [])
    opt = optrun.MovingAverageOptimizer(tf.compat.v1.train.GradientDescentOptimizer(0.1), decay)
    train = opt.minimize(tf.reduce_sum(tf.square(w)))
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train, {decay: 0.9})
    np.testing.assert_allclose(sess.run(opt.get_slot(w, "average")), [0.98], rtol=1e-6)


def test_a_float64_decay_tensor_forms_one_minus_d_in_float64(sess: Any, use_resource: bool) -> None:
    # TF1 formed 1 - d in the decay's dtype: float64 here, not float32's 1.0001659e-4.
    w = tf.compat.v1.Variable([1.0], dtype=tf.float64, use_resource=use_resource)
    decay = tf.compat.v1.placeholder(tf.float64, [])
    opt = optrun.MovingAverageOptimizer(tf.compat.v1.train.GradientDescentOptimizer(0.1), decay)
    train = opt.minimize(tf.reduce_sum(tf.square(w)))
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train, {decay: 0.9999})
    expected = 1.0 - (1.0 - 0.8) * (1.0 - np.float64(0.9999))  # w: 1 -> 0.8
    # float32's 1 - d would be 3.3e-9 off; float64's is off by rounding only.
    np.testing.assert_allclose(sess.run(opt.get_slot(w, "average")), [expected], rtol=1e-11)


def test_a_decay_tensor_still_has_num_updates_checked(sess: Any) -> None:
    decay = tf.compat.v1.placeholder(tf.float32, [])
    sgd = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    with pytest.raises(optrun.InvalidArgumentError, match=r"num_updates must be >= 0; got -1"):
        optrun.MovingAverageOptimizer(sgd, decay, num_updates=-1)
    with pytest.raises(optrun.InvalidTypeError, match=r"num_updates must be None, an int"):
        optrun.MovingAverageOptimizer(sgd, decay, num_updates="7")


def test_the_names_are_the_classes_of_what_they_return_in_graph_mode(sess: Any) -> None:
    # TF1 code checks isinstance(opt, tf.contrib.opt.MovingAverageOptimizer); after the one-word
    # change it must still hold for the graph-mode object the name returns.
    sgd = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    averaged = optrun.MovingAverageOptimizer(sgd)
    clipped = optrun.VariableClippingOptimizer(sgd, {}, 1.0)
    assert isinstance(averaged, optrun.MovingAverageOptimizer)
    assert isinstance(clipped, optrun.VariableClippingOptimizer)
    assert not isinstance(averaged, optrun.VariableClippingOptimizer)
    assert not isinstance(sgd, optrun.MovingAverageOptimizer)


def test_a_subclass_of_the_keras_class_given_a_v1_optimizer_says_what_to_subclass(sess: Any) -> None:
    from optrun.wrappers.v1.moving_average import MovingAverageOptimizerV1

    class Mine(optrun.MovingAverageOptimizer):
        pass

    sgd = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    with pytest.raises(optrun.InvalidTypeError, match=r"Mine subclasses the Keras MovingAverageOptimizer"):
        Mine(sgd)

    class MineV1(MovingAverageOptimizerV1):  # the graph-mode class: TF1's methods, and they run
        def __init__(self, opt: Any, average_decay: float = 0.5, **kwargs: Any) -> None:
            super().__init__(opt, average_decay, **kwargs)

    w = tf.compat.v1.Variable([1.0, 2.0])
    opt = MineV1(sgd)
    train = opt.minimize(tf.reduce_sum(tf.square(w)))
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train)
    # Decay 0.5 from the subclass: w 1 -> 0.8, 2 -> 1.6; averages 0.5 w0 + 0.5 w1 = [0.9, 1.8].
    np.testing.assert_allclose(sess.run(opt.get_slot(w, "average")), [0.9, 1.8], rtol=1e-6)
    assert isinstance(opt, optrun.MovingAverageOptimizer)


def test_float16_averages_are_tf1s_numbers(sess: Any) -> None:
    # TF1's assign_moving_average ran in the variable's own dtype: (avg - v) * cast(1 - d) in
    # float16. The twin below is what tf.contrib.opt ran (ExponentialMovingAverage after the update).
    values = np.array([0.0, 1.0, 100.0], np.float16)
    grad_scale = np.array([1.0, 0.5, 0.25], np.float16)
    ours_var = tf.compat.v1.Variable(values)
    twin_var = tf.compat.v1.Variable(values)
    sgd = tf.compat.v1.train.GradientDescentOptimizer(1.0)
    ours = optrun.MovingAverageOptimizer(sgd)  # 0.9999: 1 - d = 1.0001659e-4 in float16
    train = ours.minimize(tf.reduce_sum(ours_var * grad_scale), var_list=[ours_var])
    update = sgd.minimize(tf.reduce_sum(twin_var * grad_scale), var_list=[twin_var])
    ema = tf.compat.v1.train.ExponentialMovingAverage(0.9999)
    with tf.control_dependencies([update]):
        twin = ema.apply([twin_var])
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(200):
        sess.run([train, twin])
    np.testing.assert_array_equal(sess.run(ours_var), sess.run(twin_var))
    averages = sess.run([ours.get_slot(ours_var, "average"), ema.average(twin_var)])
    np.testing.assert_array_equal(*averages)

"""MovingAverageOptimizer: the seed's worked numbers, swapped checkpoints, Keras integration."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import MovingAverageOptimizer
from optrun.wrappers.ema import ema_decay

DTYPES = [("float16", 1e-3), ("float32", 1e-6), ("float64", 1e-6)]


def make(dtype: str = "float32", decay: float = 0.5, **kwargs):
    var0 = keras.Variable(np.array([1.0, 2.0]), dtype=dtype, name="var0")
    var1 = keras.Variable(np.array([3.0, 4.0]), dtype=dtype, name="var1")
    opt = MovingAverageOptimizer(keras.optimizers.SGD(2.0), average_decay=decay, **kwargs)
    grads = [tf.constant([0.1, 0.1], dtype), tf.constant([0.01, 0.01], dtype)]
    return var0, var1, opt, grads


@pytest.mark.parametrize(("dtype", "tol"), DTYPES)
def test_seed_numbers(dtype: str, tol: float) -> None:
    var0, var1, opt, (g0, g1) = make(dtype)
    opt.apply_gradients([(g0, var0), (g1, var1)])
    np.testing.assert_allclose(var0.numpy(), [0.8, 1.8], atol=tol)
    np.testing.assert_allclose(var1.numpy(), [2.98, 3.98], atol=tol)
    np.testing.assert_allclose(opt.average(var0).numpy(), [0.9, 1.9], atol=tol)
    np.testing.assert_allclose(opt.average(var1).numpy(), [2.99, 3.99], atol=tol)
    opt.apply_gradients([(g0, var0), (g1, var1)])
    np.testing.assert_allclose(var0.numpy(), [0.6, 1.6], atol=tol * 2)
    np.testing.assert_allclose(opt.average(var0).numpy(), [0.75, 1.75], atol=tol * 2)
    assert int(opt.iterations.numpy()) == 2


def test_non_sequential_averages_pre_update_values() -> None:
    var0, var1, opt, (g0, g1) = make(sequential_update=False)
    opt.apply_gradients([(g0, var0), (g1, var1)])
    # avg = v0 - 0.5 * (v0 - v0) = v0 at step 1; step 2: 1 - 0.5*(1 - 0.8) = 0.9
    np.testing.assert_allclose(opt.average(var0).numpy(), [1.0, 2.0], atol=1e-6)
    opt.apply_gradients([(g0, var0), (g1, var1)])
    np.testing.assert_allclose(opt.average(var0).numpy(), [0.9, 1.9], atol=1e-6)
    np.testing.assert_allclose(var0.numpy(), [0.6, 1.6], atol=1e-6)


def test_num_updates_decay() -> None:
    assert float(ema_decay(0.9999, 0)) == pytest.approx(0.1)
    assert float(ema_decay(0.9999, 90)) == pytest.approx(91 / 100)
    assert float(ema_decay(0.5, 1000)) == pytest.approx(0.5)
    var0, var1, opt, (g0, g1) = make(decay=0.9999, num_updates=0)
    opt.apply_gradients([(g0, var0), (g1, var1)])
    # d = 0.1: avg = 1 - 0.9 * (1 - 0.8) = 0.82
    np.testing.assert_allclose(opt.average(var0).numpy(), [0.82, 1.82], atol=1e-6)


def test_num_updates_variable_follows_iterations() -> None:
    inner = keras.optimizers.SGD(2.0)
    var = keras.Variable(np.array([1.0]), name="w")
    opt = MovingAverageOptimizer(inner, average_decay=0.9999, num_updates=inner.iterations)
    g = tf.constant([0.1])
    # As TF1's sequential update: n is read after the step's update, so it counts that step.
    opt.apply_gradients([(g, var)])  # n = 1 -> d = 2/11; var 1 -> 0.8
    first = 1 - (1 - 2 / 11) * (1 - 0.8)
    np.testing.assert_allclose(opt.average(var).numpy(), [first], atol=1e-6)
    opt.apply_gradients([(g, var)])  # n = 2 -> d = 3/12; var -> 0.6
    np.testing.assert_allclose(opt.average(var).numpy(), [first - (1 - 3 / 12) * (first - 0.6)], atol=1e-6)
    # Averaging the values before each update, n is read before it too.
    inner = keras.optimizers.SGD(2.0)
    var = keras.Variable(np.array([1.0]), name="w")
    opt = MovingAverageOptimizer(inner, 0.9999, num_updates=inner.iterations, sequential_update=False)
    opt.apply_gradients([(g, var)])  # n = 0 -> d = 0.1, of the value 1.0: the average stays 1
    opt.apply_gradients([(g, var)])  # n = 1 -> d = 2/11, of the value 0.8
    np.testing.assert_allclose(opt.average(var).numpy(), [1 - (1 - 2 / 11) * 0.2], atol=1e-6)


def test_none_gradient_gets_no_average() -> None:
    var0, var1, opt, (g0, _) = make()
    opt.apply_gradients([(g0, var0), (None, var1)])
    assert opt.average(var1) is None
    np.testing.assert_allclose(var1.numpy(), [3.0, 4.0])
    assert opt.average(var0) is not None


def test_override_check_minimize() -> None:
    var = keras.Variable(np.array([1.2]), name="x")
    opt = MovingAverageOptimizer(keras.optimizers.SGD(2.0))
    opt.minimize(lambda: tf.reduce_sum(var * var), [var])
    np.testing.assert_allclose(var.numpy(), [-3.6], atol=1e-6)  # 1.2 - 2 * 2.4
    pairs = opt.compute_gradients(lambda: tf.reduce_sum(var * var), [var])
    np.testing.assert_allclose(pairs[0][0].numpy(), [-7.2], atol=1e-5)


def test_bad_arguments() -> None:
    with pytest.raises(optrun.InvalidArgumentError, match=r"average_decay must be in \[0, 1\]; got 1.5"):
        MovingAverageOptimizer(keras.optimizers.SGD(0.1), average_decay=1.5)
    with pytest.raises(optrun.InvalidTypeError, match=r"wraps a keras\.optimizers\.Optimizer"):
        MovingAverageOptimizer("sgd")
    with pytest.raises(optrun.InvalidArgumentError, match="num_updates must be >= 0"):
        MovingAverageOptimizer(keras.optimizers.SGD(0.1), num_updates=-1)


def test_delegation() -> None:
    inner = keras.optimizers.SGD(0.25, momentum=0.9)
    var = keras.Variable(np.ones((2, 2)), name="kernel")
    opt = MovingAverageOptimizer(inner, name="ema")
    opt.apply_gradients([(tf.ones((2, 2)), var)])
    assert float(opt.learning_rate) == pytest.approx(0.25)
    opt.learning_rate = 0.5
    assert float(inner.learning_rate) == pytest.approx(0.5)
    assert opt.iterations is inner.iterations
    assert opt.get_slot_names() == ["momentum"]
    np.testing.assert_allclose(opt.get_slot(var, "momentum").numpy(), -0.25 * np.ones((2, 2)))
    assert opt.get_slot(var, "nope") is None
    assert opt.get_name() == "ema"
    names = [v.name for v in opt.variables]
    assert "kernel_average" in names and "kernel_momentum" in names


def test_swapping_saver_round_trip_and_plain_restore(tmp_path) -> None:
    var0, var1, opt, (g0, g1) = make()
    with pytest.raises(
        RuntimeError, match=r"Must call apply_gradients or minimize before creating the swapping_saver"
    ):
        opt.swapping_saver(var0=var0)
    for _ in range(2):
        opt.apply_gradients([(g0, var0), (g1, var1)])
    raw = [var0.numpy(), var1.numpy()]
    avgs = [opt.average(var0).numpy(), opt.average(var1).numpy()]
    saver = opt.swapping_saver(var0=var0, var1=var1)
    path = saver.save(str(tmp_path / "swapped"))
    np.testing.assert_array_equal(var0.numpy(), raw[0])  # live values are raw again

    # A plain checkpoint puts the averages into fresh variables of the same names.
    fresh0 = keras.Variable(np.zeros(2), dtype="float32", name="var0")
    fresh1 = keras.Variable(np.zeros(2), dtype="float32", name="var1")
    tf.train.Checkpoint(var0=fresh0, var1=fresh1).restore(path).expect_partial()
    np.testing.assert_allclose(fresh0.numpy(), [0.75, 1.75], atol=1e-6)
    np.testing.assert_allclose(fresh1.numpy(), avgs[1], atol=1e-7)

    # The swapping saver's restore is the identity for raw values and averages.
    var0.assign([9.0, 9.0])
    opt.average(var0).assign([7.0, 7.0])
    saver.restore(path)
    np.testing.assert_array_equal(var0.numpy(), raw[0])
    np.testing.assert_array_equal(var1.numpy(), raw[1])
    np.testing.assert_array_equal(opt.average(var0).numpy(), avgs[0])
    np.testing.assert_array_equal(opt.average(var1).numpy(), avgs[1])


def test_save_failure_leaves_raw_values(tmp_path) -> None:
    var0, var1, opt, (g0, g1) = make()
    opt.apply_gradients([(g0, var0), (g1, var1)])
    saver = opt.swapping_saver(var0=var0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(Exception):  # noqa: B017 - whatever TF raises for an unwritable path
        saver.save(str(blocker / "sub" / "ckpt"))
    np.testing.assert_allclose(var0.numpy(), [0.8, 1.8], atol=1e-6)
    np.testing.assert_allclose(opt.average(var0).numpy(), [0.9, 1.9], atol=1e-6)


def test_averaged_context_and_assign_averages() -> None:
    var0, var1, opt, (g0, g1) = make()
    with pytest.raises(RuntimeError, match="before averaged"), opt.averaged():
        pass
    opt.apply_gradients([(g0, var0), (g1, var1)])
    with opt.averaged():
        np.testing.assert_allclose(var0.numpy(), [0.9, 1.9], atol=1e-6)
    np.testing.assert_allclose(var0.numpy(), [0.8, 1.8], atol=1e-6)
    opt.assign_averages()
    np.testing.assert_allclose(var0.numpy(), [0.9, 1.9], atol=1e-6)


def test_inside_tf_function() -> None:
    var0, var1, opt, (g0, g1) = make()

    @tf.function
    def step() -> None:
        opt.apply_gradients([(g0, var0), (g1, var1)])

    step()
    step()
    np.testing.assert_allclose(var0.numpy(), [0.6, 1.6], atol=1e-6)
    np.testing.assert_allclose(opt.average(var0).numpy(), [0.75, 1.75], atol=1e-6)


def numpy_ema(start: np.ndarray, values: list[np.ndarray], decay: float) -> np.ndarray:
    """Float64 reference: avg -= (avg - v) * (1 - d) for each post-update value, with TF1's
    ``1 - d`` (formed in float32)."""
    avg, rate = start.astype(np.float64), float(np.float32(1) - np.float32(decay))
    for v in values:
        avg = avg - (avg - v.astype(np.float64)) * rate
    return avg


@pytest.mark.parametrize(
    ("dtype", "decay", "rtol"),
    [
        ("float32", 0.999, 1e-6),
        ("float64", 0.999, 1e-12),
        ("float16", 0.9999, 2e-3),
        ("float16", 0.999, 2e-3),
    ],
)
def test_decay_close_to_one_is_precise(dtype: str, decay: float, rtol: float) -> None:
    var = keras.Variable(np.array([1.0, 2.0]), dtype=dtype, name="w")
    opt = MovingAverageOptimizer(keras.optimizers.SGD(0.05), average_decay=decay)
    start, seen = var.numpy(), []
    for _ in range(50):
        opt.apply_gradients([(tf.constant([1.0, 1.0], dtype), var)])
        seen.append(var.numpy())
    want = numpy_ema(start, seen, decay)
    np.testing.assert_allclose(opt.average(var).numpy().astype(np.float64), want, rtol=rtol, atol=rtol)
    assert not np.allclose(opt.average(var).numpy(), start)  # it moved, even in float16


def test_average_of_a_variable_whose_first_gradient_is_none() -> None:
    a = keras.Variable(np.array([1.0]), name="a")
    b = keras.Variable(np.array([3.0]), name="b")
    opt = MovingAverageOptimizer(keras.optimizers.SGD(1.0), average_decay=0.5)
    opt.apply_gradients([(tf.constant([1.0]), a), (None, b)])
    opt.apply_gradients([(tf.constant([1.0]), a), (tf.constant([0.1]), b)])
    # b starts at 3 (its value before the first update), then sees 2.9: 0.5 * (3 + 2.9).
    np.testing.assert_allclose(opt.average(b).numpy(), [2.95], atol=1e-6)
    np.testing.assert_allclose(opt.average(a).numpy(), [-0.25], atol=1e-6)


def test_traced_but_never_run_update_has_no_averages() -> None:
    var = keras.Variable(np.array([1.0, 1.0]), name="w")
    opt = MovingAverageOptimizer(keras.optimizers.SGD(1.0), average_decay=0.5)

    def apply() -> None:
        opt.apply_gradients([(tf.constant([1.0, 1.0]), var)])

    @tf.function
    def maybe_step(run: tf.Tensor) -> None:
        tf.cond(run, apply, lambda: None)

    maybe_step(tf.constant(False))
    assert not opt.has_averages
    assert opt.average(var) is None
    with pytest.raises(RuntimeError, match="before saving"):  # built, but no average holds a value
        opt.swapping_saver(w=var).save("never-written")
    maybe_step(tf.constant(True))
    assert opt.has_averages
    np.testing.assert_allclose(opt.average(var).numpy(), [0.5, 0.5], atol=1e-6)


def test_float16_swapping_round_trip_is_exact(tmp_path) -> None:
    var = keras.Variable(np.array([1.0, 2.0]), dtype="float16", name="h")
    opt = MovingAverageOptimizer(keras.optimizers.SGD(0.05), average_decay=0.9999)
    for _ in range(5):
        opt.apply_gradients([(tf.constant([1.0, 1.0], "float16"), var)])
    assert opt.average(var).dtype == "float32"
    raw, avg = var.numpy(), opt.average(var).numpy()
    saver = opt.swapping_saver(h=var)
    path = saver.save(str(tmp_path / "half"))
    var.assign([0.0, 0.0])
    opt.average(var).assign([0.0, 0.0])
    saver.restore(path)
    np.testing.assert_array_equal(var.numpy(), raw)
    np.testing.assert_array_equal(opt.average(var).numpy(), avg)
    plain = keras.Variable(np.zeros(2), dtype="float16", name="h")
    tf.train.Checkpoint(h=plain).restore(path).expect_partial()
    np.testing.assert_array_equal(plain.numpy(), avg.astype(np.float16))

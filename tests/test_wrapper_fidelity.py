"""The Keras wrappers keep what they are given: exact float32 averages of float16 variables through
saves, clipping keyed by variables through get_config, the inner optimizer's weight decay."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import MovingAverageOptimizer, VariableClippingOptimizer


def test_saving_and_evaluating_leave_float32_averages_of_float16_variables_exact(tmp_path) -> None:
    var = tf.Variable(np.linspace(1.0, 2.0, 4), dtype=tf.float16)
    opt = MovingAverageOptimizer(keras.optimizers.SGD(0.001), average_decay=0.99)
    for _ in range(5):
        opt.apply_gradients([(tf.ones(4, tf.float16), var)])
    average = opt.average(var)
    assert average.dtype == "float32"
    before = average.numpy().copy()
    # Its float16 rounding differs from it: a swap through the variable would lose bits.
    assert not np.array_equal(before.astype(np.float16).astype(np.float32), before)
    raw = var.numpy().copy()

    saver = opt.swapping_saver(var=var)
    saver.save(str(tmp_path / "ckpt"))
    np.testing.assert_array_equal(average.numpy(), before)
    np.testing.assert_array_equal(var.numpy(), raw)
    with opt.averaged():
        np.testing.assert_array_equal(var.numpy(), before.astype(np.float16))
    np.testing.assert_array_equal(average.numpy(), before)
    np.testing.assert_array_equal(var.numpy(), raw)


def test_a_numpy_count_is_saved_in_the_config() -> None:
    opt = MovingAverageOptimizer(keras.optimizers.SGD(0.1), num_updates=np.int64(5))
    config = opt.get_config()
    assert config["num_updates"] == 5 and type(config["num_updates"]) is int
    assert MovingAverageOptimizer.from_config(config).get_config()["num_updates"] == 5


@pytest.mark.parametrize("count", [True, "3"])
def test_a_count_that_is_not_a_number_is_refused(count: object) -> None:
    with pytest.raises(optrun.InvalidTypeError, match="num_updates must be None, an int"):
        MovingAverageOptimizer(keras.optimizers.SGD(0.1), num_updates=count)


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="d")], name="outer")
    model.layers[0].kernel.assign(np.full((3, 4), 3.0, np.float32))  # each column's norm: 5.196
    return model


def test_clipping_keyed_by_variables_is_saved_by_name(caplog: pytest.LogCaptureFixture) -> None:
    model = _model()
    kernel = model.layers[0].kernel
    for keyed in ({kernel.value.ref(): [0]}, [(kernel, [0])]):
        opt = VariableClippingOptimizer(keras.optimizers.SGD(0.0), keyed, max_norm=0.5)
        with caplog.at_level("WARNING", logger="optrun"):
            assert opt.get_config()["vars_to_clip_dims"] == {}  # the other variables are unknown yet
        assert "clipping of 'outer/d/kernel' is not saved" in caplog.text
        opt.build(model.trainable_variables)
        config = opt.get_config()
        assert config["vars_to_clip_dims"] == {"d/kernel": [0]}  # without the model's name
        loaded = VariableClippingOptimizer.from_config(config)
        loaded.apply_gradients([(tf.zeros((3, 4)), kernel)])
        np.testing.assert_allclose(np.linalg.norm(kernel.numpy(), axis=0), 0.5, rtol=1e-6)
        kernel.assign(np.full((3, 4), 3.0, np.float32))


def test_a_clipped_variable_no_short_name_tells_apart_is_left_out_of_the_config(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    # Two sub-models, each with a layer "dense": a loaded model's paths may be "dense/kernel" twice.
    inputs = keras.Input((3,))
    enc = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="enc")
    dec = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="dense")], name="dec")
    model = keras.Model(inputs, dec(enc(inputs)))
    kernel = enc.layers[0].kernel
    opt = VariableClippingOptimizer(keras.optimizers.SGD(0.0), [(kernel, [0])], max_norm=0.5)
    opt.build(model.trainable_variables)
    with caplog.at_level("WARNING", logger="optrun"):
        assert opt.get_config()["vars_to_clip_dims"] == {}
    assert "'dense/kernel' names several variables" in caplog.text
    model.compile(optimizer=opt, loss="mse")
    model.fit(np.ones((2, 3)), np.ones((2, 3)), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # loads, without that clipping
    assert isinstance(loaded.optimizer, VariableClippingOptimizer)


@pytest.mark.parametrize("wrap", ["average", "clip"])
def test_weight_decay_exclusions_reach_the_inner_optimizer(wrap: str) -> None:
    kernel, bias = tf.Variable([1.0, 1.0], name="kernel"), tf.Variable([1.0, 1.0], name="bias")
    inner = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5, global_clipnorm=1.0)
    opt = (
        MovingAverageOptimizer(inner)
        if wrap == "average"
        else VariableClippingOptimizer(inner, {kernel.ref(): [0]}, max_norm=10.0)
    )
    assert (opt.weight_decay, opt.global_clipnorm) == (0.5, 1.0)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_gradients([(tf.zeros(2), kernel), (tf.zeros(2), bias)])
    # AdamW decays by learning_rate * weight_decay = 0.05 per step; a zero gradient moves nothing else.
    np.testing.assert_allclose(kernel.numpy(), [0.95, 0.95], rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), [1.0, 1.0])


_FRESH = """
import sys, numpy as np, tensorflow as tf, keras
from optrun import MovingAverageOptimizer
var = tf.Variable(np.linspace(1.0, 2.0, 4), dtype=tf.float16)
other = tf.Variable([5.0, 6.0])
opt = MovingAverageOptimizer(keras.optimizers.SGD(0.001), average_decay=0.99)
if sys.argv[2] == "save":
    for _ in range(5):
        opt.apply_gradients([(tf.ones(4, tf.float16), var), (tf.ones(2), other)])
    opt.swapping_saver(var=var, other=other).save(sys.argv[1])
else:
    opt.build([var, other])  # a new process: built, never stepped
    opt.swapping_saver(var=var, other=other).restore(sys.argv[1] + "-1")
print(repr([var.numpy().tolist(), other.numpy().tolist(), opt.average(var).numpy().tolist(),
            opt.average(other).numpy().tolist()]))
"""


def test_a_new_process_restores_a_swapped_checkpoint_before_its_first_step(tmp_path) -> None:
    import ast
    import subprocess
    import sys

    def run(mode: str) -> list:
        done = subprocess.run(
            [sys.executable, "-c", _FRESH, str(tmp_path / "ckpt"), mode],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        found: list = ast.literal_eval(done.stdout.strip().splitlines()[-1])
        return found

    saved, restored = run("save"), run("restore")
    assert restored == saved  # raw values and averages, the float32 average of float16 exact


def test_saving_before_any_update_is_refused() -> None:
    var = tf.Variable([1.0, 2.0])
    opt = MovingAverageOptimizer(keras.optimizers.SGD(0.1))
    with pytest.raises(optrun.NotReadyError, match=r"before creating the swapping_saver \(or, to restore"):
        opt.swapping_saver(var=var)
    opt.build([var])
    saver = opt.swapping_saver(var=var)
    with pytest.raises(optrun.NotReadyError, match="Must call apply_gradients or minimize before saving"):
        saver.save("never-written")

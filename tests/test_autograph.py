"""The user's loss is traced as written first, with AutoGraph only where that fails.

With ``tf.function``'s default options AutoGraph changes nothing in code that
traces without it; code that needs it (Python control flow on tensors, a loop
over a dataset) raises while traced as written and is traced again, converted.
"""

from __future__ import annotations

import sys

import pytest
import tensorflow as tf

import optrun


def _code_file() -> str:
    """The file the caller's code runs from: AutoGraph's rewrite runs from a generated one."""
    return sys._getframe(1).f_code.co_filename


def test_a_loss_that_traces_as_written_is_not_converted() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    files: list[str] = []

    def loss() -> tf.Tensor:
        files.append(_code_file())
        return tf.reduce_sum(tf.square(v - 1.0))

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert opt.evaluate()["loss"] == 4.0 + 9.0  # by hand: (3 - 1)^2 + (-2 - 1)^2
    assert files == [__file__]  # traced once, as written


def test_print_runs_while_tracing_as_under_tf_function(capfd: pytest.CaptureFixture[str]) -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        value = tf.reduce_sum(tf.square(v - 1.0))
        print("loss is", value)
        return value

    tf.function(loss)()
    under_tf_function = capfd.readouterr().out
    result = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).minimize()
    out = capfd.readouterr().out
    assert result.nfev >= 3
    assert under_tf_function.count("loss is") == out.count("loss is") == 1  # once, while tracing


def test_control_flow_on_tensors_falls_back_to_autograph() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    files: list[str] = []

    def loss() -> tf.Tensor:
        files.append(_code_file())
        first = tf.square(v[0] - 1.0)
        return first + ((v[1] - 1.0) ** 2 if v[1] > 0 else (v[1] + 1.0) ** 2)  # a Python if on a tensor

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert opt.evaluate()["loss"] == 4.0 + 1.0  # by hand: (3 - 1)^2 + (-2 + 1)^2
    assert len(files) == 2 and files[0] == __file__ and files[1] != __file__  # as written, then converted
    opt.minimize()
    assert v.numpy() == pytest.approx([1.0, -1.0], abs=1e-6)
    opt.minimize(fetches=[v], loss_callback=lambda x: None)  # a new trace: straight to AutoGraph
    assert len(files) == 3 and files[2] != __file__


def test_a_loop_over_a_dataset_falls_back_to_autograph() -> None:
    v = tf.Variable([0.0], dtype=tf.float64)
    data = tf.data.Dataset.from_tensor_slices([1.0, 2.0, 6.0])

    def loss() -> tf.Tensor:
        total = tf.constant(0.0, tf.float64)
        for y in data:  # as written the trace cannot end: TF stops it, and AutoGraph takes over
            total += tf.square(v[0] - tf.cast(y, tf.float64))
        return total

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False, method="Powell")
    assert opt.evaluate()["loss"] == 1.0 + 4.0 + 36.0  # by hand, at v = 0


def test_an_error_in_the_loss_is_raised_from_the_converted_trace() -> None:
    v = tf.Variable([1.0, 2.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        return tf.reduce_sum(v + tf.constant([1.0, 2.0, 3.0], tf.float64))  # shapes (2,) and (3,)

    with pytest.raises(ValueError, match="Dimensions must be equal, but are 2 and 3"):
        optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).evaluate()

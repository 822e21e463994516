"""The user's loss is traced as written first, through AutoGraph only where needed.

With ``tf.function``'s default options AutoGraph changes nothing in code that
traces without it, except in code that catches exceptions or passes ``print``
around: that code is converted from the start (:func:`traced_as_written`).
Code that needs AutoGraph raises while traced as written and is traced again,
converted, with nothing left behind by the failed trace.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import sys
import traceback

import keras
import pytest
import tensorflow as tf

import optrun
from optrun.errors import InvalidArgumentError
from optrun.evaluation import autograph
from optrun.evaluation.autograph import traced_as_written

V = tf.Variable([3.0, -2.0], dtype=tf.float64)


def _code_file() -> str:
    """The file the caller's code runs from: AutoGraph's rewrite runs from a generated one."""
    return sys._getframe(1).f_code.co_filename


def quiet() -> tf.Tensor:
    return tf.reduce_sum(tf.square(V - 1.0))


def prints_directly() -> tf.Tensor:
    print("tracing")  # a direct call: runs once, while tracing, with or without AutoGraph
    return quiet()


def catches() -> tf.Tensor:
    try:
        return quiet()
    except TypeError:
        return tf.constant(0.0, tf.float64)


def suppresses() -> tf.Tensor:
    with contextlib.suppress(TypeError):
        return quiet()
    return tf.constant(0.0, tf.float64)


def aliases_print() -> tf.Tensor:
    say = print
    say("value")
    return quiet()


def uses_builtins_print() -> tf.Tensor:
    builtins.print(V)
    return quiet()


def calls_catches() -> tf.Tensor:
    return 2.0 * catches()  # reached through a global


class Model:
    def loss(self) -> tf.Tensor:
        return self.residual()

    def residual(self) -> tf.Tensor:
        return catches()


class Quiet:
    def __call__(self) -> tf.Tensor:
        return quiet()


_namespace: dict = {}
exec("def sourceless():\n    return 1.0\n", _namespace)


@pytest.mark.parametrize(
    ("fn", "as_written"),
    [
        (quiet, True),
        (prints_directly, True),
        (Quiet(), True),
        (catches, False),
        (suppresses, False),
        (aliases_print, False),
        (uses_builtins_print, False),
        (calls_catches, False),
        (Model().loss, False),  # a bound method: its class's other methods
        (functools.partial(print, "x"), False),
        (tf.autograph.experimental.do_not_convert(calls_catches), False),  # through __wrapped__
        (_namespace["sourceless"], False),  # no source to read: convert
    ],
    ids=[
        "quiet",
        "direct-print",
        "object",
        "try",
        "suppress",
        "print-alias",
        "builtins.print",
        "global",
        "method",
        "partial-print",
        "wrapped",
        "no-source",
    ],
)
def test_traced_as_written_only_where_autograph_could_change_nothing(fn: object, as_written: bool) -> None:
    assert traced_as_written(fn) is as_written


def test_a_search_too_large_converts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert traced_as_written(quiet)
    monkeypatch.setattr(autograph, "FUNCTIONS", 0)
    assert not traced_as_written(quiet)
    monkeypatch.setattr(autograph, "FUNCTIONS", 200)
    monkeypatch.setattr(autograph, "BUDGET", 1)
    assert not traced_as_written(quiet)


def test_a_loss_that_traces_as_written_is_not_converted() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    files: list[str] = []

    def loss() -> tf.Tensor:
        files.append(_code_file())
        return tf.reduce_sum(tf.square(v - 1.0))

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert opt.evaluate()["loss"] == 4.0 + 9.0  # by hand: (3 - 1)^2 + (-2 - 1)^2
    assert files == [__file__]  # traced once, as written


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


def test_code_that_catches_the_tensor_bool_error_is_converted_from_the_start() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        s = tf.reduce_sum(v * v)
        try:
            if s > 10.0:  # converted: a tf.cond; as written: a TypeError, which except would swallow
                s = 2.0 * s
        except TypeError:
            pass
        return s

    expected = float(tf.function(loss)())
    got = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).evaluate()["loss"]
    assert got == expected == 2.0 * (9.0 + 4.0)  # by hand: s = 13 > 10, doubled


def test_a_variable_made_in_a_failed_trace_is_not_left_behind() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    state: dict[str, tf.Variable] = {}

    def loss() -> tf.Tensor:
        if "w" not in state:  # made on the first call, as a lazily built layer would be
            state["w"] = tf.Variable(tf.fill([2], tf.constant(2.0, tf.float64)), trainable=False)
        s = tf.reduce_sum(state["w"]) * tf.reduce_sum(v)
        return s * s if s > 0 else -s

    # By hand: s = (2 + 2) * (3 - 2) = 4 > 0, so the loss is 16.
    assert optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).evaluate()["loss"] == 16.0


def test_a_keras_layer_built_on_its_first_call_inside_the_loss() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    layer = keras.layers.Dense(
        1, kernel_initializer="ones", bias_initializer="ones", trainable=False, dtype="float64"
    )

    def loss() -> tf.Tensor:
        y = layer(tf.reshape(v, [1, 2]))[0, 0]  # 3 - 2 + 1 = 2
        return y * y if y > 0 else -y

    assert optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).evaluate()["loss"] == 4.0


def test_print_through_an_alias_prints_at_every_evaluation(capfd: pytest.CaptureFixture[str]) -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    say = print

    def loss() -> tf.Tensor:
        value = tf.reduce_sum(tf.square(v - 1.0))
        say("loss is", value)  # AutoGraph makes this a print op, as under tf.function
        return value

    result = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).minimize()
    assert capfd.readouterr().out.count("loss is") >= result.nfev >= 3


def test_print_called_directly_runs_while_tracing_as_under_tf_function(
    capfd: pytest.CaptureFixture[str],
) -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        value = tf.reduce_sum(tf.square(v - 1.0))
        print("loss is", value)
        return value

    tf.function(loss)()
    under_tf_function = capfd.readouterr().out
    result = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).minimize()
    assert result.nfev >= 3
    assert under_tf_function.count("loss is") == capfd.readouterr().out.count("loss is") == 1


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


def test_optruns_own_errors_are_raised_from_the_first_trace() -> None:
    v = tf.Variable([1.0, 2.0], dtype=tf.float64)
    files: list[str] = []

    def loss() -> tf.Tensor:
        files.append(_code_file())
        return v * 2.0  # not a scalar

    with pytest.raises(InvalidArgumentError, match="loss"):
        optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).evaluate()
    assert files == [__file__]  # no second, converted trace


def test_an_error_in_the_loss_is_raised_once_from_the_converted_trace() -> None:
    v = tf.Variable([1.0, 2.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        return tf.reduce_sum(v + tf.constant([1.0, 2.0, 3.0], tf.float64))  # shapes (2,) and (3,)

    with pytest.raises(ValueError, match="Dimensions must be equal, but are 2 and 3") as caught:
        optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False).evaluate()
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert any("__autograph_generated_file" in frame.filename for frame in frames)  # as before
    assert caught.value.__cause__ is None

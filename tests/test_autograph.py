"""The loss, constraints and fetches go through AutoGraph as ``tf.function`` would convert them,
where they need it: code that traces without the rewrite is traced as written.

Whatever kind of callable a user passes (a function, a lambda, a bound method, a
``functools.partial``, an object with ``__call__``), Python control flow on tensors works in
the code it calls, and an error raised there names the user's file and function.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import ScipyOptimizerInterface
from optrun.causes import user_frame_of


def branching(w: tf.Variable, scale: float = 1.0) -> tf.Tensor:
    if tf.reduce_sum(w) > 0:  # a tensor condition: fails in a graph unless AutoGraph rewrites it
        return scale * tf.reduce_sum((w - 1.0) ** 2)
    return scale * tf.reduce_sum((w + 1.0) ** 2)


class Model:
    def __init__(self, w: tf.Variable) -> None:
        self.w = w

    def loss(self) -> tf.Tensor:
        return branching(self.w)

    def __call__(self) -> tf.Tensor:
        return branching(self.w)


def fails(w: tf.Variable) -> tf.Tensor:
    raise ValueError(f"no loss for {w.shape}")


@pytest.mark.parametrize("kind", ["lambda", "method", "partial", "object"])
def test_every_kind_of_callable_gets_autographs_rewrite(kind: str) -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    loss: Any = {
        "lambda": lambda: branching(v),
        "method": Model(v).loss,
        "partial": functools.partial(branching, v, 1.0),
        "object": Model(v),
    }[kind]
    opt = ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert opt.evaluate()["loss"] == 13.0  # the sum is 1 > 0: (3 - 1)^2 + (-2 - 1)^2
    opt.minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, 1.0], atol=1e-6)


def test_a_fetch_lambda_gets_it_too() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    seen: list[float] = []
    opt = ScipyOptimizerInterface(lambda: branching(v), var_list=[v], jit_compile=False)
    opt.minimize(fetches=[lambda: branching(v, 2.0)], loss_callback=lambda f: seen.append(float(f)))
    assert seen[0] == 26.0  # 2 x 13 at the start point


def test_an_error_in_a_function_a_lambda_calls_names_that_function() -> None:
    v = tf.Variable([1.0], dtype=tf.float64)
    with pytest.raises(ValueError, match="no loss") as caught:
        ScipyOptimizerInterface(lambda: fails(v), var_list=[v]).minimize()
    frame = user_frame_of(caught.value)
    assert frame is not None
    # Both traces failed alike: the error is the first's, from fails() as written, at its line.
    line = fails.__code__.co_firstlineno + 1
    assert (os.path.basename(frame.file), frame.function, frame.line) == ("test_autograph.py", "fails", line)
    assert str(frame) == f"test_autograph.py:{line} in fails"


def test_lambdas_sharing_a_line_need_no_rewrite(caplog: pytest.LogCaptureFixture) -> None:
    # The seed's constrained example writes its two constraints on one line: AutoGraph could not
    # tell them apart, and they need no rewrite, so they are traced as written.
    v = tf.Variable([7.0, 7.0], dtype=tf.float64)
    with caplog.at_level("DEBUG", logger="optrun"):
        opt = ScipyOptimizerInterface(
            lambda: tf.reduce_sum(v * v), var_list=[v], equalities=[lambda: v[0] - 1.0, lambda: v[1] - 1.0]
        )
        opt.minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, 1.0], atol=1e-6)
    assert "AutoGraph" not in caplog.text


def test_lambdas_sharing_a_line_that_need_the_rewrite_say_so_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v = tf.Variable([3.0], dtype=tf.float64)
    with caplog.at_level("DEBUG", logger="optrun"), pytest.raises(tf.errors.OperatorNotAllowedInGraphError):
        ScipyOptimizerInterface(
            lambda: tf.reduce_sum(v * v),
            var_list=[v],
            inequalities=[lambda: v[0] if v[0] > 0 else -v[0], lambda: v[0]],
        )
    assert "AutoGraph cannot convert" in caplog.text


def _frame_file() -> str:
    """The file of the code that called this: AutoGraph's rewrite runs from a generated file."""
    caller = inspect.currentframe()
    assert caller is not None and caller.f_back is not None
    return caller.f_back.f_code.co_filename


def test_a_loss_without_control_flow_on_tensors_is_traced_as_written_once() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    files: list[str] = []

    def loss() -> tf.Tensor:
        files.append(_frame_file())
        return tf.reduce_sum((v - [1.0, -1.0]) ** 2)

    opt = ScipyOptimizerInterface(loss, var_list=[v])
    assert opt.evaluate()["loss"] == 5.0  # (3 - 1)^2 + (-2 + 1)^2
    opt.minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, -1.0], atol=1e-6)
    assert files == [__file__]  # one trace, of the code as written


def test_a_loss_with_control_flow_on_tensors_is_traced_again_through_autograph(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    files: list[str] = []

    def loss() -> tf.Tensor:
        files.append(_frame_file())
        return branching(v)

    with caplog.at_level("DEBUG", logger="optrun"):
        opt = ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert "tracing without AutoGraph failed" in caplog.text
    # The trace as written stopped at the tensor condition; the second ran AutoGraph's rewrite.
    assert len(files) == 2 and files[0] == __file__ and files[1] != __file__
    assert opt.evaluate()["loss"] == 13.0  # the sum is 1 > 0: (3 - 1)^2 + (-2 - 1)^2


def test_a_loss_looping_over_a_dataset_is_traced_through_autograph() -> None:
    # Without AutoGraph, `for batch in dataset` cannot end inside a graph: TensorFlow raises, but
    # only after tracing the body 32 times. A loss holding a dataset goes to AutoGraph at once.
    v = tf.Variable([0.0], dtype=tf.float64)
    data = tf.data.Dataset.from_tensor_slices(np.array([1.0, 2.0, 6.0])).batch(2)
    bodies: list[int] = []

    def loss() -> tf.Tensor:
        total = tf.constant(0.0, tf.float64)
        for batch in data:
            bodies.append(1)
            total += tf.reduce_sum((batch - v[0]) ** 2)
        return total

    # (TensorFlow passes no gradient through a loop over a dataset: only the value is checked.)
    opt = ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert len(bodies) == 1  # AutoGraph's loop traces its body once
    assert opt.evaluate()["loss"] == 1.0 + 4.0 + 36.0


def test_a_fetch_that_needs_the_rewrite_gets_it_when_the_loss_does_not() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    seen: list[float] = []
    opt = ScipyOptimizerInterface(lambda: tf.reduce_sum((v - 1.0) ** 2), var_list=[v], jit_compile=False)
    opt.minimize(fetches=[lambda: branching(v, 2.0)], loss_callback=lambda f: seen.append(float(f)))
    assert seen[0] == 26.0  # 2 x 13 at the start point
    np.testing.assert_allclose(v.numpy(), [1.0, 1.0], atol=1e-6)


def test_an_error_inside_a_rewritten_if_names_the_function_it_is_in() -> None:
    # AutoGraph compiles the branch into a nested function (if_body): named as the user's function.
    v = tf.Variable([1.0], dtype=tf.float64)

    def branch_fails() -> tf.Tensor:
        if tf.reduce_sum(v) > 0:
            raise ValueError("no branch")
        return tf.reduce_sum(v)

    with pytest.raises(ValueError, match="no branch") as caught:
        ScipyOptimizerInterface(branch_fails, var_list=[v]).minimize()
    assert str(user_frame_of(caught.value)) == "test_autograph.py in branch_fails"


def test_a_loss_converted_by_the_user_is_traced_once(caplog: pytest.LogCaptureFixture) -> None:
    # The guide's advice for a loss known to need AutoGraph: no first attempt as written.
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    calls: list[int] = []

    def loss() -> tf.Tensor:
        calls.append(1)
        return branching(v)

    with caplog.at_level("DEBUG", logger="optrun"):
        opt = ScipyOptimizerInterface(tf.autograph.to_graph(loss), var_list=[v], jit_compile=False)
    assert "tracing without AutoGraph failed" not in caplog.text
    assert len(calls) == 1
    assert opt.evaluate()["loss"] == 13.0  # the sum is 1 > 0: (3 - 1)^2 + (-2 - 1)^2


def test_a_variable_the_loss_creates_while_tracing_is_created_once_and_works() -> None:
    # The trace as written refuses variables: one made there and abandoned would stay
    # uninitialized in the loss's own state, where the AutoGraph trace would read it.
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    class Loss:
        w: tf.Variable | None = None

        def __call__(self) -> tf.Tensor:
            if self.w is None:
                self.w = tf.Variable([1.0, 1.0], dtype=tf.float64, trainable=False)
            value = tf.reduce_sum(self.w * (v - 1.0) ** 2)
            if v[0] > 100.0:  # a tensor condition: needs AutoGraph
                value = value * 2.0
            return value

    loss = Loss()
    opt = ScipyOptimizerInterface(loss, var_list=[v], jit_compile=False)
    assert opt.evaluate()["loss"] == 13.0  # (3 - 1)^2 + (-2 - 1)^2
    opt.minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, 1.0], atol=1e-6)


def test_optruns_own_refusal_is_not_traced_twice() -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    calls: list[int] = []

    def loss() -> tf.Tensor:
        calls.append(1)
        return (v - 1.0) ** 2  # two numbers: not a loss

    with pytest.raises(optrun.InvalidArgumentError, match="Reduce it"):
        ScipyOptimizerInterface(loss, var_list=[v])
    assert len(calls) == 1


def test_a_tf_function_loss_creating_its_variable_on_its_first_call_works() -> None:
    # tf.function's own first call creates (lifts and initializes) the variable; the trace as
    # written lets it, or the function would count that call as done and refuse it later.
    x = tf.Variable([3.0, -2.0])
    holder: list[tf.Variable] = []

    @tf.function
    def loss() -> tf.Tensor:
        if not holder:
            holder.append(tf.Variable(2.0, trainable=False))
        return tf.reduce_sum((x - holder[0]) ** 2)

    ScipyOptimizerInterface(loss, var_list=[x], jit_compile=False).minimize()
    np.testing.assert_allclose(x.numpy(), [2.0, 2.0], atol=1e-5)
    assert float(loss()) == pytest.approx(0.0, abs=1e-9)  # the function still works outside optrun


class _Options:
    """An object with ``args`` and ``keywords`` of its own (as a CLI's parsed options have)."""

    def __init__(self, target: float) -> None:
        self.target, self.keywords = target, ["a", "b"]


@pytest.mark.parametrize("args", [_Options(1.0), 7])
def test_a_loss_object_with_attributes_named_like_a_partials_is_looked_into_safely(args: Any) -> None:
    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    class Loss:
        def __init__(self) -> None:
            self.args, self.keywords = args, ["a", "b"]

        def __call__(self) -> tf.Tensor:
            return tf.reduce_sum((v - 1.0) ** 2)

    assert ScipyOptimizerInterface(Loss(), var_list=[v]).evaluate()["loss"] == 13.0  # (3-1)^2 + (-2-1)^2


def test_an_error_both_traces_raise_keeps_the_users_own_cause() -> None:
    v = tf.Variable([1.0], dtype=tf.float64)
    table: dict[str, float] = {}

    def loss() -> tf.Tensor:
        try:
            return table["w"] * tf.reduce_sum(v)
        except KeyError as missing:
            raise ValueError("no weight w") from missing

    with pytest.raises(ValueError, match="no weight w") as caught:
        ScipyOptimizerInterface(loss, var_list=[v])
    assert isinstance(caught.value.__cause__, KeyError)
    frame = user_frame_of(caught.value)
    assert frame is not None and frame.function == "loss" and frame.line is not None

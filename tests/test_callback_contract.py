"""What ``minimize``'s callbacks receive (TF2 mode), and the error for a signature that cannot take it.

``loss_callback(*fetched)``: one NumPy value per entry of ``fetches``, in order,
none without fetches, on every loss request (scipy's ``nfev``); ``step_callback(x)``
with the packed float64 vector. A callback that cannot take its arguments is an
``InvalidArgumentError`` at the start of ``minimize``, before any evaluation.
The expected numbers come from NumPy and from counting in the loss itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun.errors import InvalidArgumentError, OptrunError
from tests.callback_support import START, AtPoints, Requests
from tests.conftest import rosen_np


class Counted:
    """A Rosenbrock loss that counts, from inside TensorFlow, how often it is evaluated."""

    def __init__(self) -> None:
        self.v = tf.Variable(START)
        self.evaluations = 0

    def _tick(self) -> np.float32:
        self.evaluations += 1
        return np.float32(0.0)

    def __call__(self) -> tf.Tensor:
        v = self.v
        rosen = tf.reduce_sum(100.0 * tf.square(v[1:] - tf.square(v[:-1])) + tf.square(1.0 - v[:-1]))
        # Runs once per real evaluation (not on cache hits, not while tracing).
        return rosen + tf.py_function(self._tick, [], tf.float32)


def interface(loss: Counted, **kwargs: Any) -> Requests:
    # No XLA: a py_function cannot be compiled, and the count must be of one evaluation path.
    return Requests(loss, var_list=[loss.v], jit_compile=False, **kwargs)


def test_without_fetches_the_loss_callback_gets_no_arguments_once_per_loss_request() -> None:
    loss = Counted()
    opt = interface(loss)
    before = loss.evaluations
    calls: list[tuple[Any, ...]] = []
    result = opt.minimize(loss_callback=lambda *args: calls.append(args))
    assert result.success
    assert calls and all(args == () for args in calls)
    assert len(calls) == opt.requests == result.nfev  # every loss request, line-search points included
    assert len(calls) > result.nit  # so not once per iteration
    assert loss.evaluations > before  # the loss itself ran (its count includes optrun's own checks)


def test_a_zero_parameter_loss_callback_needs_no_star_args() -> None:
    loss = Counted()
    count = [0]

    def on_loss() -> None:
        count[0] += 1

    opt = interface(loss, options={"maxiter": 5})
    result = opt.minimize(loss_callback=on_loss)
    assert count[0] == opt.requests == result.nfev > 0


def test_two_fetches_are_two_numpy_values_at_the_point_asked_for() -> None:
    v = tf.Variable(START)
    loss_fn = lambda: tf.reduce_sum(100.0 * tf.square(v[1:] - tf.square(v[:-1])) + tf.square(1.0 - v[:-1]))
    seen: list[tuple[Any, ...]] = []
    steps: list[np.ndarray] = []
    AtPoints(loss_fn, var_list=[v], jit_compile=False).minimize(
        fetches=[loss_fn, v], loss_callback=lambda *args: seen.append(args), step_callback=steps.append
    )
    points = [START.astype(np.float64), AtPoints.SECOND, AtPoints.SECOND]
    assert len(seen) == len(points)  # the cached third request calls it too
    for args, point in zip(seen, points, strict=True):
        assert len(args) == 2
        loss_value, v_value = args
        assert isinstance(loss_value, np.generic | np.ndarray) and np.ndim(loss_value) == 0
        assert isinstance(v_value, np.ndarray) and v_value.shape == (3,)
        np.testing.assert_allclose(v_value, point, rtol=1e-6)
        assert float(loss_value) == pytest.approx(rosen_np(point), rel=1e-5)
    assert len(steps) == 1 and steps[0].dtype == np.float64
    np.testing.assert_array_equal(steps[0], AtPoints.SECOND)


def test_two_fetches_in_a_scipy_run_match_the_variables_at_each_evaluation() -> None:
    loss = Counted()
    got: list[tuple[float, np.ndarray, np.ndarray]] = []

    def on_loss(loss_value: Any, v_value: Any) -> None:
        # In TF2 mode the variable holds the point being evaluated: an independent reading.
        got.append((float(loss_value), np.array(v_value), loss.v.numpy().copy()))

    opt = interface(loss)
    result = opt.minimize(fetches=[loss, loss.v], loss_callback=on_loss)
    assert len(got) == opt.requests == result.nfev
    for loss_value, v_value, now in got:
        np.testing.assert_array_equal(v_value, now)
        assert loss_value == pytest.approx(rosen_np(v_value.astype(np.float64)), rel=1e-5, abs=1e-6)


def one(loss: Any) -> None:
    """A one-parameter callback, named so the message can be checked for its name."""


def needs_keyword(value: Any, *, scale: float) -> None:
    """Takes its fetch, but also a keyword that minimize never passes."""


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"loss_callback": lambda loss: None},
            [
                r"^loss_callback <lambda>\(loss\) \(defined at .*test_callback_contract\.py:\d+\)",
                "cannot be called with 0 positional arguments",
                "no fetches were given",
                r"Pass fetches=\[\.\.\.\] with one entry per parameter",
            ],
        ),
        (
            {"loss_callback": one, "fetches": "two"},
            [
                r"^loss_callback one\(loss\)",
                "cannot be called with 2 positional arguments",
                "fetches has 2 entries",
                r"Give it 2 parameters, one per fetch in order \(or \*args\)",
            ],
        ),
        (
            {"loss_callback": lambda: None, "fetches": "one"},
            [r"^loss_callback <lambda>\(\)", "with 1 positional argument ", "fetches has 1 entry"],
        ),
        (
            {"loss_callback": needs_keyword, "fetches": "one"},
            [r"^loss_callback needs_keyword\(value, \*, scale\)", "missing a required argument"],
        ),
        (
            {"step_callback": lambda: None},
            [r"^step_callback <lambda>\(\)", "with 1 positional argument", "packed float64 vector x"],
        ),
        (
            {"step_callback": lambda x, iteration: None},
            [r"^step_callback <lambda>\(x, iteration\)", r"lambda x: print\(x\)"],
        ),
    ],
    ids=["one-param-no-fetches", "one-param-two-fetches", "none-for-one", "kwonly", "step-0", "step-2"],
)
def test_a_callback_that_cannot_take_its_arguments_is_refused_before_any_evaluation(
    kwargs: dict[str, Any], expected: list[str]
) -> None:
    loss = Counted()
    opt = interface(loss)
    kwargs = dict(kwargs)  # not the parameter's own dict
    fetches = {"one": [loss], "two": [loss, loss.v]}.get(kwargs.pop("fetches", None))
    before = loss.evaluations
    with pytest.raises(InvalidArgumentError) as info:
        opt.minimize(fetches=fetches, **kwargs)
    message = str(info.value)
    for pattern in expected:
        assert re.search(pattern, message), (pattern, message)
    assert isinstance(info.value, OptrunError) and isinstance(info.value, ValueError)
    assert loss.evaluations == before  # the loss never ran
    np.testing.assert_array_equal(loss.v.numpy(), START)  # the variables are as they were


class Both:
    """A callable object whose ``__call__`` takes the two fetches."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, loss_value: Any, v_value: Any) -> None:
        self.calls += 1


def _accepted() -> list[tuple[str, Callable[[], Callable[..., Any]], str | None]]:
    """(id, a maker of the callback, fetches: None, 'one' or 'two')."""
    return [
        ("star-args-two", lambda: lambda *args: None, "two"),
        ("first-then-star", lambda: lambda loss, *rest: None, "two"),
        ("default-for-extra", lambda: lambda loss, extra=None: None, "one"),
        ("builtin-without-signature", lambda: max, "two"),  # max(loss, loss): no signature to read
        ("bound-builtin", lambda: [].append, "one"),
        ("partial", lambda: functools.partial(lambda tag, a, b: None, "tag"), "two"),
        ("callable-object", Both, "two"),
        ("mock", mock.Mock, None),
        ("print-star-args", lambda: print, "one"),
    ]


@pytest.mark.parametrize(
    ("make", "fetch_kind"), [c[1:] for c in _accepted()], ids=[c[0] for c in _accepted()]
)
def test_callbacks_that_can_take_their_arguments_are_accepted(
    make: Callable[[], Callable[..., Any]], fetch_kind: str | None
) -> None:
    loss = Counted()
    fetches = {"one": [loss], "two": [loss, loss]}.get(fetch_kind or "")
    calls = [0]
    callback = make()

    def counting(*args: Any) -> None:
        calls[0] += 1

    result = interface(loss, options={"maxiter": 3}).minimize(
        fetches=fetches, loss_callback=callback, step_callback=counting
    )
    assert result.nfev > 0 and calls[0] == result.nit


def test_nested_fetches_come_back_nested() -> None:
    v = tf.Variable([3.0, -1.0], dtype=tf.float64)
    w = tf.Variable(5.0, dtype=tf.float64)
    got: list[tuple[Any, ...]] = []
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v - 2.0)), var_list=[v])
    opt.minimize(fetches=[(v, w), {"w": w}], loss_callback=lambda *a: got.append(a))
    pair, named = got[0]
    np.testing.assert_allclose(pair[0], [3.0, -1.0])
    assert isinstance(pair, tuple) and float(pair[1]) == 5.0 and float(named["w"]) == 5.0

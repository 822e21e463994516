"""TF1 seed fidelity in TF2 mode: what subclasses and scripts written for tf.contrib.opt rely on."""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import optrun
from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun.evaluation.bounds import pack_bounds
from optrun.evaluation.packing import Layout


class OneStep(optrun.ExternalOptimizerInterface):
    """TF1-era subclass: calls step_callback unconditionally, reads packed_bounds as pairs."""

    seen_bounds: Any = None

    def _minimize(self, initial_val, loss_grad_func, step_callback, packed_bounds, **unused):  # type: ignore[no-untyped-def, override]
        OneStep.seen_bounds = packed_bounds
        for _ in range(2):
            loss_grad_func(initial_val)
        step_callback(initial_val)
        _, grad = loss_grad_func(initial_val)
        return initial_val - grad


def test_step_callback_is_always_callable_and_loss_callback_fires_per_request() -> None:
    v = tf.Variable([7.0, -2.0])
    opt = OneStep(lambda: tf.reduce_sum(tf.square(v - [0.0, 1.0])) / 2.0)
    opt.minimize()  # no callbacks given: the subclass still calls step_callback
    np.testing.assert_allclose(v.numpy(), [0.0, 1.0], atol=1e-6)
    v.assign([7.0, -2.0])
    loss_callback = mock.Mock()
    opt.minimize(fetches=[v], loss_callback=loss_callback)
    assert loss_callback.call_count == 3  # every loss request, cached or not, as TF1 did
    np.testing.assert_allclose(loss_callback.call_args_list[0][0][0], [7.0, -2.0])


def test_packed_bounds_read_like_tf1() -> None:
    v = tf.Variable([7.0, 7.0, 7.0])
    OneStep(
        lambda: tf.reduce_sum(tf.square(v)), var_to_bounds={v.ref(): ([None, 2.0, -1.0], None)}
    ).minimize()
    bounds = OneStep.seen_bounds
    assert len(bounds) == 3
    # TF1 filled the unbounded sides in as -inf / inf (np.broadcast_to of its default pair).
    inf = np.inf
    assert bounds[0] == (-inf, inf) and bounds[1] == (2.0, inf) and bounds[2] == (-1.0, inf)
    assert list(bounds) == [(-inf, inf), (2.0, inf), (-1.0, inf)]
    assert bounds[1:] == [(2.0, inf), (-1.0, inf)]
    lower, upper = np.array(list(bounds)).T  # a TF1-era subclass clips with them
    np.testing.assert_array_equal(np.clip([5.0, 0.0, -3.0], lower, upper), [5.0, 2.0, -1.0])
    np.testing.assert_array_equal(bounds.lower, [-np.inf, 2.0, -1.0])  # the array form stays
    # ...and scipy takes it as bounds= unchanged
    result = scipy.optimize.minimize(
        lambda x: float(x @ x), np.full(3, 5.0), bounds=bounds, method="L-BFGS-B"
    )
    np.testing.assert_allclose(result.x, [0.0, 2.0, 0.0], atol=1e-5)


def test_none_inside_a_bound_array_means_unbounded() -> None:
    layout = Layout.of([tf.Variable(np.zeros((2, 2)))])
    packed = pack_bounds([([[None, 1.0], [None, None]], [[3.0, None], [None, 4.0]])], layout)
    assert packed is not None
    np.testing.assert_array_equal(packed.lower, [-np.inf, 1.0, -np.inf, -np.inf])
    np.testing.assert_array_equal(packed.upper, [3.0, np.inf, np.inf, 4.0])


def test_optimizer_kwargs_is_public_and_survives() -> None:
    v = tf.Variable([7.0, 7.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)), method="SLSQP")
    opt.minimize()
    assert opt.optimizer_kwargs.get("method") == "SLSQP"
    opt.optimizer_kwargs["options"] = {"maxiter": 1}  # TF1 code edits it between runs
    v.assign([7.0, 7.0])
    assert opt.minimize().nit == 1


def test_tnc_maxiter_becomes_maxfun(caplog: pytest.LogCaptureFixture) -> None:
    v = tf.Variable(np.zeros(5))
    rosen = lambda: tf.reduce_sum(100.0 * tf.square(v[1:] - tf.square(v[:-1])) + tf.square(1.0 - v[:-1]))
    with caplog.at_level(logging.INFO, logger="optrun"):
        opt = optrun.ScipyOptimizerInterface(rosen, method="TNC", options={"maxiter": 7})
    assert "maxfun" in caplog.text
    assert opt.optimizer_kwargs["options"] == {"maxfun": 7}
    assert opt.minimize().nfev <= 8  # scipy counts the start point too
    with pytest.raises(InvalidArgumentError, match="not both"):
        optrun.ScipyOptimizerInterface(rosen, method="TNC", options={"maxiter": 7, "maxfun": 3})


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5, True])
def test_blas_threads_is_checked(bad: Any) -> None:
    v = tf.Variable([1.0])
    with pytest.raises(InvalidArgumentError, match="blas_threads must be"):
        optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v), blas_threads=bad)


@pytest.fixture
def blas_at_once() -> None:
    """The BLAS libraries known, as after a first long run: limits from the first evaluation."""
    from optrun.interfaces import threads

    threads._controller()


def test_blas_limit_lasts_exactly_as_long_as_minimize(blas_at_once: None) -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    seen: list[list[int]] = []
    v = tf.Variable([3.0, 1.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)))
    opt.minimize(step_callback=lambda x: seen.append(blas_threads()))
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert blas_threads() == before
    unlimited = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)), blas_threads="unlimited")
    seen.clear()
    v.assign([3.0, 1.0])
    unlimited.minimize(step_callback=lambda x: seen.append(blas_threads()))
    assert seen and all(threads == before for threads in seen)


def test_first_blas_limit_waits_for_a_run_long_enough_to_pay_for_finding_the_libraries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from threadpoolctl import threadpool_info

    from optrun.interfaces import threads

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    v = tf.Variable([3.0, 1.0])
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)))
    seen: list[list[int]] = []
    threads._controller.cache_clear()
    monkeypatch.setattr(threads, "DEFER_S", 3600.0)
    monkeypatch.setattr(threads, "building", lambda: False)  # a build of another test's interface
    opt.minimize(loss_callback=lambda: seen.append(blas_threads()))
    assert seen and all(t == before for t in seen)  # a short run: the libraries never looked up
    assert threads._controller.cache_info().currsize == 0
    threads._controller()  # once known (a longer run found them), a run is limited from its start
    seen.clear()
    v.assign([3.0, 1.0])
    opt.minimize(loss_callback=lambda: seen.append(blas_threads()))
    assert seen and all(t == [1] * len(before) for t in seen)
    assert blas_threads() == before
    # A number asked for is set from the first evaluation, libraries known or not.
    if all(t == 1 for t in before):
        return  # pools of one thread already (OPENBLAS_NUM_THREADS=1, one core): nothing to see
    threads._controller.cache_clear()
    asked = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v)), blas_threads=1)
    seen.clear()
    v.assign([3.0, 1.0])
    asked.minimize(loss_callback=lambda: seen.append(blas_threads()))
    assert seen and all(t == [1] * len(before) for t in seen)
    assert blas_threads() == before


@pytest.mark.parametrize(
    ("gaps", "build_at", "applied_at"),
    [
        # The first evaluation compiles (0.2 s); the rest come 0.1 ms apart: never limited.
        ([0.0, 0.2] + [0.0001] * 50, None, None),
        # 10 ms apart: limited at the first tick past DEFER_S with a pace to judge (the third).
        ([0.0, 0.2, 0.01, 0.01, 0.01], None, 3),
        # A pace is judged on an evaluation after the first, however long the first took.
        ([0.0, 0.2], None, None),
        ([0.0, 0.01, 0.001], None, None),  # heavy, but DEFER_S has not passed
        # Light and short, but a tier-2 build started: limited at once.
        ([0.0, 0.0001, 0.0001, 0.0001], 3, 3),
        ([0.0, 0.2] + [0.0001] * 5, 2, 2),
    ],
)
def test_first_blas_limit_only_where_it_gains(
    monkeypatch: pytest.MonkeyPatch, gaps: list[float], build_at: int | None, applied_at: int | None
) -> None:
    import contextlib
    import itertools

    from optrun.interfaces import threads

    clock = itertools.accumulate([0.0, *gaps])  # the limit's start, then each tick's time
    monkeypatch.setattr(threads, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(threads, "_known", lambda: False)
    applied: list[int] = []
    limit = threads._Limit(1, contextlib.ExitStack())
    monkeypatch.setattr(threads, "building", lambda: build_at is not None and limit._ticks >= build_at)
    monkeypatch.setattr(limit, "apply", lambda: applied.append(limit._ticks))
    for _ in gaps:
        limit.tick()
        if applied:
            break
    assert (applied[0] if applied else None) == applied_at


def test_wrapping_something_else_names_both_worlds() -> None:
    with pytest.raises(InvalidTypeError, match=r"tf\.compat\.v1\.train\.Optimizer"):
        optrun.MovingAverageOptimizer("sgd")
    with pytest.raises(InvalidTypeError, match=r"keras\.optimizers\.Optimizer"):
        optrun.VariableClippingOptimizer(object(), {}, 1.0)


def test_blas_policy_per_method_seen_from_a_loss_callback_and_results_unchanged(blas_at_once: None) -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    v = tf.Variable([3.0, 1.0, -2.0], dtype=tf.float64)

    def run(method: str, setting: Any) -> tuple[list[list[int]], np.ndarray, int]:
        seen: list[list[int]] = []
        v.assign([3.0, 1.0, -2.0])
        opt = optrun.ScipyOptimizerInterface(
            lambda: tf.reduce_sum((v - [1.0, 2.0, 3.0]) ** 2), method=method, blas_threads=setting
        )
        result = opt.minimize(loss_callback=lambda: seen.append(blas_threads()))
        return seen, v.numpy().copy(), int(result.nfev)

    for method, limited in (("L-BFGS-B", True), ("trust-constr", True), ("SLSQP", False)):
        seen, x_auto, nfev_auto = run(method, "auto")
        expected = [1] * len(before) if limited else before
        assert seen and all(threads == expected for threads in seen), (method, seen[:2])
        _, x_free, nfev_free = run(method, "unlimited")
        np.testing.assert_array_equal(x_auto, x_free)  # the limit changes the time, not the numbers
        assert nfev_auto == nfev_free
        np.testing.assert_allclose(x_auto, [1.0, 2.0, 3.0], atol=1e-5)
    assert blas_threads() == before

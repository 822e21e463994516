"""The TF2 default's first tier: the traced evaluation made pure (each variable read replaced by the
value the evaluation assigned to it) and run by a session, on the calling thread when the graph is
small. It must give the plain function's numbers, and refuse every graph the rewrite would not be
exact for, or that is too large to copy."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import optrun
from optrun.evaluation import pure_graph
from optrun.evaluation.pure_graph import SessionCall, pure_graph_def
from optrun.evaluation.small_graph import MAX_ELEMENTS

OPTIONS = {"maxiter": 200, "ftol": 0.0, "gtol": 0.0}


def _rosen(v: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)


def _first_tier(opt: optrun.ScipyOptimizerInterface, fetches: tuple = ()) -> object:
    return opt._backend.evaluator(fetches)._first


@pytest.fixture(autouse=True)
def _no_tier2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTRUN_TIER2", "never")  # these tests are about tier 1 alone


def test_a_small_graph_is_evaluated_by_a_session_with_the_plain_functions_numbers() -> None:
    v = tf.Variable(np.zeros(20))
    opt = optrun.ScipyOptimizerInterface(lambda: _rosen(v), options=OPTIONS)
    assert isinstance(_first_tier(opt), SessionCall) and _first_tier(opt).inline
    # One point by hand: numpy's Rosenbrock and its gradient, the same digits.
    x = np.random.default_rng(0).normal(size=20)
    packed, _ = _first_tier(opt)(x)
    np.testing.assert_allclose(packed[0], scipy.optimize.rosen(x), rtol=1e-14)
    np.testing.assert_allclose(packed[1:], scipy.optimize.rosen_der(x), rtol=1e-12, atol=1e-12)
    assert _first_tier(opt)._trusted
    result = opt.minimize()
    v.assign(np.zeros(20))
    fixed = optrun.ScipyOptimizerInterface(lambda: _rosen(v), jit_compile=False, options=OPTIONS).minimize()
    reference = scipy.optimize.minimize(
        scipy.optimize.rosen, np.zeros(20), jac=scipy.optimize.rosen_der, method="L-BFGS-B", options=OPTIONS
    )
    np.testing.assert_allclose(result.x, fixed.x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.x, reference.x, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(v.numpy(), result.x)  # assigned at the end
    assert result.tiers["evaluations"] == {"plain": result.nfev, "xla": 0}


def test_fetches_and_captured_data_are_computed_from_x_alone() -> None:
    data = tf.constant(np.linspace(-1.0, 1.0, 50))  # captured: becomes a constant of the pure graph
    w = tf.Variable(np.zeros(2))
    loss = lambda: tf.reduce_sum((w[0] * data + w[1] - 3.0 * data - 0.5) ** 2)
    opt = optrun.ScipyOptimizerInterface(loss, options={"gtol": 1e-12})
    double_w = lambda: 2.0 * w
    assert isinstance(_first_tier(opt, (double_w,)), SessionCall)
    seen: list[tuple[float, np.ndarray]] = []
    result = opt.minimize(fetches=[double_w], loss_callback=lambda value: None, step_callback=None)
    np.testing.assert_allclose(result.x, [3.0, 0.5], atol=1e-7)  # least squares, by hand
    w.assign([1.0, 2.0])
    result = opt.minimize(fetches=[loss, double_w], loss_callback=lambda a, b: seen.append((a, b)))
    # The first point: w = (1, 2): sum((-2 d + 1.5)^2) over d, and 2 w, as fetched on tier 1.
    d = np.linspace(-1.0, 1.0, 50)
    assert seen[0][0] == pytest.approx(np.sum((-2.0 * d + 1.5) ** 2), rel=1e-12)
    np.testing.assert_array_equal(seen[0][1], [2.0, 4.0])


def test_a_graph_of_large_tensors_is_run_by_the_sessions_thread_pool() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(MAX_ELEMENTS // 2, 3))  # 3 columns: more elements than a small graph's
    b = a @ [1.5, -2.0, 0.25] + 0.01 * rng.normal(size=len(a))
    w = tf.Variable(np.zeros(3))
    data, target = tf.constant(a), tf.constant(b)
    opt = optrun.ScipyOptimizerInterface(
        lambda: tf.reduce_sum((tf.linalg.matvec(data, w) - target) ** 2), options={"gtol": 1e-10}
    )
    tier = _first_tier(opt)
    assert isinstance(tier, SessionCall) and not tier.inline
    # One point by hand: |A x - b|^2 and its gradient 2 A^T (A x - b).
    x = np.array([0.5, 1.0, -1.0])
    packed, _ = tier(x)
    residual = a @ x - b
    np.testing.assert_allclose(packed[0], residual @ residual, rtol=1e-12)
    np.testing.assert_allclose(packed[1:], 2.0 * a.T @ residual, rtol=1e-10)
    assert tier._trusted  # the session served, not the plain function after an error
    result = opt.minimize()
    np.testing.assert_allclose(result.x, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-6)
    np.testing.assert_array_equal(w.numpy(), result.x)  # assigned at the end


def _pure(loss, variables) -> object:
    opt = optrun.ScipyOptimizerInterface(loss, var_list=variables)
    _, concrete, _ = opt._backend.trace()
    return pure_graph_def(concrete, opt._backend._tf_vars)


def test_graphs_the_rewrite_would_not_be_exact_for_keep_the_plain_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v = tf.Variable(np.ones(3))
    other = tf.Variable(2.0, dtype=tf.float64)
    data = tf.constant(np.ones(1000))  # 8,000 bytes
    table = tf.Variable(np.arange(6.0).reshape(3, 2))
    assert _pure(lambda: tf.reduce_sum(v**2), [v]) is not None  # the control
    # Another variable's state is not the evaluation's to rewrite.
    assert _pure(lambda: tf.reduce_sum(v**2) * other, [v]) is None
    # Too much captured data to copy into the graph, or too many operations.
    with_data = lambda: tf.reduce_sum(v**2) + tf.reduce_sum(data)
    assert _pure(with_data, [v]) is not None
    with monkeypatch.context() as patch:
        patch.setattr(pure_graph, "MAX_CONSTANT_BYTES", 7_999)
        assert _pure(with_data, [v]) is None
    # Data baked into the graph as a constant counts as captured data does.
    baked = np.ones(100_000)  # 800,000 bytes in the traced graph
    assert _pure(lambda: tf.reduce_sum(v**2) + tf.reduce_sum(baked), [v]) is not None
    with monkeypatch.context() as patch:
        patch.setattr(pure_graph, "MAX_CONSTANT_BYTES", 700_000)
        assert _pure(lambda: tf.reduce_sum(v**2) + tf.reduce_sum(baked), [v]) is None
    # Strings: their size is not the dtype's.
    words = tf.constant(["a", "bb"])
    assert _pure(lambda: tf.reduce_sum(v**2) + tf.cast(tf.size(words), tf.float64), [v]) is None
    chain = lambda: tf.reduce_sum(tf.sin(tf.sin(tf.sin(v))))
    assert _pure(chain, [v]) is not None
    with monkeypatch.context() as patch:
        patch.setattr(pure_graph, "MAX_OPS", 5)
        assert _pure(chain, [v]) is None
    # A gather reads the variable by handle, not through a plain read.
    assert _pure(lambda: tf.reduce_sum(tf.gather(table, [0, 2]) ** 2), [table]) is None
    # Python inside the graph.
    assert _pure(lambda: tf.py_function(lambda a: a * 2.0, [tf.reduce_sum(v)], tf.float64), [v]) is None
    # A nested tf.function: its ops are out of sight.
    inner = tf.function(lambda: tf.reduce_sum(v**2))
    assert _pure(lambda: inner(), [v]) is None


def test_a_session_error_is_raised_as_the_plain_function_raises_it() -> None:
    v = tf.Variable([20.0])

    def loss() -> tf.Tensor:  # log(10 - v) is NaN for v > 10: CheckNumerics raises
        return tf.reduce_sum(v**2) + tf.reduce_sum(
            tf.debugging.check_numerics(tf.math.log(10.0 - v), "v ran away")
        )

    messages = []
    for jit in (None, False):
        v.assign([20.0])
        opt = optrun.ScipyOptimizerInterface(loss, var_list=[v], jit_compile=jit)  # no eager probe
        if jit is None:
            assert isinstance(_first_tier(opt), SessionCall)
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            opt.minimize()
        messages.append(re.sub(r"__inference_body_\d+", "", caught.value.message))  # two traces
    # The plain function's error, with the user's own line in TensorFlow's trace of it.
    assert "v ran away" in messages[0] and messages[0] == messages[1]
    assert "test_pure_graph.py" in messages[0], messages[0]


def test_the_switch_keeps_the_plain_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTRUN_TIER1", "function")
    v = tf.Variable(np.zeros(5))
    opt = optrun.ScipyOptimizerInterface(lambda: _rosen(v), options=OPTIONS)
    assert not isinstance(_first_tier(opt), SessionCall)
    np.testing.assert_allclose(opt.minimize().x, np.ones(5), atol=1e-6)


def test_evaluate_leaves_x_in_the_variables_on_every_tier() -> None:
    v = tf.Variable(np.zeros(3))
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum((v - 1.0) ** 2), var_list=[v])
    assert isinstance(_first_tier(opt), SessionCall)
    assert opt.evaluate(np.array([5.0, 5.0, 5.0]))["loss"] == pytest.approx(48.0)  # 3 * 4^2
    np.testing.assert_array_equal(v.numpy(), [5.0, 5.0, 5.0])


def test_the_public_import_serves_where_the_c_api_import_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(graph: tf.Graph, definition: object) -> None:
        raise AttributeError("internals changed")

    monkeypatch.setattr(pure_graph, "_c_import", broken)
    v = tf.Variable(np.zeros(20))
    opt = optrun.ScipyOptimizerInterface(lambda: _rosen(v), options=OPTIONS)
    assert isinstance(_first_tier(opt), SessionCall)
    x = np.random.default_rng(1).normal(size=20)
    packed, _ = _first_tier(opt)(x)
    np.testing.assert_allclose(packed[0], scipy.optimize.rosen(x), rtol=1e-14)
    np.testing.assert_allclose(packed[1:], scipy.optimize.rosen_der(x), rtol=1e-12, atol=1e-12)
    assert _first_tier(opt)._trusted


def test_an_op_colocated_with_a_variable_still_runs_in_the_session() -> None:
    # colocate_with(v) names v's handle, which the rewrite drops: the import would refuse it.
    v = tf.Variable(np.ones(3))

    def loss() -> tf.Tensor:
        with tf.compat.v1.colocate_with(v):
            doubled = v * 2.0
        return tf.reduce_sum(doubled**2)

    opt = optrun.ScipyOptimizerInterface(loss, var_list=[v])
    tier = _first_tier(opt)
    assert isinstance(tier, SessionCall)
    packed, _ = tier(np.array([1.0, 2.0, 3.0]))
    assert packed[0] == pytest.approx(56.0)  # (2 + 4 + 6)^2 term by term: 4 + 16 + 36
    np.testing.assert_allclose(packed[1:], [8.0, 16.0, 24.0])  # d/dx (2x)^2 = 8x
    assert tier._trusted

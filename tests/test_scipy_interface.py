"""ScipyOptimizerInterface against worked-out answers (real TF, real scipy)."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import ScipyOptimizerInterface
from tests.conftest import rosen_np


def rosen_tf(v: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)


def test_least_squares_scalar_vector_matrix() -> None:
    targets = [np.float32(3.5), np.array([1.0, -2.0]), np.arange(6.0).reshape(2, 3) / 7.0]
    variables = [
        tf.Variable(0.0, name="s"),
        tf.Variable(tf.zeros([2], tf.float64), name="vec"),
        tf.Variable(tf.zeros([2, 3], tf.float64), name="mat"),
    ]

    def loss() -> tf.Tensor:
        return tf.add_n(
            [
                tf.reduce_sum(tf.square(tf.cast(v, tf.float64) - t))
                for v, t in zip(variables, targets, strict=True)
            ]
        )

    result = ScipyOptimizerInterface(loss).minimize()
    assert result.success
    for var, target in zip(variables, targets, strict=True):
        np.testing.assert_allclose(var.numpy(), target, atol=1e-5)


ROSEN_CASES = [
    ("L-BFGS-B", {"options": {"ftol": 1e-15, "gtol": 1e-10}}, 1e-5),
    ("BFGS", {"options": {"gtol": 1e-9}}, 1e-5),
    ("Powell", {"options": {"xtol": 1e-10, "ftol": 1e-14, "maxiter": 20000}}, 1e-5),
    ("SLSQP", {"options": {"maxiter": 500}}, 1e-3),
    ("CG", {"options": {"gtol": 1e-6}}, 1e-3),  # gtol 1e-3 stops ~1e-3 away: at the tolerance
    ("Newton-CG", {}, 1e-3),
    ("Nelder-Mead", {"options": {"maxiter": 20000, "xatol": 1e-8, "fatol": 1e-12}}, 1e-3),
    ("TNC", {"options": {"maxfun": 1000}}, 1e-1),
    ("trust-constr", {"options": {"maxiter": 2000}}, 1e-3),
]


@pytest.mark.parametrize(("method", "kwargs", "tol"), ROSEN_CASES, ids=[c[0] for c in ROSEN_CASES])
def test_rosenbrock_5d(method: str, kwargs: dict, tol: float) -> None:
    v = tf.Variable(np.zeros(5), name="x")
    opt = ScipyOptimizerInterface(lambda: rosen_tf(v), method=method, **kwargs)
    result = opt.minimize()
    np.testing.assert_allclose(v.numpy(), np.ones(5), atol=tol)
    # The reported objective is the numpy Rosenbrock at the reported x.
    assert result.fun == pytest.approx(rosen_np(result.x), abs=1e-12)


def test_rosenbrock_cobyla_2d() -> None:
    # Current scipy's COBYLA (PRIMA) stops at a trust radius of 1e-4 by default, at
    # [0.89, 0.80] even in plain numpy; tol=1e-8 lets maxiter 9000 be the limit.
    from scipy.optimize import minimize, rosen

    v = tf.Variable(np.zeros(2))
    kwargs = {"method": "COBYLA", "tol": 1e-8, "options": {"maxiter": 9000}}
    ScipyOptimizerInterface(lambda: rosen_tf(v), **kwargs).minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, 1.0], atol=1e-1)
    reference = minimize(rosen, np.zeros(2), **kwargs)
    # Same algorithm, same start: the paths agree up to float round-off.
    np.testing.assert_allclose(v.numpy(), reference.x, atol=1e-3)


def constrained_problem(method: str | None, **kwargs):
    vector = tf.Variable([7.0, 7.0], name="vector")
    kw = {} if method is None else {"method": method}
    opt = ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(vector)),
        equalities=[lambda: vector[1] - 1.0],
        inequalities=[lambda: vector[0] - 1.0],
        **kw,
        **kwargs,
    )
    return vector, opt


@pytest.mark.parametrize("method", ["SLSQP", "trust-constr", "COBYLA", "COBYQA", None])
def test_constrained_example(method: str | None) -> None:
    vector, opt = constrained_problem(method)
    result = opt.minimize()
    # trust-constr's barrier stops at x0 = 1.0004 here, as plain scipy does.
    tol = 1e-3 if method in ("COBYLA", "COBYQA", "trust-constr") else 1e-5
    np.testing.assert_allclose(vector.numpy(), [1.0, 1.0], atol=tol)
    assert result.fun == pytest.approx(2.0, abs=10 * tol)


def test_trust_constr_matches_plain_scipy() -> None:
    from scipy.optimize import NonlinearConstraint, minimize

    vector, opt = constrained_problem("trust-constr")
    opt.minimize()
    reference = minimize(
        lambda v: (v @ v, 2 * v),
        np.array([7.0, 7.0]),
        jac=True,
        method="trust-constr",
        constraints=[
            NonlinearConstraint(lambda v: [v[1] - 1], 0, 0, jac=lambda v: [[0.0, 1.0]]),
            NonlinearConstraint(lambda v: [v[0] - 1], 0, np.inf, jac=lambda v: [[1.0, 0.0]]),
        ],
    )
    np.testing.assert_allclose(vector.numpy(), reference.x, atol=1e-5)


def test_seed_example_with_bounds_and_options() -> None:
    vector = tf.Variable([7.0, 7.0])
    opt = optrun.ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(vector)),
        var_list=[vector],
        equalities=[lambda: vector[1] - 1.0],
        inequalities=[lambda: vector[0] - 1.0],
        var_to_bounds={vector.ref(): (0.0, np.inf)},
        method="SLSQP",
        options={"maxiter": 100},
    )
    result = opt.minimize(step_callback=None, loss_callback=None, fetches=None)
    np.testing.assert_allclose(vector.numpy(), [1.0, 1.0], atol=1e-5)
    for key in ("x", "fun", "success", "message", "nit", "nfev"):
        assert key in result


def test_bounds_ref_form() -> None:
    vector = tf.Variable([7.0, 7.0])
    ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(vector)), var_to_bounds={vector.ref(): (1.0, np.inf)}
    ).minimize()
    np.testing.assert_allclose(vector.numpy(), [1.0, 1.0], atol=1e-5)


def test_bounds_pair_form_with_array() -> None:
    vector = tf.Variable([7.0, 7.0])
    ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(vector)),
        var_to_bounds=[(vector, ([-np.inf, 2.0], np.inf))],
    ).minimize()
    np.testing.assert_allclose(vector.numpy(), [0.0, 2.0], atol=1e-5)


def test_bounds_by_name_on_one_of_two_variables() -> None:
    a = tf.Variable([5.0, -5.0], name="alpha")
    b = tf.Variable([5.0, -5.0], name="beta")
    ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(a)) + tf.reduce_sum(tf.square(b)),
        var_to_bounds={"alpha": (-1.0, None), "beta:0": (None, 3.0)},
    ).minimize()
    # Unconstrained optimum is 0 everywhere; each bound only bites where 0 is outside.
    np.testing.assert_allclose(a.numpy(), [0.0, 0.0], atol=1e-5)
    b.assign([5.0, 5.0])
    a.assign([2.0, 2.0])
    ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(a - 4.0)) + tf.reduce_sum(tf.square(b - 4.0)),
        var_to_bounds={"beta": (None, 3.0)},
    ).minimize()
    np.testing.assert_allclose(a.numpy(), [4.0, 4.0], atol=1e-5)
    np.testing.assert_allclose(b.numpy(), [3.0, 3.0], atol=1e-5)


def test_callbacks() -> None:
    v = tf.Variable([7.0, -2.0])

    def loss() -> tf.Tensor:
        return 0.5 * tf.reduce_sum(tf.square(v - [0.0, 1.0]))

    seen: list[float] = []
    steps: list[np.ndarray] = []
    ScipyOptimizerInterface(loss).minimize(
        fetches=[loss], loss_callback=seen.append, step_callback=steps.append
    )
    assert seen[0] == pytest.approx(29.0)  # 0.5 * (7^2 + 3^2)
    assert seen[-1] == pytest.approx(0.0, abs=1e-10)
    assert steps and steps[-1].dtype == np.float64
    np.testing.assert_allclose(steps[-1], [0.0, 1.0], atol=1e-5)


def test_fetches_accept_variables_and_loss_callback_without_fetches() -> None:
    v = tf.Variable([3.0])
    values: list[np.ndarray] = []
    calls: list[tuple] = []
    opt = ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v - 1.0)))
    opt.minimize(fetches=[v], loss_callback=values.append)
    np.testing.assert_allclose(values[0], [3.0])
    v.assign([3.0])
    opt.minimize(loss_callback=lambda *args: calls.append(args))
    assert calls and all(args == () for args in calls)


def test_one_tf_evaluation_per_distinct_point() -> None:
    """SLSQP asks for f, grad, 10 constraint values and Jacobians: each point costs one TF call."""
    v = tf.Variable(np.full(10, 3.0))
    points: list[bytes] = []
    opt = ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(v)),
        inequalities=[lambda i=i: v[i] - 0.5 for i in range(10)],
        method="SLSQP",
    )
    result = opt.minimize(fetches=[v], loss_callback=lambda x: points.append(x.tobytes()))
    np.testing.assert_allclose(v.numpy(), np.full(10, 0.5), atol=1e-6)
    assert len(points) == len(set(points))
    assert len(points) <= result.nfev + 1


def test_mixed_dtypes_and_float64_to_scipy() -> None:
    a = tf.Variable([4.0, 4.0], dtype=tf.float32)
    b = tf.Variable([[4.0]], dtype=tf.float64)
    steps: list[np.ndarray] = []

    def loss() -> tf.Tensor:
        return tf.reduce_sum(tf.square(tf.cast(a, tf.float64) - 1.0)) + tf.reduce_sum(tf.square(b + 2.0))

    opt = ScipyOptimizerInterface(
        loss, inequalities=[lambda: tf.cast(a[0], tf.float64) - 2.0], method="SLSQP"
    )
    opt.minimize(step_callback=steps.append)
    assert all(s.dtype == np.float64 for s in steps)
    np.testing.assert_allclose(a.numpy(), [2.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(b.numpy(), [[-2.0]], atol=1e-8)
    assert a.dtype == tf.float32 and b.dtype == tf.float64


def test_method_survives_and_no_retrace() -> None:
    v = tf.Variable([3.0, -1.0], dtype=tf.float64)
    traces = []

    def loss() -> tf.Tensor:
        traces.append(1)  # Python runs once per trace (and once eagerly at construction)
        return tf.reduce_sum(tf.square(v - 2.0))

    opt = ScipyOptimizerInterface(loss, method="TNC")
    opt.minimize()
    after_first = len(traces)
    v.assign([10.0, 10.0])
    opt.minimize()
    opt.minimize()
    assert len(traces) == after_first
    assert opt.optimizer_kwargs["method"] == "TNC"
    np.testing.assert_allclose(v.numpy(), [2.0, 2.0], atol=1e-4)


def test_unused_variable_gets_zero_gradient(caplog: pytest.LogCaptureFixture) -> None:
    used = tf.Variable([3.0])
    unused = tf.Variable([5.0], name="unused")
    with caplog.at_level(logging.WARNING, logger="optrun"):
        opt = ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(used)), var_list=[used, unused])
    assert "'unused'" in caplog.text
    opt.minimize()
    np.testing.assert_allclose(used.numpy(), [0.0], atol=1e-6)
    np.testing.assert_allclose(unused.numpy(), [5.0])


def test_a_constraint_without_a_gradient_is_named(caplog: pytest.LogCaptureFixture) -> None:
    v = tf.Variable([0.5, 0.5], dtype=tf.float64)
    no_gradient = lambda: tf.numpy_function(lambda a: a[0] - 1.0, [v], tf.float64)
    with caplog.at_level(logging.WARNING, logger="optrun"):
        opt = ScipyOptimizerInterface(
            lambda: tf.reduce_sum(v**2), equalities=[lambda: v[0] + v[1]], inequalities=[no_gradient]
        )
    assert opt.ungraded_constraints == ("inequalities[0]",)
    assert "inequalities[0] gets no gradient from any variable" in caplog.text
    assert " equalities[0]" not in caplog.text


def test_keras_layer_variables_and_path_keys() -> None:
    import keras

    layer = keras.layers.Dense(1, name="lin", dtype="float64")
    x = np.linspace(-1.0, 1.0, 20).reshape(-1, 1)
    y = 3.0 * x - 0.5
    layer.build((None, 1))

    def loss() -> tf.Tensor:
        return tf.reduce_mean(tf.square(layer(x) - y))

    ScipyOptimizerInterface(
        loss, var_list=layer.trainable_variables, var_to_bounds={"lin/bias": (0.0, None)}
    ).minimize()
    # With bias >= 0 the best fit puts bias at 0 and keeps slope 3 (x is symmetric).
    np.testing.assert_allclose(layer.kernel.numpy(), [[3.0]], atol=1e-5)
    np.testing.assert_allclose(layer.bias.numpy(), [0.0], atol=1e-6)


def join_tier_builds() -> None:
    """Waits for background tier builds, so that what they log is in the captured log."""
    for thread in threading.enumerate():
        if thread.name == "optrun-tier2":
            thread.join()


def test_xla_fallback_for_uncompilable_loss(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = tf.Variable([2.0, 3.0], dtype=tf.float64)

    def loss() -> tf.Tensor:  # stateless: a side effect would keep the default off XLA anyway
        shifted = tf.numpy_function(lambda a: a - 1.0, [v], tf.float64, stateful=False)
        return tf.reduce_sum(tf.square(v)) + 0.0 * tf.reduce_sum(shifted)

    # As with a warm compilation cache: the XLA tier is built from the first point on.
    monkeypatch.setattr("optrun.evaluation.eager.compile_cache_warm", lambda: True)
    with caplog.at_level(logging.WARNING, logger="optrun"):
        opt = ScipyOptimizerInterface(loss)
        result = opt.minimize()
        join_tier_builds()
    assert caplog.text.count("xla not used") == 1
    assert result.tiers["evaluations"]["xla"] == 0 and result.tiers["evaluations"]["plain"] == result.nfev
    np.testing.assert_allclose(v.numpy(), [0.0, 0.0], atol=1e-6)
    v.assign([2.0, 3.0])
    with pytest.raises(optrun.InvalidArgumentError, match="jit_compile=True"):
        ScipyOptimizerInterface(loss, jit_compile=True).minimize()
    v.assign([2.0, 3.0])
    ScipyOptimizerInterface(loss, jit_compile=False).minimize()
    np.testing.assert_allclose(v.numpy(), [0.0, 0.0], atol=1e-6)


def test_non_trainable_variable_in_var_list(caplog: pytest.LogCaptureFixture) -> None:
    frozen = tf.Variable([3.0, 3.0], trainable=False, name="frozen")
    with caplog.at_level(logging.WARNING, logger="optrun"):
        ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(frozen - 1.0)), var_list=[frozen]).minimize()
    assert "no gradient" not in caplog.text
    np.testing.assert_allclose(frozen.numpy(), [1.0, 1.0], atol=1e-6)


def test_gradient_free_methods_never_differentiate() -> None:
    v = tf.Variable([2.0, -1.0], dtype=tf.float64)

    @tf.custom_gradient
    def guarded(x: tf.Tensor):
        def grad(upstream: tf.Tensor) -> tf.Tensor:
            tf.debugging.assert_equal(True, False, message="gradient computed")
            return upstream

        return tf.reduce_sum(tf.square(x - 0.5)), grad

    result = ScipyOptimizerInterface(
        lambda: guarded(v), method="Nelder-Mead", jit_compile=False, options={"xatol": 1e-8, "fatol": 1e-12}
    ).minimize()
    assert result.success
    np.testing.assert_allclose(v.numpy(), [0.5, 0.5], atol=1e-4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="gradient computed"):
        ScipyOptimizerInterface(lambda: guarded(v), method="BFGS", jit_compile=False).minimize()


def test_evaluate_and_gradient_after_a_gradient_free_run() -> None:
    v = tf.Variable([2.0, -1.0], dtype=tf.float64)
    opt = ScipyOptimizerInterface(lambda: tf.reduce_sum(tf.square(v - 0.5)), method="Powell")
    opt.minimize()
    point = np.array([1.0, 2.0])
    assert opt.evaluate(point)["loss"] == pytest.approx(0.25 + 2.25)
    np.testing.assert_allclose(opt.gradient(point), 2 * (point - 0.5))  # computed, not the zero slots


def test_python_control_flow_on_tensors_in_the_loss_still_works() -> None:
    # optrun traces its own code without autograph (faster first call); the user's loss keeps it.
    import tensorflow as tf

    import optrun

    v = tf.Variable([3.0, -2.0], dtype=tf.float64)

    def loss() -> tf.Tensor:
        total = tf.constant(0.0, tf.float64)
        for i in tf.range(2):  # a tensor loop: needs autograph inside tf.function
            if v[i] > 0:  # a tensor condition: needs autograph too
                total += (v[i] - 1.0) ** 2
            else:
                total += (v[i] + 1.0) ** 2
        return total

    opt = optrun.ScipyOptimizerInterface(loss, jit_compile=False)
    # By hand: (3 - 1)^2 + (-2 + 1)^2 = 5 at the start; minima at v0 = 1 and v1 = -1.
    assert opt.evaluate()["loss"] == 5.0
    opt.minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, -1.0], atol=1e-6)


def test_a_loss_marked_do_not_convert_skips_autograph() -> None:
    # The guide's advice for a loss without control flow on tensors; the same loss with a tensor
    # condition then fails as TensorFlow makes it fail, with its own error, when traced.
    import tensorflow as tf

    import optrun

    v = tf.Variable([3.0, -2.0], dtype=tf.float64)
    plain = tf.autograph.experimental.do_not_convert(lambda: tf.reduce_sum((v - [1.0, -1.0]) ** 2))
    opt = optrun.ScipyOptimizerInterface(plain, var_list=[v])
    assert opt.evaluate()["loss"] == 5.0  # (3 - 1)^2 + (-2 + 1)^2
    opt.minimize()
    np.testing.assert_allclose(v.numpy(), [1.0, -1.0], atol=1e-6)

    def branching() -> tf.Tensor:
        return (v[0] - 1.0) ** 2 if v[0] > 0 else (v[0] + 1.0) ** 2

    with pytest.raises(tf.errors.OperatorNotAllowedInGraphError):
        optrun.ScipyOptimizerInterface(tf.autograph.experimental.do_not_convert(branching), var_list=[v])

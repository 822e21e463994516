"""A compute-bound problem: the Burgers PINN, eager (TF2), L-BFGS-B.

Network 2-20-20-20-20-1 with tanh (1,341 parameters), 10,000 collocation
points and 100 boundary points, second derivatives by nested GradientTape.
Contenders, interleaved in one process, in ms per evaluation of loss and
gradient:

* the floor: the same value-and-gradient as one ``tf.function(jit_compile=True)``
  called in a tight loop, nothing between calls;
* optrun's ``ScipyOptimizerInterface``: its XLA tier (``jit_compile=True``, where a long
  default run ends) and its first tier (``jit_compile=False``), BLAS limited to one thread;
* GPflow's ``Scipy`` (default, and with ``jit_compile=True``);
* TFP's ``lbfgs_minimize`` inside one ``tf.function``.

Targets (issue 11): optrun <= 1.10x the floor, and >= 1.5x faster than GPflow's default.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

import optrun
from bench.timing import Timing, per_unit

Row = dict[str, Any]
MAXITER = 30  # with ftol = gtol = 0, L-BFGS-B makes ~MAXITER + a few evaluations


def network(weights: list[tf.Variable], z: tf.Tensor) -> tf.Tensor:
    """The tanh MLP: ``weights`` alternate kernels and biases."""
    for i in range(0, len(weights) - 2, 2):
        z = tf.tanh(z @ weights[i] + weights[i + 1])
    return z @ weights[-2] + weights[-1]


def residual(weights: list[tf.Variable], xt: tf.Tensor, nu: Any) -> tf.Tensor:
    """Burgers' residual u_t + u u_x - nu u_xx at the points ``xt`` (columns x, t)."""
    x, t = xt[:, :1], xt[:, 1:]
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape(persistent=True) as inner:
            inner.watch([x, t])
            u = network(weights, tf.concat([x, t], 1))
        ux = inner.gradient(u, x)
        ut = inner.gradient(u, t)
    uxx = outer.gradient(ux, x)
    return ut + u * ux - nu * uxx


def burgers(dtype: tf.DType, n_col: int = 10_000, n_bc: int = 100, seed: int = 0) -> tuple[list, Callable]:
    """The PINN's variables and its zero-argument loss: mean squared PDE residual + boundary misfit."""
    rng = np.random.default_rng(seed)
    sizes = [2, 20, 20, 20, 20, 1]
    weights: list[tf.Variable] = []
    for a, b in itertools.pairwise(sizes):
        weights.append(tf.Variable(rng.normal(0.0, np.sqrt(2.0 / (a + b)), (a, b)), dtype=dtype))
        weights.append(tf.Variable(np.zeros(b), dtype=dtype))
    xt = tf.constant(np.c_[rng.uniform(-1, 1, n_col), rng.uniform(0, 1, n_col)], dtype)
    half = n_bc // 2
    xb = np.r_[
        np.c_[rng.uniform(-1, 1, half), np.zeros(half)],  # u(x, 0) = -sin(pi x)
        np.c_[rng.choice([-1.0, 1.0], half), rng.uniform(0, 1, half)],  # u(+-1, t) = 0
    ]
    ub = tf.constant(np.where(xb[:, 1] == 0, -np.sin(np.pi * xb[:, 0]), 0.0)[:, None], dtype)
    xb_t = tf.constant(xb, dtype)
    nu = tf.constant(0.01 / np.pi, dtype)

    def loss() -> tf.Tensor:
        pde = tf.reduce_mean(residual(weights, xt, nu) ** 2)
        return pde + tf.reduce_mean((network(weights, xb_t) - ub) ** 2)

    return weights, loss


def _reset(weights: list[tf.Variable], start: list[np.ndarray]) -> None:
    for w, value in zip(weights, start, strict=True):
        w.assign(value)


def _floor(weights: list, loss: Callable, evaluations: int) -> Timing:
    @tf.function(jit_compile=True)
    def value_and_gradient() -> Any:
        with tf.GradientTape() as tape:
            value = loss()
        return value, tape.gradient(value, weights)

    def run() -> tuple[Any, int]:
        for _ in range(evaluations):
            value, grads = value_and_gradient()
        return (value.numpy(), [g.numpy() for g in grads]), evaluations

    return per_unit(run, repeats=3)


def _optrun(
    weights: list, loss: Callable, start: list[np.ndarray], jit_compile: bool | None = None
) -> Timing:
    opt = optrun.ScipyOptimizerInterface(
        loss,
        var_list=weights,
        jit_compile=jit_compile,
        options={"maxiter": MAXITER, "ftol": 0.0, "gtol": 0.0},
    )

    def run() -> tuple[Any, int]:
        _reset(weights, start)
        r = opt.minimize()
        return r, r.nfev

    return per_unit(run, repeats=3)


def _gpflow(weights: list, loss: Callable, start: list[np.ndarray], jit: bool) -> Timing | None:
    try:
        import gpflow
    except ImportError:
        return None
    opt = gpflow.optimizers.Scipy()
    kwargs = {"tf_fun_args": {"jit_compile": True}} if jit else {}
    options = {"maxiter": MAXITER, "ftol": 0.0, "gtol": 0.0}

    def run() -> tuple[Any, int]:
        _reset(weights, start)
        r = opt.minimize(loss, weights, method="L-BFGS-B", options=options, **kwargs)
        return r, r.nfev

    return per_unit(run, repeats=3)


def _tfp(weights: list, loss: Callable, start: list[np.ndarray]) -> Timing | None:
    try:
        import tensorflow_probability as tfp
    except ImportError:
        return None
    shapes = [w.shape for w in weights]
    sizes = [int(np.prod(s)) for s in shapes]

    def value_and_gradient(x: tf.Tensor) -> Any:
        for w, part, shape in zip(weights, tf.split(x, sizes), shapes, strict=True):
            w.assign(tf.reshape(part, shape))
        with tf.GradientTape() as tape:
            value = loss()
        grads = tape.gradient(value, weights)
        return value, tf.concat([tf.reshape(g, [-1]) for g in grads], 0)

    @tf.function
    def solve(x0: tf.Tensor) -> Any:
        return tfp.optimizer.lbfgs_minimize(
            value_and_gradient, x0, max_iterations=MAXITER, tolerance=0.0, f_relative_tolerance=0.0
        )

    x0 = tf.concat([tf.reshape(tf.constant(s), [-1]) for s in start], 0)

    def run() -> tuple[Any, int]:
        r = solve(x0)
        return r, int(r.num_objective_evaluations)

    return per_unit(run, repeats=3)


def _case(dtype: tf.DType) -> list[Row]:
    weights, loss = burgers(dtype)
    start = [w.numpy() for w in weights]
    name = f"Burgers PINN, eager, {dtype.name}, L-BFGS-B"
    floor = _floor(weights, loss, MAXITER)
    ours = _optrun(weights, loss, start, jit_compile=True)
    plain = _optrun(weights, loss, start, jit_compile=False)
    contenders = [
        ("GPflow Scipy (default)", _gpflow(weights, loss, start, jit=False), ">= 1.5x slower than optrun"),
        ("GPflow Scipy (jit_compile=True)", _gpflow(weights, loss, start, jit=True), ""),
        ("TFP lbfgs_minimize in tf.function", _tfp(weights, loss, start), ""),
    ]
    rows = [
        {
            "case": name,
            "setup": "bare XLA value+gradient, tight loop (floor)",
            "us": floor.micros,
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": "optrun, XLA tier (jit_compile=True)",
            "us": ours.micros,
            "ratio": ours.per_unit / floor.per_unit,
            "target": "<= 1.10x floor",
        },
    ]
    rows.append(
        {
            "case": "",
            "setup": "optrun (jit_compile=False)",
            "us": plain.micros,
            "ratio": plain.per_unit / floor.per_unit,
            "target": "",
        }
    )
    for label, timing, target in contenders:
        if timing is None:
            rows.append(
                {
                    "case": "",
                    "setup": f"{label}: not installed",
                    "us": float("nan"),
                    "ratio": float("nan"),
                    "target": "",
                }
            )
            continue
        rows.append(
            {
                "case": "",
                "setup": f"{label}; optrun is {timing.per_unit / ours.per_unit:.2f}x faster",
                "us": timing.micros,
                "ratio": timing.per_unit / floor.per_unit,
                "target": target,
            }
        )
    return rows


def pinn_float32() -> list[Row]:
    return _case(tf.float32)


def pinn_float64() -> list[Row]:
    return _case(tf.float64)

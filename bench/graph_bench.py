"""optrun's tf.compat.v1 graph path against TF1's own algorithm.

TF1's ``ScipyOptimizerInterface`` evaluated each point with one
``session.run`` that fed every variable by value through a feed dict built
anew. ``TF1Algorithm`` below does exactly that (written here for the
comparison, on reference variables as TF1 had them); both run L-BFGS-B on the
same graph and the same session, and the time per function evaluation is
compared. Targets from the graph issue:

* Rosenbrock N=100: optrun's graph path <= 0.5x the TF1 algorithm;
* a Burgers PINN (2-20-20-20-20-1 tanh, 10,000 collocation and 100 boundary
  points, float32, second derivatives by ``tf.gradients``): <= 1.0x.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import scipy.optimize as so
import tensorflow as tf

import optrun
from bench.timing import Timing, per_unit

Row = dict[str, Any]


class TF1Algorithm:
    """TF1's evaluation: ``session.run([loss, grads], {var: value, ...})`` once per point, and the
    solution assigned to the variables at the end through ops built with the interface."""

    def __init__(self, loss: tf.Tensor, variables: list[Any]) -> None:
        self.loss = loss
        self.variables = variables
        grads = tf.gradients(loss, variables)
        self.grad = tf.concat([tf.reshape(g, [-1]) for g in grads], 0)
        self.shapes = [tuple(v.shape.as_list()) for v in variables]
        sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.cumsum([0, *sizes])
        # TF1 wrote the solution into the variables at the end, through ops built here.
        self.placeholders = [
            tf.compat.v1.placeholder(v.dtype.base_dtype, s)
            for v, s in zip(variables, self.shapes, strict=True)
        ]
        self.updates = [v.assign(p) for v, p in zip(variables, self.placeholders, strict=True)]

    def minimize(self, session: Any, maxiter: int | dict[str, Any]) -> Any:
        """L-BFGS-B with ``ftol = gtol = 0`` for ``maxiter`` iterations, or with the given options."""

        def loss_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            feed = {
                v: x[a:b].reshape(s)
                for v, a, b, s in zip(
                    self.variables, self.offsets[:-1], self.offsets[1:], self.shapes, strict=True
                )
            }
            f, g = session.run([self.loss, self.grad], feed_dict=feed)
            return float(f), g.astype(np.float64)

        x0 = np.concatenate([np.asarray(v, np.float64).reshape(-1) for v in session.run(self.variables)])
        options = maxiter if isinstance(maxiter, dict) else {"maxiter": maxiter, "ftol": 0.0, "gtol": 0.0}
        result = so.minimize(loss_grad, x0, jac=True, method="L-BFGS-B", options=options)
        pieces = [
            result.x[a:b].reshape(s)
            for a, b, s in zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)
        ]
        session.run(self.updates, dict(zip(self.placeholders, pieces, strict=True)))
        return result


def _compare(
    build: Callable[[], tuple[tf.Tensor, list[Any]]], maxiter: int, repeats: int, blas: bool = False
) -> dict[str, Timing]:
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        loss, variables = build()
        tf1 = TF1Algorithm(loss, variables)
        options = {"maxiter": maxiter, "ftol": 0.0, "gtol": 0.0}
        ours = optrun.ScipyOptimizerInterface(loss, var_list=variables, options=options)
        xla = optrun.ScipyOptimizerInterface(loss, var_list=variables, options=options, jit_compile=True)
        plain = optrun.ScipyOptimizerInterface(loss, var_list=variables, options=options, jit_compile=False)
        pooled = optrun.ScipyOptimizerInterface(loss, var_list=variables, options=options, jit_compile=False)
        unlimited = optrun.ScipyOptimizerInterface(
            loss, var_list=variables, options=options, blas_threads="unlimited"
        )
        init = tf.compat.v1.global_variables_initializer()
        session.run(init)
        start = session.run(variables)
        reset = [v.assign(s) for v, s in zip(variables, start, strict=True)]
        graph.finalize()  # proves that the timed loops add nothing to the graph

        def timed(minimize: Callable[[], Any]) -> Callable[[], tuple[Any, int]]:
            def run() -> tuple[Any, int]:
                session.run(reset)
                result = minimize()
                return result, result.nfev

            return run

        timings = {
            "tf1": per_unit(timed(lambda: tf1.minimize(session, maxiter)), repeats=repeats),
            "ours": per_unit(timed(lambda: ours.minimize(session)), repeats=repeats),
            "xla": per_unit(timed(lambda: xla.minimize(session)), repeats=repeats),
            "plain": per_unit(timed(lambda: plain.minimize(session)), repeats=repeats),
            "pool": per_unit(timed(lambda: _in_pool(lambda: pooled.minimize(session))), repeats=repeats),
        }
        if blas:
            timings["unlimited"] = per_unit(timed(lambda: unlimited.minimize(session)), repeats=repeats)
        return timings


def _in_pool(minimize: Callable[[], Any]) -> Any:
    """``minimize()`` with ``OPTRUN_SESSION_RUN=pool``: its session calls run in the session's
    thread pool (read when its first ``minimize`` makes them), whatever the graph's size."""
    with mock.patch.dict(os.environ, {"OPTRUN_SESSION_RUN": "pool"}):
        return minimize()


def _rosenbrock() -> tuple[tf.Tensor, list[Any]]:
    v = tf.compat.v1.Variable(np.zeros(100), dtype=tf.float64, use_resource=False, name="x")
    return tf.reduce_sum(100.0 * tf.square(v[1:] - tf.square(v[:-1])) + tf.square(1.0 - v[:-1])), [v]


def burgers_pinn(
    n_collocation: int = 10_000, n_boundary: int = 100, seed: int = 0
) -> tuple[tf.Tensor, list[Any]]:
    """Burgers' equation u_t + u u_x = (0.01/pi) u_xx on x in [-1, 1], t in [0, 1], TF1 style."""
    rng = np.random.default_rng(seed)
    sizes = [2, 20, 20, 20, 20, 1]
    variables: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        scale = math.sqrt(2.0 / (fan_in + fan_out))
        w = rng.normal(0.0, scale, (fan_in, fan_out)).astype(np.float32)
        variables.append(tf.compat.v1.Variable(w, use_resource=False, name=f"W{i}"))
        variables.append(
            tf.compat.v1.Variable(np.zeros(fan_out, np.float32), use_resource=False, name=f"b{i}")
        )

    def net(x: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        h = tf.concat([x, t], 1)
        for i in range(0, len(variables) - 2, 2):
            h = tf.tanh(tf.matmul(h, variables[i]) + variables[i + 1])
        return tf.matmul(h, variables[-2]) + variables[-1]

    x = tf.constant(rng.uniform(-1, 1, (n_collocation, 1)).astype(np.float32))
    t = tf.constant(rng.uniform(0, 1, (n_collocation, 1)).astype(np.float32))
    u = net(x, t)
    u_x = tf.gradients(u, x)[0]
    u_t = tf.gradients(u, t)[0]
    u_xx = tf.gradients(u_x, x)[0]
    residual = u_t + u * u_x - (0.01 / math.pi) * u_xx
    xb = rng.uniform(-1, 1, (n_boundary, 1)).astype(np.float32)
    boundary = net(tf.constant(xb), tf.zeros_like(xb))
    loss = tf.reduce_mean(tf.square(boundary + tf.sin(math.pi * xb))) + tf.reduce_mean(tf.square(residual))
    return loss, variables


def _row(case: str, setup: str, timing: Timing, base: Timing, target: str = "") -> Row:
    return {
        "case": case,
        "setup": setup,
        "us": timing.micros,
        "ratio": timing.per_unit / base.per_unit,
        "target": target,
    }


def _rows(case: str, timings: dict[str, Timing], target: str) -> list[Row]:
    tf1 = timings["tf1"]
    return [
        _row(case, "TF1's algorithm (session.run, variables fed by value)", tf1, tf1),
        _row("", "optrun default (at this length: one session call per point)", timings["ours"], tf1),
        _row(
            "",
            "optrun XLA function (jit_compile=True; where a long default run ends)",
            timings["xla"],
            tf1,
            target,
        ),
        _row("", "optrun jit_compile=False (the session path throughout)", timings["plain"], tf1),
        _row(
            "",
            "optrun jit_compile=False, OPTRUN_SESSION_RUN=pool (every op in the session's thread pool)",
            timings["pool"],
            tf1,
        ),
    ] + [
        _row("", "optrun graph path, blas_threads='unlimited' (BLAS pools as scipy left them)", t, tf1)
        for t in [timings[k] for k in ("unlimited",) if k in timings]
    ]


def rosenbrock_graph() -> list[Row]:
    return _rows("TF1 graph: Rosenbrock N=100", _compare(_rosenbrock, 200, 5), "<= 0.5x TF1")


def pinn_graph() -> list[Row]:
    return _rows(
        "TF1 graph: Burgers PINN, 10k points", _compare(burgers_pinn, 100, 3, blas=True), "<= 1.0x TF1"
    )

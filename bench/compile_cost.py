"""What XLA's compile costs against the trace it compiles, per problem (case ``compilecost``).

The default's tier policy (:mod:`optrun.evaluation.tiers`) cannot know what the
XLA compile will cost before it runs it, so it estimates it from the trace: the
smaller of ``COMPILE_PER_TRACE`` times the time the trace took and
``COMPILE_PER_OP`` times its graph's operations
(:mod:`optrun.evaluation.compile_estimate`). This case shows how far the compile
moves from that estimate between kinds of problem, and what XLA then gains or
loses per point. Each problem runs in a new process, its imports and data made before
the clock starts:

* the trace, which the default's estimate starts from, made while constructing a
  ``jit_compile=True`` interface given ``var_list``;
* the compile: its first evaluation less a warm one;
* one evaluation of each fixed mode through ``opt.evaluate``, warm: the median over
  distinct points.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.timing import fresh_process

Row = dict[str, Any]
#: Warm evaluations per mode, each at a point of its own (the interface caches by point).
POINTS = 30
PROBLEMS = {
    "rosen": "Rosenbrock N=100, float64",
    "logreg": "logistic regression, 1,000 x 20, float64",
    "mlp": "MLP 2-64-64-1 regression, 2,000 points, float32",
    "gp": "Gaussian process likelihood, 200 points (Cholesky), float64",
    "pinn": "Burgers PINN, 10k points, float32",
}


def problem(name: str) -> tuple[Callable[[], Any], list[Any]]:
    """The loss and its variables for one of :data:`PROBLEMS`."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    if name == "rosen":
        from bench.scipy_bench import rosen_tf

        v = tf.Variable(np.zeros(100))
        return (lambda: rosen_tf(v)), [v]
    if name == "pinn":
        from bench.pinn_bench import burgers

        weights, loss = burgers(tf.float32)
        return loss, weights
    if name == "logreg":
        x = tf.constant(rng.normal(size=(1000, 20)))
        y = tf.constant((rng.random(1000) > 0.5).astype(np.float64))
        w, b = tf.Variable(np.zeros(20)), tf.Variable(0.0, dtype=tf.float64)

        def logistic() -> Any:
            logits = tf.linalg.matvec(x, w) + b
            ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
            return tf.reduce_mean(ce) + 1e-3 * tf.reduce_sum(w * w)

        return logistic, [w, b]
    if name == "mlp":
        x = tf.constant(rng.normal(size=(2000, 2)), tf.float32)
        y = tf.constant(np.sin(rng.normal(size=(2000, 1))), tf.float32)
        sizes = [2, 64, 64, 1]
        layers = [
            (tf.Variable(rng.normal(0, 0.3, (a, b)).astype(np.float32)), tf.Variable(np.zeros(b, np.float32)))
            for a, b in itertools.pairwise(sizes)
        ]

        def mse() -> Any:
            h = x
            for w, b in layers[:-1]:
                h = tf.tanh(h @ w + b)
            return tf.reduce_mean((h @ layers[-1][0] + layers[-1][1] - y) ** 2)

        return mse, [v for layer in layers for v in layer]
    if name == "gp":
        x = tf.constant(rng.normal(size=(200, 3)))
        y = tf.constant(rng.normal(size=(200, 1)))
        log_scales, log_var = tf.Variable(np.zeros(3)), tf.Variable(0.0, dtype=tf.float64)
        log_noise = tf.Variable(-2.0, dtype=tf.float64)

        def negative_log_likelihood() -> Any:
            z = x / tf.exp(log_scales)
            sq = tf.reduce_sum(z**2, 1)
            d = sq[:, None] + sq[None, :] - 2 * tf.matmul(z, z, transpose_b=True)
            jitter = (tf.exp(log_noise) + 1e-6) * tf.eye(200, dtype=tf.float64)
            k = tf.exp(log_var) * tf.exp(-0.5 * d) + jitter
            chol = tf.linalg.cholesky(k)
            alpha = tf.linalg.cholesky_solve(chol, y)
            return 0.5 * tf.reduce_sum(y * alpha) + tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)))

        return negative_log_likelihood, [log_scales, log_var, log_noise]
    raise ValueError(f"unknown problem {name!r}; one of {sorted(PROBLEMS)}")


def _warm(opt: Any, start: np.ndarray) -> float:
    """Median seconds of one evaluation, at :data:`POINTS` distinct points near ``start``."""
    times = []
    for i in range(POINTS):
        x = start + 1e-7 * (i + 1)
        began = time.perf_counter()
        opt.evaluate(x)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def measure(name: str) -> dict[str, float]:
    """One problem's trace, compile and warm evaluations (run in a new process)."""
    import optrun
    from optrun.evaluation.compile_estimate import compile_estimate, graph_ops

    loss, var_list = problem(name)
    interface = optrun.ScipyOptimizerInterface  # its lazy import (scipy.optimize), outside the clock
    started = time.perf_counter()
    xla = interface(loss, var_list=var_list, jit_compile=True)
    traced = time.perf_counter()
    # The trace alone, as the default's estimate takes it (construction adds a little to it).
    _, concrete, trace_s = xla._backend.trace((), True)
    start = xla.start_point()
    xla.evaluate(start)
    first = time.perf_counter() - traced
    warm_xla = _warm(xla, start)
    plain = interface(loss, var_list=var_list, jit_compile=False)
    plain.evaluate(start)
    return {
        "construct": traced - started,
        "trace": trace_s,
        "ops": graph_ops(concrete),
        "estimate": compile_estimate(concrete, trace_s),
        "compile": first - warm_xla,
        "xla": warm_xla,
        "plain": _warm(plain, start),
    }


_CHILD = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from bench import compile_cost
print(json.dumps(compile_cost.measure(sys.argv[1])))
"""


def compile_costs() -> list[Row]:
    rows: list[Row] = []
    for name, label in PROBLEMS.items():
        got = fresh_process(_CHILD, [name])
        trace = got["trace"]
        rows += [
            {
                "case": f"Compile cost: {label}",
                "setup": f"trace, {got['ops']} operations (of {got['construct'] * 1e3:.0f} ms constructing "
                "the interface)",
                "us": trace * 1e6,
                "ratio": 1.0,
                "target": "",
            },
            {
                "case": "",
                "setup": "XLA compile (first evaluation less a warm one)",
                "us": got["compile"] * 1e6,
                "ratio": got["compile"] / trace,
                "target": f"the default estimates {got['estimate'] * 1e3:.0f} ms; "
                f"the compile took {got['compile'] / got['estimate']:.2f}x that",
            },
            {
                "case": "",
                "setup": "one evaluation, jit_compile=False",
                "us": got["plain"] * 1e6,
                "ratio": float("nan"),
                "target": "",
            },
            {
                "case": "",
                "setup": "one evaluation, jit_compile=True",
                "us": got["xla"] * 1e6,
                "ratio": float("nan"),
                "target": f"{got['xla'] / got['plain']:.2f}x the plain evaluation",
            },
        ]
    return rows

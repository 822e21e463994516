"""Where a small evaluation's time goes: the numbers the README's speed notes cite.

All per call of one compiled evaluation (Rosenbrock N=100 unless said), best of
several tight loops of 1,000 calls over distinct points:

* the public ``ConcreteFunction`` call (a new input tensor per call) against
  optrun's thin path (one reused input buffer, dispatch by name);
* the thin path when a NumPy ufunc runs between two calls, as scipy's
  bookkeeping does: TF's runtime then runs with colder CPU caches;
* one evaluation with and without 10 constraints, with and without XLA
  (times without XLA vary more from run to run);
* one evaluation of the large constrained chain (``bench.constrained_bench``,
  n = 10,000, 10 equalities) without XLA, under each ``OPTRUN_GRAPPLER``
  setting: one round of Grappler's passes (the default), TensorFlow's two,
  none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

import optrun
from bench.scipy_bench import rosen_tf
from optrun.evaluation.fastcall import FastCaller, _public

Row = dict[str, Any]
CALLS = 1000


def _per_call(call: Callable[[np.ndarray], Any], points: list[np.ndarray], between: bool = False) -> float:
    previous = points[0]
    for x in points[:200]:
        call(x)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for x in points:
            if between:
                np.array_equal(x, previous)  # any ufunc will do
            call(x)
            previous = x
        best = min(best, (time.perf_counter() - start) / len(points))
    return best * 1e6


def _evaluator(n: int, constraints: int, jit: bool) -> Callable[[np.ndarray], Any]:
    v = tf.Variable(np.zeros(n))
    ineqs = [lambda i=i: v[i] + 5.0 for i in range(constraints)] or None
    opt = optrun.ScipyOptimizerInterface(
        lambda: rosen_tf(v),
        inequalities=ineqs,
        jit_compile=jit,
        method="SLSQP" if constraints else "L-BFGS-B",
    )
    return opt._backend.evaluator(())


def _grappler_rows() -> list[Row]:
    from bench.constrained_bench import make_problem, tf_problem
    from optrun.evaluation.grappler import plain_call_options

    v, loss, equalities, _ = tf_problem(make_problem(10_000))
    opt = optrun.ScipyOptimizerInterface(loss, [v], equalities, method="SLSQP", jit_compile=False)
    _, concrete, _ = opt._backend.trace()
    calls = {
        setting: FastCaller(concrete, options=plain_call_options(setting))
        for setting in ("once", "tensorflow", "off")
    }
    points = [np.random.default_rng(i).uniform(-1.0, 1.0, 10_000) for i in range(100)]
    took = {setting: _per_call(call, points) for setting, call in calls.items()}
    labels = {
        "once": "OPTRUN_GRAPPLER=once (default): one round of Grappler's passes",
        "tensorflow": "OPTRUN_GRAPPLER=tensorflow: two rounds",
        "off": "OPTRUN_GRAPPLER=off: no Grappler",
    }
    return [
        {
            "case": "One evaluation, constrained chain n=10,000, 10 equalities, no XLA" if i == 0 else "",
            "setup": labels[setting],
            "us": seconds,
            "ratio": seconds / took["once"],
            "target": "",
        }
        for i, (setting, seconds) in enumerate(took.items())
    ]


def call_overhead() -> list[Row]:
    n = 100
    points = [np.random.default_rng(i).normal(size=n) for i in range(CALLS)]
    v = tf.Variable(np.zeros(n))
    spec = [tf.TensorSpec([n], tf.float64)]

    def body(x: tf.Tensor) -> Any:
        v.assign(x)
        with tf.GradientTape() as tape:
            loss = rosen_tf(v)
        return tf.concat([tf.reshape(loss, [1]), tape.gradient(loss, v)], 0), []

    concrete = tf.function(body, input_signature=spec, jit_compile=True).get_concrete_function()
    public, fast = _public(concrete), FastCaller(concrete)
    t_public, t_fast = _per_call(public, points), _per_call(fast, points)
    t_fast_ufunc = _per_call(fast, points, between=True)
    small = [p[:50] for p in points]
    plain = {k: _per_call(_evaluator(50, k, False), small) for k in (0, 10)}
    xla = {k: _per_call(_evaluator(50, k, True), small) for k in (0, 10)}
    return [
        {
            "case": "One evaluation, Rosenbrock N=100 (XLA)",
            "setup": "public ConcreteFunction call",
            "us": t_public,
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": "optrun's thin path (reused input buffer, dispatch by name)",
            "us": t_fast,
            "ratio": t_fast / t_public,
            "target": "",
        },
        {
            "case": "",
            "setup": "thin path, a NumPy ufunc between calls",
            "us": t_fast_ufunc,
            "ratio": t_fast_ufunc / t_public,
            "target": "",
        },
        {
            "case": "One evaluation, Rosenbrock N=50, XLA",
            "setup": "no constraints",
            "us": xla[0],
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": "+ 10 linear constraints and their Jacobians",
            "us": xla[10],
            "ratio": xla[10] / xla[0],
            "target": "",
        },
        {
            "case": "One evaluation, Rosenbrock N=50, no XLA",
            "setup": "no constraints",
            "us": plain[0],
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": "+ 10 linear constraints and their Jacobians",
            "us": plain[10],
            "ratio": plain[10] / plain[0],
            "target": "",
        },
        *_grappler_rows(),
    ]

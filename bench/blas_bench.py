"""BLAS threads for the dense methods: SLSQP and trust-constr at n = 1,000 and 5,000.

``blas_threads="auto"`` limits BLAS to one thread for every method except SLSQP
and trust-constr, whose own linear algebra grows with n (SLSQP's least-squares
subproblem is O(n^3) per iteration). This case measures, per iteration, both
settings on a quadratic with 10 linear equality constraints, so the policy
rests on numbers: ratio < 1 means one thread was faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

import optrun
from bench.timing import Timing, per_unit

Row = dict[str, Any]


def _problem(n: int, method: str, threads: int | str, maxiter: int) -> Timing:
    rng = np.random.default_rng(0)
    target = tf.constant(rng.normal(size=n))
    scale = tf.constant(rng.uniform(1.0, 10.0, size=n))
    rows = [tf.constant(rng.normal(size=n)) for _ in range(10)]
    v = tf.Variable(np.zeros(n))
    opt = optrun.ScipyOptimizerInterface(
        lambda: tf.reduce_sum(scale * (v - target) ** 2),
        equalities=[lambda r=r: tf.reduce_sum(r * v) - 1.0 for r in rows],
        method=method,
        blas_threads=threads,
        options={"maxiter": maxiter},
    )

    def run() -> tuple[Any, int]:
        v.assign(np.zeros(n))
        r = opt.minimize()
        return r, max(int(r.nit), 1)

    return per_unit(run, repeats=2)


def dense_methods() -> list[Row]:
    rows: list[Row] = []
    for method, sizes in (("SLSQP", (1_000, 5_000)), ("trust-constr", (1_000, 5_000))):
        for n in sizes:
            maxiter = 5 if method == "SLSQP" else 10
            free = _problem(n, method, "unlimited", maxiter)
            one = _problem(n, method, 1, maxiter)
            rows += [
                {
                    "case": f"{method}, n={n:,}, 10 equalities",
                    "setup": "BLAS unlimited, per iteration",
                    "us": free.micros,
                    "ratio": 1.0,
                    "target": "",
                },
                {
                    "case": "",
                    "setup": "BLAS 1 thread",
                    "us": one.micros,
                    "ratio": one.per_unit / free.per_unit,
                    "target": "",
                },
            ]
    return rows

"""BLAS threads: SLSQP and trust-constr at n = 1,000 and 5,000, and light L-BFGS-B evaluations.

``blas_threads="auto"`` limits BLAS to one thread for every method except SLSQP,
whose own linear algebra grows with n (its least-squares subproblem is O(n^3)
per iteration). This case measures, per iteration, both settings on a
quadratic with 10 linear equality constraints, and, per evaluation, L-BFGS-B
on Rosenbrock N=100, whose evaluations are light (about 0.1 ms), alone and
while the default builds its XLA tier in a background thread, so the policy
rests on numbers: ratio < 1 means one thread was faster.
"""

from __future__ import annotations

import os
import time
from typing import Any
from unittest import mock

import numpy as np
import tensorflow as tf

import optrun
from bench.timing import Timing, per_unit
from optrun.evaluation.tiers import building

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


def _light(threads: int | str) -> Timing:
    """Per evaluation: L-BFGS-B on Rosenbrock N=100 (TF2, the plain function) to convergence."""
    from bench.scipy_bench import rosen_tf

    v = tf.Variable(np.zeros(100))
    opt = optrun.ScipyOptimizerInterface(
        lambda: rosen_tf(v), var_list=[v], jit_compile=False, blas_threads=threads, options={"maxiter": 3000}
    )

    def run() -> tuple[Any, int]:
        v.assign(np.zeros(100))
        r = opt.minimize()
        return r, int(r.nfev)

    return per_unit(run, repeats=5)


def _building(threads: int | str, repeats: int = 5) -> Timing:
    """Per evaluation, construction included: the same run on a new optimizer each time, whose
    default builds XLA in the background from the first point on (``OPTRUN_TIER2=now``), so the
    build runs beside the solver. A build that outlasts a run is waited for outside the clock."""
    from bench.scipy_bench import rosen_tf

    samples, units = [], 0
    with mock.patch.dict(os.environ, {"OPTRUN_TIER2": "now"}):
        for i in range(repeats + 1):  # the first warms up
            v = tf.Variable(np.zeros(100))
            started = time.perf_counter()
            opt = optrun.ScipyOptimizerInterface(
                lambda v=v: rosen_tf(v), var_list=[v], blas_threads=threads, options={"maxiter": 3000}
            )
            units = int(opt.minimize().nfev)
            if i:
                samples.append((time.perf_counter() - started) / units)
            while building():
                time.sleep(0.001)
    return Timing(min(samples), units, repeats)


def _pair(case: str, free: Timing, one: Timing, unit: str) -> list[Row]:
    """Two rows: unlimited, then one thread, as a ratio to it (< 1: one thread was faster)."""
    return [
        {"case": case, "setup": f"BLAS unlimited, per {unit}", "us": free.micros, "ratio": 1.0, "target": ""},
        {
            "case": "",
            "setup": f"BLAS 1 thread, per {unit}",
            "us": one.micros,
            "ratio": one.per_unit / free.per_unit,
            "target": "",
        },
    ]


def blas_policy() -> list[Row]:
    from optrun.interfaces import threads

    # Find the BLAS libraries once, outside the clock: a first limit of a process is otherwise
    # deferred (not set at all for light evaluations), and every row below is to run as it says.
    threads._controller()
    light = "L-BFGS-B, Rosenbrock N=100, TF2, light evaluations"
    rows = _pair(light, _light("unlimited"), _light(1), "evaluation")
    building_case = "the same, building XLA in the background from the first point (construction included)"
    rows += _pair(building_case, _building("unlimited"), _building(1), "evaluation")
    for method, sizes in (("SLSQP", (1_000, 5_000)), ("trust-constr", (1_000, 5_000))):
        for n in sizes:
            maxiter = 5 if method == "SLSQP" else 10
            free = _problem(n, method, "unlimited", maxiter)
            one = _problem(n, method, 1, maxiter)
            rows += _pair(f"{method}, n={n:,}, 10 equalities", free, one, "iteration")
    return rows

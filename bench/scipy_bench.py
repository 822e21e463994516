"""ScipyOptimizerInterface against the numpy floor and GPflow's Scipy optimizer.

Cases (targets from the core issue):

* Rosenbrock N=100, L-BFGS-B, time per function evaluation: optrun <= 2.5x
  the numpy floor; >= 2.5x faster than GPflow (default); faster than GPflow
  with XLA. GPflow is measured warm (its first call is the warm-up).
* Rosenbrock N=10,000: optrun <= 1.2x the numpy floor.
* SLSQP with 10 constraints: per-iteration cost <= 1.5x the same problem
  without constraints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.optimize as so
import tensorflow as tf

import optrun
from bench.timing import Timing, per_unit

Row = dict[str, Any]


def rosen_tf(v: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)


def _numpy_floor(n: int, maxiter: int | None) -> Timing:
    options = {} if maxiter is None else {"maxiter": maxiter}

    def run() -> tuple[Any, int]:
        r = so.minimize(so.rosen, np.zeros(n), jac=so.rosen_der, method="L-BFGS-B", options=options)
        return r, r.nfev

    return per_unit(run)


def _optrun(n: int, maxiter: int | None, jit_compile: bool | None) -> Timing:
    v = tf.Variable(np.zeros(n))
    options = {} if maxiter is None else {"maxiter": maxiter}
    opt = optrun.ScipyOptimizerInterface(lambda: rosen_tf(v), jit_compile=jit_compile, options=options)

    def run() -> tuple[Any, int]:
        v.assign(np.zeros(n))
        r = opt.minimize()
        return r, r.nfev

    return per_unit(run)


def _gpflow(n: int, jit: bool) -> Timing | None:
    try:
        import gpflow
    except ImportError:
        return None
    v = tf.Variable(np.zeros(n))
    opt = gpflow.optimizers.Scipy()
    kwargs = {"tf_fun_args": {"jit_compile": True}} if jit else {}

    def run() -> tuple[Any, int]:
        v.assign(np.zeros(n))
        r = opt.minimize(lambda: rosen_tf(v), [v], method="L-BFGS-B", **kwargs)
        return r, r.nfev

    return per_unit(run)


def _floor_rows(case: str, floor: Timing, ours: Timing, target: str) -> list[Row]:
    """The numpy floor and optrun's XLA tier (where a long default run ends), side by side."""
    return [
        {
            "case": case,
            "setup": "numpy rosen/rosen_der (floor)",
            "us": floor.micros,
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": "optrun, XLA tier (jit_compile=True)",
            "us": ours.micros,
            "ratio": ours.per_unit / floor.per_unit,
            "target": target,
        },
    ]


def rosenbrock_small() -> list[Row]:
    n = 100
    floor = _numpy_floor(n, None)
    ours = _optrun(n, None, True)
    ours_plain = _optrun(n, None, False)
    gp = _gpflow(n, False)
    gp_xla = _gpflow(n, True)
    rows = _floor_rows("Rosenbrock N=100, L-BFGS-B", floor, ours, "<= 2.5x floor")
    rows.append(
        {
            "case": "",
            "setup": "optrun (jit_compile=False)",
            "us": ours_plain.micros,
            "ratio": ours_plain.per_unit / floor.per_unit,
            "target": "",
        }
    )
    for label, timing in (("GPflow Scipy (default)", gp), ("GPflow Scipy (jit_compile=True)", gp_xla)):
        if timing is None:
            rows.append(
                {
                    "case": "",
                    "setup": f"{label}: gpflow not installed",
                    "us": float("nan"),
                    "ratio": float("nan"),
                    "target": "",
                }
            )
            continue
        speedup = timing.per_unit / ours.per_unit
        target = ">= 2.5x slower than optrun" if "default" in label else "slower than optrun"
        rows.append(
            {
                "case": "",
                "setup": f"{label}; optrun is {speedup:.2f}x faster",
                "us": timing.micros,
                "ratio": timing.per_unit / floor.per_unit,
                "target": target,
            }
        )
    return rows


def rosenbrock_large() -> list[Row]:
    n, maxiter = 10_000, 300
    floor = _numpy_floor(n, maxiter)
    ours = _optrun(n, maxiter, True)
    return _floor_rows("Rosenbrock N=10,000, L-BFGS-B", floor, ours, "<= 1.2x floor")


def slsqp_constraints() -> list[Row]:
    n, k = 50, 10
    v = tf.Variable(np.zeros(n))
    ineqs = [lambda i=i: v[i] + 5.0 for i in range(k)]  # inactive at the optimum: same path
    # Both on the XLA tier throughout, so that the ratio compares like with like.
    free = optrun.ScipyOptimizerInterface(
        lambda: rosen_tf(v), method="SLSQP", options={"maxiter": 1000}, jit_compile=True
    )
    constrained = optrun.ScipyOptimizerInterface(
        lambda: rosen_tf(v), inequalities=ineqs, method="SLSQP", options={"maxiter": 1000}, jit_compile=True
    )
    calls: list[int] = []

    def runner(opt: optrun.ScipyOptimizerInterface, count: bool = False):
        def run() -> tuple[Any, int]:
            v.assign(np.zeros(n))
            calls.clear()
            r = opt.minimize(loss_callback=(lambda: calls.append(1)) if count else None)
            return r, r.nit

        return run

    t_free = per_unit(runner(free))
    t_con = per_unit(runner(constrained))

    # The same two problems in plain numpy: how much SLSQP itself pays for the constraints.
    jac_rows = np.zeros((k, n))
    jac_rows[np.arange(k), np.arange(k)] = 1.0
    numpy_cons = [{"type": "ineq", "fun": lambda x: x[:k] + 5.0, "jac": lambda x: jac_rows}]

    def numpy_run(cons: list) -> Any:
        def run() -> tuple[Any, int]:
            r = so.minimize(
                so.rosen,
                np.zeros(n),
                jac=so.rosen_der,
                method="SLSQP",
                constraints=cons,
                options={"maxiter": 1000},
            )
            return r, r.nit

        return run

    np_free = per_unit(numpy_run([]))
    np_con = per_unit(numpy_run(numpy_cons))
    result, _ = runner(constrained, count=True)()
    requests = result.nfev + result.njev * (1 + 2)  # f, grad, and per point: values + Jacobian
    return [
        {
            "case": f"SLSQP, Rosenbrock N={n}",
            "setup": "numpy, no constraints, per iteration",
            "us": np_free.micros,
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": f"numpy, {k} inequality constraints (what SLSQP itself pays for them)",
            "us": np_con.micros,
            "ratio": np_con.per_unit / np_free.per_unit,
            "target": "",
        },
        {
            "case": "",
            "setup": "optrun, no constraints, per iteration",
            "us": t_free.micros,
            "ratio": 1.0,
            "target": "",
        },
        {
            "case": "",
            "setup": f"optrun, {k} inequality constraints; {len(calls)} TF calls for "
            f"~{requests} scipy requests",
            "us": t_con.micros,
            "ratio": t_con.per_unit / t_free.per_unit,
            "target": "<= 1.5x optrun unconstrained",
        },
    ]

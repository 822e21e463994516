"""Large constrained: a Rosenbrock chain with 10 dense equalities at n = 1,000, 10,000 and 100,000.

The problem (float64)::

    min  sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
    s.t. a_k . x = b_k             k = 1..5   (linear, a_k dense and random)
         sum_j c_kj x_j^2 = d_k    k = 1..5   (nonlinear, c_k dense, positive)
         -2 <= x <= 2

with ``a``, ``c`` and a feasible point drawn from one seed and ``b``, ``d``
computed at that point, so a feasible point exists and the start point
``x0 = 0.5`` is not feasible.

Contenders, each in a fresh process (TensorFlow, scipy, cyipopt and optrun
imported and the problem's data built before the clock; the clock covers the
optimizer's construction and its run to the result):

* SLSQP and trust-constr through ``optrun.ScipyOptimizerInterface``, with a
  time box of :data:`TIMEOUT_S` (``not done in 60 s`` is a result) and the
  process's address space limited to what the machine has free (a
  ``MemoryError``, or the process killed, reads ``out of memory``). Where
  their dense n x n storage alone (:func:`predicted_bytes`) would exceed the
  memory available, they are not run: the row says how much they would need;
* IPOPT through ``optrun.IpoptInterface`` (its defaults), and at n = 10,000
  the same with ``blas_threads="unlimited"`` (the BLAS-thread policy,
  :mod:`optrun.interfaces.threads`) and with the other MUMPS ordering
  (:func:`other_pivot_order`: AMD against IPOPT's automatic choice);
* the anchor: IPOPT through ``cyipopt.Problem`` directly, objective,
  gradient, constraints and dense Jacobian written in numpy, with exactly the
  options optrun gives IPOPT (:data:`optrun.interfaces.ipopt.defaults.DEFAULT_OPTIONS`:
  limited-memory Hessian, IPOPT's default tolerances, the same MUMPS
  settings), and at n = 10,000 with the other ordering too.

Times per iteration are from the end of the first iteration to the end of the
last (construction and IPOPT's setup left out), the same way for every
contender; the wall time covers everything.

Memory: each run's peak RSS, and, in a run of its own (``workset``), the peak
of what TensorFlow itself allocates while optrun's IPOPT runs
:data:`WORKSET_ITER` iterations, above the problem's own data (the variable and
the constraint rows). TensorFlow keeps those statistics only with its BFC
allocator on the CPU (``TF_CPU_ALLOCATOR_USE_BFC=true``, set for that run
alone), so that run is not timed.

At n = 100,000 IPOPT is capped at :data:`CAPPED_ITER` iterations and the
target is on the time per iteration. Targets: n = 10,000, optrun's IPOPT
converges (constraint violation <= 1e-8) within 1.2x the anchor's wall time;
n = 100,000, within 1.2x the anchor's time per iteration.
"""

from __future__ import annotations

import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

Row = dict[str, Any]

N_LINEAR = 5
N_NONLINEAR = 5
BOUND = 2.0
X0 = 0.5
SEED = 20
#: The time box of one run, from construction to result.
TIMEOUT_S = 60.0
#: How long a child may take to import and build the problem before the clock.
SETUP_TIMEOUT_S = 300.0
#: IPOPT's iteration cap where the problem is too large to run to convergence here.
CAPPED_ITER = 10
CAPPED_N = 100_000
#: The share of the memory available that one run may take (address space, set in the child).
MEMORY_SHARE = 0.75
#: trust-constr's peak RSS growth per n^2, bytes: measured 382 n^2 at n = 1,000 (3 iterations)
#: and 324 n^2 at n = 1,500 (2 iterations), with the 10 equalities and bounds of this problem.
TRUST_CONSTR_BYTES_PER_N2 = 300
#: IPOPT iterations of the ``workset`` run (TensorFlow's own allocations, measured).
WORKSET_ITER = 3
#: Best of this many fresh processes for the IPOPT rows that run to convergence.
REPEATS = 2
VIOLATION_TARGET = 1e-8
GIB = 2.0**30

LABELS = {
    "slsqp": "optrun ScipyOptimizerInterface, SLSQP",
    "trust-constr": "optrun ScipyOptimizerInterface, trust-constr",
    "ipopt": "optrun IpoptInterface (defaults)",
    "ipopt-unlimited": "optrun IpoptInterface, blas_threads='unlimited'",
    "ipopt-order": "optrun IpoptInterface, mumps_pivot_order {order}",
    "anchor": "cyipopt.Problem, numpy derivatives (anchor)",
    "anchor-order": "cyipopt.Problem, numpy derivatives, mumps_pivot_order {order}",
    "workset": "optrun IpoptInterface, TensorFlow's allocations (BFC allocator statistics)",
}


@dataclass(frozen=True)
class Problem:
    """The data of one size: rows ``a`` (linear) and ``c`` (quadratic), their targets ``b``, ``d``."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    feasible: np.ndarray

    @property
    def n(self) -> int:
        return int(self.a.shape[1])

    def x0(self) -> np.ndarray:
        return np.full(self.n, X0)

    def objective(self, x: np.ndarray) -> float:
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        inner = x[1:] - x[:-1] ** 2
        grad = np.zeros_like(x)
        grad[:-1] = -400.0 * x[:-1] * inner - 2.0 * (1.0 - x[:-1])
        grad[1:] += 200.0 * inner
        return grad

    def constraints(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.a @ x - self.b, self.c @ (x * x) - self.d])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Dense, ``(10, n)``: the rows ``a_k`` and ``2 c_k * x``."""
        return np.concatenate([self.a, 2.0 * self.c * x])

    def violation(self, x: np.ndarray) -> float:
        """Largest violation of the 10 equalities."""
        return float(np.max(np.abs(self.constraints(x))))

    def bound_excess(self, x: np.ndarray) -> float:
        """How far ``x`` lies outside [-2, 2] (IPOPT relaxes bounds by ``bound_relax_factor``)."""
        return max(float(np.max(x - BOUND)), float(np.max(-BOUND - x)), 0.0)


def make_problem(n: int, seed: int = SEED) -> Problem:
    """Random dense rows (seeded), with ``b`` and ``d`` computed at a feasible point inside the bounds."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(N_LINEAR, n)) / math.sqrt(n)
    c = rng.uniform(0.5, 1.5, size=(N_NONLINEAR, n)) / n
    feasible = np.clip(1.0 + 0.2 * rng.normal(size=n), -0.9 * BOUND, 0.9 * BOUND)
    return Problem(a, a @ feasible, c, c @ (feasible * feasible), feasible)


def predicted_bytes(who: str, n: int) -> int | None:
    """What scipy's dense storage alone takes at ``n`` (None: nothing quadratic in n).

    SLSQP: its workspace, sized in ``scipy.optimize._slsqp_py`` as about
    ``n(n+1)/2 + 8n^2 + 2n(n+1)`` float64 values without inequalities (84 n^2
    bytes; its peak RSS grew by 76 n^2 bytes at n = 1,500). trust-constr:
    :data:`TRUST_CONSTR_BYTES_PER_N2` bytes per n^2, measured: with bounds,
    its barrier subproblem's Jacobian is a dense ``(2n + 10) x 3n`` matrix
    that it factors by QR, beside two ``n x n`` BFGS matrices.
    """
    if who == "slsqp":
        return 8 * (n * (n + 1) // 2 + 8 * n * n + 2 * n * (n + 1))
    if who == "trust-constr":
        return TRUST_CONSTR_BYTES_PER_N2 * n * n
    return None


def available_bytes() -> int:
    """The memory available, as IpoptInterface's own check reads it (0 where it cannot be read)."""
    from optrun.interfaces.ipopt.jacobian import available_bytes as library

    return library() or 0


def other_pivot_order(defaults: dict[str, Any]) -> int:
    """The MUMPS ordering the variant rows try: AMD (0), or IPOPT's automatic choice (7) where
    ``defaults`` (optrun's) already say AMD."""
    return 7 if int(defaults.get("mumps_pivot_order", 7)) == 0 else 0


def ipopt_options(who: str, max_iter: int | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """The options given explicitly on top of optrun's ``defaults`` (the anchor gets those too)."""
    options: dict[str, Any] = {}
    if max_iter is not None:
        options["max_iter"] = max_iter
    if who.endswith("-order"):
        options["mumps_pivot_order"] = other_pivot_order(defaults)
    return options


def label(who: str) -> str:
    from optrun.interfaces.ipopt.defaults import DEFAULT_OPTIONS

    order = other_pivot_order(DEFAULT_OPTIONS)
    return LABELS[who].format(order=f"{order} ({'AMD' if order == 0 else 'automatic, IPOPT default'})")


# ---------------------------------------------------------------- the child


#: perf_counter at the end of each iteration (the child's).
_STAMPS: list[float] = []


def _stamp() -> None:
    """Notes the end of an iteration, and tells the parent (which reports it on a time-out)."""
    _STAMPS.append(time.perf_counter())
    print(f"iter {len(_STAMPS)}", flush=True)


def _steady() -> float:
    """Seconds per iteration from the end of the first iteration to the end of the last."""
    return (_STAMPS[-1] - _STAMPS[0]) / (len(_STAMPS) - 1) if len(_STAMPS) > 1 else math.nan


def _peak_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def _limit_memory(budget: int) -> None:
    """Address space: what the process has now plus ``budget`` bytes (0: no limit)."""
    import resource

    if budget <= 0:
        return
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + budget, resource.RLIM_INFINITY))


def _anchor(problem: Problem, options: dict[str, Any]) -> dict[str, Any]:
    import cyipopt

    from optrun.interfaces.ipopt.defaults import DEFAULT_OPTIONS

    n, m = problem.n, N_LINEAR + N_NONLINEAR

    class Callbacks:
        nit = 0

        def objective(self, x: np.ndarray) -> float:
            return problem.objective(x)

        def gradient(self, x: np.ndarray) -> np.ndarray:
            return problem.gradient(x)

        def constraints(self, x: np.ndarray) -> np.ndarray:
            return problem.constraints(x)

        def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
            rows = np.repeat(np.arange(m, dtype=np.int32), n)
            return rows, np.tile(np.arange(n, dtype=np.int32), m)

        def jacobian(self, x: np.ndarray) -> np.ndarray:
            return problem.jacobian(x).ravel()

        def intermediate(self, alg_mod: int, iter_count: int, *_: Any) -> bool:
            self.nit = int(iter_count)
            if iter_count > 0:  # as optrun's step_callback: iteration 0 is the start point
                _stamp()
            return True

    callbacks = Callbacks()
    nlp = cyipopt.Problem(
        n=n,
        m=m,
        problem_obj=callbacks,
        lb=np.full(n, -BOUND),
        ub=np.full(n, BOUND),
        cl=np.zeros(m),
        cu=np.zeros(m),
    )
    for key, value in {**DEFAULT_OPTIONS, **options}.items():
        nlp.add_option(key, value)
    x, info = nlp.solve(problem.x0())
    return {"x": x, "nit": callbacks.nit, "status": int(info["status"])}


def tf_problem(problem: Problem) -> tuple[Any, Any, list[Any], Problem]:
    """The problem in TF: its variable, loss and equalities, and the problem over the TF copies of
    its data (NumPy views of them), so that a run, like the anchor's, holds one copy of the
    constraint rows once the caller drops ``problem``."""
    import tensorflow as tf

    v = tf.Variable(problem.x0())
    a_rows, c_rows = tf.constant(problem.a), tf.constant(problem.c)
    # Whole rows of a matrix are views of it in TensorFlow, and np.asarray of a CPU tensor is a
    # view (``.numpy()`` would copy).
    a = [a_rows[k] for k in range(N_LINEAR)]
    c = [c_rows[k] for k in range(N_NONLINEAR)]
    shared = Problem(np.asarray(a_rows), problem.b, np.asarray(c_rows), problem.d, problem.feasible)
    b, d = problem.b.tolist(), problem.d.tolist()
    loss = lambda: tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2)
    equalities = [lambda k=k: tf.reduce_sum(a[k] * v) - b[k] for k in range(N_LINEAR)]
    equalities += [lambda k=k: tf.reduce_sum(c[k] * v * v) - d[k] for k in range(N_NONLINEAR)]
    return v, loss, equalities, shared


def _optrun(who: str, problem: Problem, options: dict[str, Any], max_iter: int | None) -> tuple[Any, Problem]:
    """Builds the TF problem; returns a function that constructs the interface and runs it, and
    the problem over the TF copies of its data (see :func:`tf_problem`)."""
    import optrun

    v, loss, equalities, shared = tf_problem(problem)
    bounds = {v.ref(): (-BOUND, BOUND)}

    def run() -> dict[str, Any]:
        if who.startswith("ipopt"):
            threads = "unlimited" if who == "ipopt-unlimited" else "auto"
            opt = optrun.IpoptInterface(
                loss, [v], equalities, var_to_bounds=bounds, options=options, blas_threads=threads
            )
        else:
            method = {"slsqp": "SLSQP", "trust-constr": "trust-constr"}[who]
            opt = optrun.ScipyOptimizerInterface(
                loss,
                [v],
                equalities,
                var_to_bounds=bounds,
                method=method,
                options={"maxiter": max_iter or 1_000_000},
            )
        result = opt.minimize(step_callback=lambda xk: _stamp())
        return {"x": v.numpy(), "nit": int(result.nit), "status": int(result.status)}

    return run, shared


def _workset(problem: Problem, options: dict[str, Any]) -> tuple[Any, Problem]:
    """optrun's IPOPT run, and the peak of TensorFlow's own allocations during it above what
    TensorFlow held before (the variable and the constraint rows). Needs
    ``TF_CPU_ALLOCATOR_USE_BFC=true`` from the start of the process."""
    import tensorflow as tf

    inner, shared = _optrun("ipopt", problem, options, None)

    def run() -> dict[str, Any]:
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
        out = inner()
        out["workset_bytes"] = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
        return out

    return run, shared


def child(argv: list[str]) -> None:
    """``python -m bench.constrained_bench WHO N MAX_ITER MEMORY_BUDGET``: one run; JSON on stdout."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import logging

    import cyipopt  # noqa: F401 - imported before the clock
    import scipy.optimize  # noqa: F401
    import tensorflow as tf  # noqa: F401

    import optrun

    optrun.IpoptInterface, optrun.ScipyOptimizerInterface  # noqa: B018 - lazy imports, outside the clock
    logging.getLogger("optrun").setLevel(logging.WARNING)
    who, n, max_iter, budget = argv[0], int(argv[1]), int(argv[2]) or None, int(argv[3])
    problem = make_problem(n)
    from optrun.interfaces.ipopt.defaults import DEFAULT_OPTIONS

    options = ipopt_options(who, max_iter, DEFAULT_OPTIONS)
    if who.startswith("anchor"):
        run = lambda: _anchor(problem, options)
    elif who == "workset":
        run, problem = _workset(problem, options)
    else:
        run, problem = _optrun(who, problem, options, max_iter)
    _limit_memory(budget)
    print("start", flush=True)
    try:
        started = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - started
    except MemoryError:
        print("result " + json.dumps({"error": "out of memory (MemoryError)", "peak_gib": _peak_gib()}))
        return
    x = np.asarray(out["x"], np.float64)
    found = {
        "seconds": seconds,
        "nit": out["nit"],
        "status": out["status"],
        "violation": problem.violation(x),
        "bound_excess": problem.bound_excess(x),
        "fun": problem.objective(x),
        "steady": _steady(),
        "peak_gib": _peak_gib(),
    }
    if "workset_bytes" in out:
        found["workset_bytes"] = out["workset_bytes"]
    print("result " + json.dumps(found), flush=True)


# ---------------------------------------------------------------- the parent


def fresh(who: str, n: int, max_iter: int | None = None) -> dict[str, Any]:
    """One run in a new process, time-boxed to :data:`TIMEOUT_S` from the clock's start.

    Returns the child's figures, or ``{"error": ...}`` (not done in time, out
    of memory, not run because it would not fit), with ``nit`` where known.
    """
    need, free = predicted_bytes(who, n), available_bytes()
    budget = int(free * MEMORY_SHARE)
    if need is not None and free and need > budget:
        need_gib, free_gib = need / GIB, free / GIB
        return {
            "error": f"out of memory (would need {need_gib:,.0f} GiB; {free_gib:.0f} GiB available), not run"
        }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", "TF_CPU_ALLOCATOR_USE_BFC")}
    if who == "workset":
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.constrained_bench", who, str(n), str(max_iter or 0), str(budget)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**env, "PYTHONPATH": root},
            cwd=root,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.strip())
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline, nit, result, timed_out = time.monotonic() + SETUP_TIMEOUT_S, 0, None, False
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                timed_out = True
                proc.kill()
                break
            if line is None:
                break
            if line == "start":
                deadline = time.monotonic() + TIMEOUT_S
            elif line.startswith("iter "):
                nit = int(line.split()[1])
            elif line.startswith("result "):
                result = json.loads(line[len("result ") :])
        code = proc.wait()
        if timed_out:
            return {"error": f"not done in {TIMEOUT_S:.0f} s", "nit": nit}
        if result is not None:
            return result
        if code in (-9, 137):
            return {"error": "out of memory (killed)", "nit": nit}
        stderr.seek(0)
        tail = stderr.read()[-3000:]
        if "MemoryError" in tail or "std::bad_alloc" in tail:
            return {"error": "out of memory", "nit": nit}
        raise RuntimeError(f"{who} n={n} failed ({code}):\n{tail}")


def best_of(contenders: list[str], n: int, max_iter: int | None, repeats: int) -> dict[str, dict[str, Any]]:
    """Each contender's fastest of ``repeats`` runs, the contenders taking turns."""
    runs: dict[str, list[dict[str, Any]]] = {who: [] for who in contenders}
    for _ in range(repeats):
        for who in contenders:
            if runs[who] and "error" in runs[who][-1]:
                continue  # a time box or memory wall is not worth meeting twice
            runs[who].append(fresh(who, n, max_iter))
    return {who: min(found, key=lambda r: r.get("seconds", math.inf)) for who, found in runs.items()}


def per_iteration(run: dict[str, Any]) -> float:
    """Seconds per iteration: from the end of the first iteration to the end of the last (wall time
    over iterations where there were fewer than two)."""
    if "seconds" not in run:
        return math.nan
    steady = run.get("steady", math.nan)
    return steady if math.isfinite(steady) else run["seconds"] / max(run["nit"], 1)


def describe(run: dict[str, Any]) -> str:
    """Iterations, time per iteration, violation and objective; or what stopped the run."""
    if "error" in run:
        done = f" ({run['nit']} iterations done)" if run.get("nit") else ""
        return f"{run['error']}{done}"
    text = (
        f"{run['nit']} iterations, {per_iteration(run) * 1e3:.1f} ms/iteration, status {run['status']}, "
        f"violation {run['violation']:.0e}"
    )
    if run["bound_excess"] > 0:
        text += f" (bounds exceeded by {run['bound_excess']:.0e})"
    return f"{text}, f {run['fun']:.10g}, peak RSS {run['peak_gib']:.3f} GiB"


def _target(who: str, run: dict[str, Any], anchor: dict[str, Any], n: int) -> str:
    if who != "ipopt" or "seconds" not in run or "seconds" not in anchor:
        return ""
    if n == CAPPED_N:
        ratio = per_iteration(run) / per_iteration(anchor)
        extra_mb = (run["peak_gib"] - anchor["peak_gib"]) * GIB / 2**20
        rows_mb = (N_LINEAR + N_NONLINEAR) * n * 8 / 2**20
        return (
            f"{ratio:.2f}x the anchor per iteration (<= 1.2x); peak RSS {extra_mb:+.0f} MB against the "
            f"anchor's, {extra_mb / rows_mb:.1f}x the Jacobian rows ({rows_mb:.0f} MB)"
        )
    if n == 10_000:
        ok = (
            "converged"
            if run["status"] in (0, 1) and run["violation"] <= VIOLATION_TARGET
            else "NOT converged"
        )
        return (
            f"{ok}, violation {run['violation']:.0e} (<= 1e-8); "
            f"{run['seconds'] / anchor['seconds']:.2f}x the anchor (<= 1.2x)"
        )
    return ""


def _workset_row(run: dict[str, Any], n: int) -> Row:
    """TensorFlow's own peak during the run, against the Jacobian rows' size; not a timing."""
    rows_bytes = (N_LINEAR + N_NONLINEAR) * n * 8
    if "workset_bytes" not in run:
        what = describe(run)
    else:
        peak = run["workset_bytes"]
        what = (
            f"{WORKSET_ITER} iterations: peak {peak / 2**20:.1f} MB above the problem's data, "
            f"{peak / rows_bytes:.1f}x the Jacobian rows ({rows_bytes / 2**20:.1f} MB), "
            f"{peak / (8 * n):.0f} float64 vectors of length n"
        )
    setup = f"{label('workset')}: {what}"
    return {"case": "", "setup": setup, "us": math.nan, "ratio": math.nan, "target": ""}


def size_rows(n: int) -> list[Row]:
    capped = n >= CAPPED_N
    max_iter = CAPPED_ITER if capped else None
    ipopt = ["anchor", "ipopt"]
    if n == 10_000:
        ipopt += ["ipopt-unlimited", "ipopt-order", "anchor-order"]
    runs = best_of(ipopt, n, max_iter, 1 if capped else REPEATS)
    runs.update({who: fresh(who, n) for who in ("slsqp", "trust-constr")})
    runs["workset"] = fresh("workset", n, WORKSET_ITER)
    anchor = runs["anchor"]
    limit = f", IPOPT max_iter {CAPPED_ITER}" if capped else ""
    order = ["anchor", "ipopt", *ipopt[2:], "slsqp", "trust-constr", "workset"]
    rows: list[Row] = []
    for who in order:
        run = runs[who]
        if who == "workset":
            rows.append(_workset_row(run, n))
            continue
        rows.append(
            {
                "case": f"Large constrained: Rosenbrock chain n={n:,}, 10 dense equalities{limit}"
                if who == "anchor"
                else "",
                "setup": f"{label(who)}: {describe(run)}",
                "us": run.get("seconds", math.nan) * 1e6,
                "ratio": run.get("seconds", math.nan) / anchor.get("seconds", math.nan),
                "target": _target(who, run, anchor, n),
            }
        )
    return rows


def large_constrained(sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> list[Row]:
    rows: list[Row] = []
    for n in sizes:
        rows += size_rows(n)
    return rows


if __name__ == "__main__":
    child(sys.argv[1:])

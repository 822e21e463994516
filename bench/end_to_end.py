"""End to end: from building the interface to the result, each run in a fresh process.

Users feel the whole call, not the warm per-evaluation time: the checks at
construction, tracing, compiling and every evaluation. Each row below is one
new Python process that imports TensorFlow, scipy.optimize, optrun (and
GPflow where it runs) and builds the problem *before* the clock starts; the
clock then covers the optimizer's construction and its ``minimize`` to the
result. Best of :data:`REPEATS` processes per row, the contenders taking turns, each
round starting with the next one. L-BFGS-B with ``ftol = gtol = 0``, so every run goes
to its limit or to where the line search can no longer make progress (Rosenbrock, after
about 650 evaluations: the :data:`RESTARTS` rows reach 3,000 by starting again).

Cases: Rosenbrock N=100 (float64) and the float32 Burgers PINN of
:mod:`bench.pinn_bench`, in TF2 (limit: ``maxiter``) and as ``tf.compat.v1``
graphs (limit: ``maxfun``, evaluations). Contenders: optrun's default, both
fixed ``jit_compile`` modes, GPflow's ``Scipy`` (its defaults) in TF2 and
TF1's own algorithm (:class:`bench.graph_bench.TF1Algorithm`) in graph mode.

Targets (ratios within one case): the default <= 1.10x the better fixed mode;
TF2: GPflow >= 1.5x the default's time; graph mode: the default <= 1.0x TF1's
algorithm, and <= 0.5x from 3,000 evaluations on.
"""

from __future__ import annotations

from typing import Any

from bench.timing import fresh_process

Row = dict[str, Any]
#: Fresh processes per row, of which the fastest counts: runs of a few seconds still moved by
#: 5-10% between processes on the bench's 2-core machines, which best of 3 did not even out.
REPEATS = 5

#: Rosenbrock N=100 converges after about 650 evaluations, so no single run reaches the 3,000 the
#: long-run targets are set at: these rows run L-BFGS-B this many times from the start, on one
#: optimizer built once (a fit restarted, or repeated on new data).
RESTARTS = 5

_CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import scipy.optimize
import tensorflow as tf
import optrun
optrun.ScipyOptimizerInterface  # the lazy import of the interface, outside the clock
world, problem, who, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runs = int(sys.argv[5])  # minimize calls from the start, on one interface
nfev, tiers = 0, None

def count(result):  # each tier's evaluations, summed over the runs
    global tiers
    found = getattr(result, "tiers", None)
    if found is None:
        return
    if tiers is None:
        tiers = found
    else:
        for k, v in found["evaluations"].items():
            tiers["evaluations"][k] = tiers["evaluations"].get(k, 0) + v

options = {"ftol": 0.0, "gtol": 0.0}
if world == "tf2":
    options["maxiter"] = limit
    if who == "gpflow":
        import gpflow
        gpflow.optimizers.Scipy
    if problem == "rosen":
        from bench.scipy_bench import rosen_tf
        v = tf.Variable(np.zeros(100))
        weights, loss = [v], lambda: rosen_tf(v)
    else:
        from bench.pinn_bench import burgers
        weights, loss = burgers(tf.float32)
    start = [w.numpy() for w in weights]
    started = time.perf_counter()
    if who == "gpflow":
        opt = gpflow.optimizers.Scipy()
        run = lambda: opt.minimize(loss, weights, method="L-BFGS-B", options=options)
    else:
        jit = {"default": None, "xla": True, "plain": False}[who]
        opt = optrun.ScipyOptimizerInterface(loss, var_list=weights, jit_compile=jit, options=options)
        run = opt.minimize
    for i in range(runs):
        if i:
            for w, s in zip(weights, start):
                w.assign(s)
        result = run()
        nfev += int(result.nfev)
        count(result)
    seconds = time.perf_counter() - started
else:
    from bench import graph_bench
    options.update(maxfun=limit, maxiter=10 * limit)
    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        if problem == "rosen":
            loss, variables = graph_bench._rosenbrock()
        else:
            loss, variables = graph_bench.burgers_pinn()
        init = tf.compat.v1.global_variables_initializer()
        session.run(init)
        started = time.perf_counter()
        if who == "tf1":
            opt = graph_bench.TF1Algorithm(loss, variables)
            run = lambda: opt.minimize(session, options)
        else:
            jit = {"default": None, "xla": True, "plain": False}[who]
            opt = optrun.ScipyOptimizerInterface(loss, var_list=variables, jit_compile=jit, options=options)
            run = lambda: opt.minimize(session)
        for i in range(runs):
            if i:
                session.run(init)
            result = run()
            nfev += int(result.nfev)
            count(result)
        seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "nfev": nfev, "fun": float(result.fun), "tiers": tiers}))
"""

#: (world, problem, limits, peer): the lengths the targets are set at.
CASES = [
    ("tf2", "rosen", [30, 300, 3000], "gpflow"),
    ("tf2", "pinn", [20, 200, 1000], "gpflow"),
    ("graph", "rosen", [30, 300, 3000], "tf1"),
    ("graph", "pinn", [20, 200, 1000], "tf1"),
]
LABELS = {
    "default": "optrun default",
    "xla": "optrun jit_compile=True",
    "plain": "optrun jit_compile=False",
    "gpflow": "GPflow Scipy (defaults)",
    "tf1": "TF1's own algorithm",
}


def fresh(
    world: str, problem: str, who: str, limit: int, extra_env: dict[str, str] | None = None, runs: int = 1
) -> dict[str, Any]:
    """One new process: ``runs`` minimize calls from the start on one optimizer; the seconds from
    its construction to the last result, the evaluations and each tier's, summed over the runs."""
    return fresh_process(_CHILD, [world, problem, who, str(limit), str(runs)], extra_env)


def best_of(
    world: str,
    problem: str,
    contenders: list[str],
    limit: int,
    extra_env: dict[str, str] | None = None,
    runs: int = 1,
) -> dict[str, dict[str, Any]]:
    """Each contender's best of :data:`REPEATS` fresh processes, run in turns (one of each, then
    again), so that a slow spell of the machine does not fall on one contender alone. Each round
    starts with the next contender: the first process of a round tended to run slower, whoever
    it was."""
    found: dict[str, list[dict[str, Any]]] = {who: [] for who in contenders}
    for round_ in range(REPEATS):
        start = round_ % len(contenders)
        for who in contenders[start:] + contenders[:start]:
            found[who].append(fresh(world, problem, who, limit, extra_env, runs))
    return {who: min(times, key=lambda r: r["seconds"]) for who, times in found.items()}


def _tier_note(run: dict[str, Any]) -> str:
    tiers = run.get("tiers")
    if not tiers:
        return ""
    counts = ", ".join(f"{k} {v}" for k, v in tiers.get("evaluations", {}).items() if v)
    return f" [{counts}]" if counts else ""


def case_rows(
    world: str,
    problem: str,
    limit: int,
    peer: str | None,
    extra_env: dict[str, str] | None = None,
    runs: int = 1,
) -> list[Row]:
    """One length of one case: every contender (``peer`` too, if any), ratios to the default;
    ``extra_env`` is set in every process and named in the case, as are ``runs`` from the start."""
    contenders = ["default", "xla", "plain", *([peer] if peer else [])]
    found = best_of(world, problem, contenders, limit, extra_env, runs)
    base = found["default"]["seconds"]
    better = min(found["xla"]["seconds"], found["plain"]["seconds"])
    name = {"rosen": "Rosenbrock N=100", "pinn": "Burgers PINN float32"}[problem]
    unit = "maxiter" if world == "tf2" else "maxfun"
    rows = []
    for who, run in found.items():
        if who == "default":
            target = f"{base / better:.2f}x the better fixed mode (<= 1.10x)"
        elif who == "gpflow":
            target = f"default {run['seconds'] / base:.2f}x faster (>= 1.5x)"
        elif who == "tf1":
            # The 0.5x target is set at 3,000 evaluations: rows that stop short of them get 1.0x.
            bound = "0.5x" if found["default"]["nfev"] >= 3000 else "1.0x"
            target = f"default at {base / run['seconds']:.2f}x (<= {bound})"
        else:
            target = ""
        rows.append(
            {
                "case": f"End to end: {name}, {'TF2' if world == 'tf2' else 'tf.compat.v1 graph'}, "
                f"{unit} {limit}{''.join(f', {k}={v}' for k, v in (extra_env or {}).items())}"
                f"{f', {runs} runs from the start on one optimizer' if runs > 1 else ''}"
                if who == "default"
                else "",
                "setup": f"{LABELS[who]} ({run['nfev']} evaluations){_tier_note(run)}",
                "us": run["seconds"] * 1e6,
                "ratio": run["seconds"] / base,
                "target": target,
            }
        )
    return rows


def slower_xla() -> list[Row]:
    """The PINN at 1,000 iterations with TensorFlow held to one intra-op thread, where XLA is
    slower per point than the plain function: the default switches, times both tiers at XLA's
    first points and goes back (:mod:`optrun.evaluation.pace`)."""
    return case_rows("tf2", "pinn", 1000, None, {"TF_NUM_INTRAOP_THREADS": "1"})


def end_to_end(worlds: tuple[str, ...] = ("tf2", "graph")) -> list[Row]:
    rows: list[Row] = []
    for world, problem, limits, peer in CASES:
        if world in worlds:
            rows += [row for limit in limits for row in case_rows(world, problem, limit, peer)]
    for world, peer in (("tf2", "gpflow"), ("graph", "tf1")):
        if world in worlds:
            rows += case_rows(world, "rosen", 3000, peer, runs=RESTARTS)
    return rows


def end_to_end_tf2() -> list[Row]:
    """The TF2 rows of :func:`end_to_end` alone (about half its time)."""
    return end_to_end(("tf2",))


def end_to_end_graph() -> list[Row]:
    """The ``tf.compat.v1`` graph rows of :func:`end_to_end` alone (about half its time)."""
    return end_to_end(("graph",))

"""``make bench``: run every case in one process and print one table."""

from __future__ import annotations

import logging
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _time(us: float) -> str:
    """Microseconds in the unit that reads best: us, ms or s."""
    if math.isnan(us):
        return "n/a"
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    return f"{us / 1e3:.2f} ms" if us >= 1e3 else f"{us:.1f} us"


def _table(rows: list[dict]) -> str:
    lines = ["| Case | Setup | Time | Ratio | Target |", "| --- | --- | ---: | ---: | --- |"]
    for row in rows:
        us = _time(row["us"])
        ratio = "n/a" if math.isnan(row["ratio"]) else f"{row['ratio']:.2f}x"
        lines.append(f"| {row['case']} | {row['setup']} | {us} | {ratio} | {row['target']} |")
    return "\n".join(lines)


def main() -> None:
    logging.getLogger("optrun").setLevel(logging.WARNING)
    from bench import (
        blas_bench,
        compile_cost,
        constrained_bench,
        end_to_end,
        first_eval,
        graph_bench,
        ipopt_memory,
        overhead,
        pinn_bench,
        scipy_bench,
        strategy_bench,
        stream_bench,
        sweep_bench,
        tf_runtime,
        tier1_bench,
        wrappers_bench,
    )
    from bench.timing import machine

    only = set(sys.argv[1:])
    # Keras cases first: importing GPflow (scipy cases) loads tf_keras beside Keras 3.
    cases = {
        "mlp": wrappers_bench.mlp_wrappers,
        "sparse": wrappers_bench.sparse_clipping,
        "rosen100": scipy_bench.rosenbrock_small,
        "rosen10k": scipy_bench.rosenbrock_large,
        "slsqp": scipy_bench.slsqp_constraints,
        "overhead": overhead.call_overhead,
        "tf1rosen": graph_bench.rosenbrock_graph,
        "tf1pinn": graph_bench.pinn_graph,
        "pinn32": pinn_bench.pinn_float32,
        "pinn64": pinn_bench.pinn_float64,
        "firsteval": first_eval.time_to_first_evaluation,
        "endtoend": end_to_end.end_to_end,
        "endtoendtf2": end_to_end.end_to_end_tf2,  # its TF2 rows alone
        "endtoendgraph": end_to_end.end_to_end_graph,  # its graph-mode rows alone
        "slowxla": end_to_end.slower_xla,  # where XLA is slower: the default goes back to plain
        "tier1": tier1_bench.session_tier,  # the default's first tier: a session against the function
        "tfruntime": tf_runtime.runtimes,  # TF1 session against tf.function: the PINN's floor without XLA
        "compilecost": compile_cost.compile_costs,  # XLA's compile against the trace, per problem
        "blas": blas_bench.blas_policy,
        "constrained": constrained_bench.large_constrained,
        "ipoptmem": ipopt_memory.jacobian_memory,  # bytes per dense Jacobian entry, IPOPT and optrun
        "stream": stream_bench.streamed_full_batch,
        "mirrored": strategy_bench.mirrored_overhead,
        "trainscale": strategy_bench.training_overhead,
        "minscale": strategy_bench.minimize_overhead,
        "sweep": sweep_bench.sweep_cases,  # optrun sweep: --jobs 2 against 1, and pruning's savings
        "sweepjobs": sweep_bench.jobs_scaling,
        "sweepprune": sweep_bench.pruning,
    }
    rows: list[dict] = []
    started = time.perf_counter()
    named_only = {"endtoendtf2", "endtoendgraph"}  # parts of endtoend: run when asked for, not twice
    for name, case in cases.items():
        if name in only or (not only and name not in named_only):
            rows += case()
    print(f"Machine: {machine()}")
    elapsed = time.perf_counter() - started
    print(f"Best of 3-7 warm runs per setup; ratios compare rows of one case ({elapsed:.0f} s in all).\n")
    print(_table(rows))


if __name__ == "__main__":
    main()

"""Full-batch evaluation streamed over a dataset: time grows with the points, memory does not.

The Burgers PINN's residual loss (see :mod:`bench.pinn_bench`) over 10k,
100k and 1M collocation points, in batches of 10,000, through
``optrun.dataset_loss``. Each size runs in a new process, so its peak RSS is
its own: time per evaluation should grow linearly, peak RSS stay flat.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

Row = dict[str, Any]
BATCH = 10_000

_RUN = """
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
import optrun
from bench import pinn_bench
n = int(sys.argv[1])
weights, _ = pinn_bench.burgers(tf.float32, n_col=10, n_bc=10)
rng = np.random.default_rng(0)
points = tf.data.Dataset.from_tensor_slices(
    np.c_[rng.uniform(-1, 1, n), rng.uniform(0, 1, n)].astype("float32")
).batch(int(sys.argv[2]))
nu = 0.01 / np.pi


def residual(xt):
    return tf.reduce_sum(pinn_bench.residual(weights, xt, nu) ** 2)


opt = optrun.ScipyOptimizerInterface(
    optrun.dataset_loss(residual, points, var_list=weights), var_list=weights, jit_compile=False
)
x0 = opt.start_point()
opt.evaluate(x0)
times = []
for i in range(3):
    started = time.perf_counter()
    opt.evaluate(x0 + 1e-3 * (i + 1))
    times.append(time.perf_counter() - started)
print(json.dumps({"s": min(times), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _one(points: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(points), str(BATCH)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def streamed_full_batch() -> list[Row]:
    rows: list[Row] = []
    base: dict[str, float] = {}
    for points in (10_000, 100_000, 1_000_000):
        seen = _one(points)
        base = base or seen
        rows.append(
            {
                "case": "Full-batch PINN residual over a dataset, batches of 10,000" if not rows else "",
                "setup": f"{points:,} points: peak RSS {seen['rss_mb']:.0f} MB",
                "us": seen["s"] * 1e6,
                "ratio": seen["s"] / base["s"],
                "target": f"~{points // 10_000}x (linear)",
            }
        )
    return rows

"""The cost of the distribution machinery: full-batch evaluations over 1, 2 and 4 logical CPUs.

On one 2-core CPU split into logical devices nothing gets faster (the cores
are shared); the ratio against one device is the overhead of splitting each
batch, running the replicas and all-reducing their sums. Each device count
runs in a new process (logical devices are fixed at TensorFlow's start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

Row = dict[str, Any]

_RUN = """
import json, sys, time
import numpy as np, tensorflow as tf
n = int(sys.argv[1])
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
import optrun
rng = np.random.default_rng(0)
x = rng.normal(size=(100_000, 20)); y = x @ rng.normal(size=20)
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(10_000)
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
strategy = tf.distribute.MirroredStrategy(devices) if n > 1 else None
scope = strategy.scope() if strategy else tf.name_scope("one")
with scope:
    w = tf.Variable(np.zeros(20))
full = optrun.dataset_loss(
    lambda b: tf.reduce_sum((tf.linalg.matvec(b[0], w) - b[1]) ** 2), data, var_list=[w], strategy=strategy
)
opt = optrun.ScipyOptimizerInterface(full, var_list=[w], jit_compile=False)
x0 = opt.start_point(); opt.evaluate(x0)
times = []
for i in range(5):
    started = time.perf_counter()
    opt.evaluate(x0 + 1e-3 * (i + 1))
    times.append(time.perf_counter() - started)
print(json.dumps({"s": min(times)}))
"""


def _one(devices: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(devices)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["s"])


def mirrored_overhead() -> list[Row]:
    rows: list[Row] = []
    base = 0.0
    for devices in (1, 2, 4):
        seconds = _one(devices)
        base = base or seconds
        rows.append(
            {
                "case": "Full-batch evaluation, 100k x 20 least squares, MirroredStrategy"
                if not rows
                else "",
                "setup": f"{devices} logical CPU{'s' if devices > 1 else ''}"
                + (" (no strategy)" if devices == 1 else ""),
                "us": seconds * 1e6,
                "ratio": seconds / base,
                "target": "overhead, not speed-up (2 shared cores)",
            }
        )
    return rows

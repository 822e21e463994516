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


_TRAIN_SPEC = """\
name: bench-strategy
model: {builder: strategy_problem.py:build_model}
data: {builder: strategy_problem.py:make_data, params: {n: 4096, batch_size: 256}, global_batch_size: 256}
loss: mse
train: {max_steps: 300, optimizer: {name: SGD, args: {learning_rate: 0.05}}}
checkpoint: {export: none}
logging: {tensorboard: false, every_steps: 100}
"""


def _train(
    folder: str, extra: list[str], env: dict[str, str] | None = None, command_name: str = "train"
) -> subprocess.Popen:
    command = [sys.executable, "-m", "optrun", command_name, f"{folder}/spec.yaml", "--json", "-q", *extra]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def _steps_per_second(process: subprocess.Popen) -> float:
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(err[-2000:])
    result = json.loads(out)
    return result["steps"] / result["time_s"]


def _two_workers(folder: str, extra: list[str], command_name: str) -> list[subprocess.Popen]:
    """Two worker processes on free ports of 127.0.0.1, each with its TF_CONFIG."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(f"127.0.0.1:{s.getsockname()[1]}")
    return [
        _train(
            folder,
            ["--strategy", "multi_worker", *extra],
            {"TF_CONFIG": json.dumps({"cluster": {"worker": ports}, "task": {"type": "worker", "index": i}})},
            command_name,
        )
        for i in (0, 1)
    ]


_MINIMIZE_MODULE = """
import numpy as np, tensorflow as tf

def build():
    return tf.Variable(np.zeros(20), name="w")

def data(batch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100_000, 20))
    y = x @ rng.normal(size=20) + 0.1 * rng.normal(size=100_000)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)

def loss(w, batch):
    return tf.reduce_sum((tf.linalg.matvec(batch[0], w) - batch[1]) ** 2)
"""
_MINIMIZE_SPEC = """\
name: bench-minimize-scale
model: {builder: m.py:build}
data: {builder: m.py:data, params: {batch: 10000}, global_batch_size: 10000}
loss: m.py:loss
minimize: {data: {reduction: sum}, options: {maxiter: 200}}
checkpoint: {export: none}
logging: {tensorboard: false}
"""


def _evaluations_per_second(process: subprocess.Popen) -> tuple[float, int]:
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(err[-2000:])
    result = json.loads(out)
    return result["nfev"] / result["solve_s"], result["nfev"]


def minimize_overhead() -> list[Row]:
    """Full-batch L-BFGS-B through `optrun minimize`: evaluations/s of one spec on 1, 2 and 4
    logical CPUs and on 2 local worker processes (scipy on the chief)."""
    import tempfile
    from pathlib import Path

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "m.py").write_text(_MINIMIZE_MODULE)
        Path(folder, "spec.yaml").write_text(_MINIMIZE_SPEC)
        rates = {
            "1 logical CPU (no strategy)": _evaluations_per_second(
                _train(folder, ["--out", f"{folder}/a"], command_name="minimize")
            )
        }
        for n in (2, 4):
            mirrored = ["--strategy", "mirrored", "--set", f"strategy.logical_cpus={n}"]
            mirrored += ["--out", f"{folder}/m{n}"]
            rates[f"{n} logical CPUs, mirrored"] = _evaluations_per_second(
                _train(folder, mirrored, command_name="minimize")
            )
        chief, other = _two_workers(folder, ["--out", f"{folder}/w"], "minimize")
        rates["2 local worker processes, multi_worker"] = _evaluations_per_second(chief)
        other.communicate(timeout=600)
    base = rates["1 logical CPU (no strategy)"][0]
    for label, (rate, nfev) in rates.items():
        rows.append(
            {
                "case": "Full-batch minimize, 100k x 20 least squares, evaluations" if not rows else "",
                "setup": f"{label}: {rate:.1f} evaluations/s, nfev {nfev}",
                "us": 1e6 / rate,
                "ratio": base / rate,
                "target": "overhead, not speed-up (2 shared cores)",
            }
        )
    return rows


def training_overhead() -> list[Row]:
    """Training steps/s of one spec on 1, 2 and 4 logical CPUs, and on 2 local worker processes."""
    import shutil
    import tempfile
    from pathlib import Path

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(Path(__file__).resolve().parents[1] / "tests" / "scripts" / "strategy_problem.py", folder)
        Path(folder, "spec.yaml").write_text(_TRAIN_SPEC)
        rates = {"1 logical CPU (no strategy)": _steps_per_second(_train(folder, ["--out", f"{folder}/a"]))}
        for n in (2, 4):
            mirrored = [
                "--strategy",
                "mirrored",
                "--set",
                f"strategy.logical_cpus={n}",
                "--out",
                f"{folder}/m{n}",
            ]
            rates[f"{n} logical CPUs, mirrored"] = _steps_per_second(_train(folder, mirrored))
        workers = _two_workers(folder, ["--out", f"{folder}/w"], "train")
        rates["2 local worker processes, multi_worker"] = min(_steps_per_second(w) for w in workers)
    base = rates["1 logical CPU (no strategy)"]
    for label, rate in rates.items():
        rows.append(
            {
                "case": "Training, 3-4-2 tanh MLP, global batch 256, steps" if not rows else "",
                "setup": f"{label}: {rate:.0f} steps/s",
                "us": 1e6 / rate,
                "ratio": base / rate,
                "target": "overhead, not speed-up (2 shared cores)",
            }
        )
    return rows

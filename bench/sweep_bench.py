"""``optrun sweep``: trials in parallel (``--jobs``), and what pruning saves. One run of each setup.

Cases (each ``optrun sweep`` a fresh process, the clock around the whole command):

* **jobs**: a fixed budget of :data:`JOB_TRIALS` short training trials (the MLP of
  ``examples/mlp.py``, :data:`JOB_STEPS` steps each, random sampler, fixed seed, no
  pruning) with ``--jobs 1`` and ``--jobs 2``. Target: ``--jobs 2`` <= 0.6x the wall time
  of ``--jobs 1`` on a 2-core machine.
* **prune**: a :data:`PRUNE_TRIALS`-trial learning-rate sweep (log 1e-4..1, random sampler
  with a fixed seed, so both setups draw the same 20 rates) with ``--pruner none`` and
  ``--pruner median``. Target: median's total training steps (the sum of the trials'
  ``steps`` in result.json) <= 0.6x none's, with the same best trial.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

Row = dict[str, Any]
ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "examples" / "mlp.py"
#: Batches of 64 rows: a step this small runs no faster on two threads than on one (measured: 1.03 s
#: against 1.07 s for 600 steps), so ``--jobs 1`` leaves a core idle, as a small model's sweep does.
JOB_TRIALS, JOB_STEPS, JOB_BATCH = 16, 1000, 64
#: Batches of 256 rows, so that a step's loss says more about the rate than the batch's noise.
PRUNE_TRIALS, PRUNE_STEPS, PRUNE_BATCH = 20, 200, 256

SPEC = f"""\
name: bench-sweep
seed: 7
model: {{builder: {MLP}:build_model, params: {{inputs: 8, hidden: 32}}}}
data: {{builder: {MLP}:make_data, params: {{inputs: 8, n: 2048, batch_size: {{batch}}}}}}
loss: mse
train:
  max_steps: {{steps}}
  optimizer: {{name: SGD, args: {{learning_rate: 0.05, momentum: 0.9}}}}
checkpoint: {{export: none}}
logging: {{every_steps: 10, tensorboard: false}}
"""


def _sweep(folder: Path, steps: int, batch: int, *args: str) -> tuple[float, Path]:
    """Runs ``optrun sweep`` on the bench spec; returns its wall time and sweep directory."""
    spec = folder / f"spec-{steps}-{batch}.yaml"
    spec.write_text(SPEC.replace("{steps}", str(steps)).replace("{batch}", str(batch)), encoding="utf-8")
    out = folder / f"sweep-{len(list(folder.glob('sweep-*')))}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "optrun", "sweep", str(spec), "--out", str(out), "-q", *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds, out


def _ranked(out: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "optrun", "runs", str(out), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _steps(out: Path) -> int:
    return sum(json.loads((run / "result.json").read_text())["steps"] for run in out.glob("trial-*"))


def jobs_scaling() -> list[Row]:
    """``--jobs 1`` against ``--jobs 2`` on the same budget of trials."""
    folder = Path(tempfile.mkdtemp(prefix="optrun-bench-sweep-"))
    try:
        common = ("--trials", str(JOB_TRIALS), "--sampler", "random", "--pruner", "none")
        common += ("--param", "train.optimizer.args.learning_rate=log:1e-3..1e-1")
        one, _ = _sweep(folder, JOB_STEPS, JOB_BATCH, *common, "--jobs", "1")
        two, _ = _sweep(folder, JOB_STEPS, JOB_BATCH, *common, "--jobs", "2")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    setup = f"{JOB_TRIALS} trials x {JOB_STEPS} steps, jobs"
    target = "jobs 2 <= 0.6x jobs 1"
    return [
        {"case": "sweep jobs", "setup": f"{setup} 1", "us": one * 1e6, "ratio": 1.0, "target": target},
        {"case": "sweep jobs", "setup": f"{setup} 2", "us": two * 1e6, "ratio": two / one, "target": target},
    ]


def pruning() -> list[Row]:
    """``--pruner none`` against ``--pruner median``: total training steps, and the best trial."""
    folder = Path(tempfile.mkdtemp(prefix="optrun-bench-prune-"))
    try:
        common = ("--trials", str(PRUNE_TRIALS), "--sampler", "random", "--seed", "7")
        common += ("--param", "train.optimizer.args.learning_rate=log:1e-4..1")
        rows, found = [], {}
        for pruner in ("none", "median"):
            seconds, out = _sweep(folder, PRUNE_STEPS, PRUNE_BATCH, *common, "--pruner", pruner)
            best = _ranked(out)[0]
            found[pruner] = (_steps(out), best["number"], best["value"], seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = found["none"][0]
    target = "median steps <= 0.6x none, same best trial"
    for pruner, (steps, number, value, seconds) in found.items():
        same = "" if pruner == "none" else (" (same best)" if number == found["none"][1] else " (OTHER best)")
        setup = f"pruner {pruner}: {steps} steps, best trial {number} ({value:.4g}){same}"
        rows.append(
            {
                "case": "sweep prune",
                "setup": setup,
                "us": seconds * 1e6,
                "ratio": steps / base,
                "target": target,
            }
        )
    return rows


def sweep_cases() -> list[Row]:
    """Both cases (``python -m bench sweep``)."""
    return jobs_scaling() + pruning()

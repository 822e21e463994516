"""Kill a training run at random points, resume it, and get the uninterrupted run's weights exactly.

Shared by test_resume_signals.py (8 signals) and test_resume_kills.py (20 SIGKILLs), two files so
that pytest-xdist runs them side by side. Each interrupt comes at a different step (seeded) and is
followed by ``--resume``; the exported weights must equal an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
STEPS = 1500
MODULE = """
import numpy as np
import tensorflow as tf
import keras

def build():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation='tanh', name='h'),
                             keras.layers.Dense(1, name='out')])

def data():
    x = np.linspace(-1, 1, 256, dtype=np.float32).reshape(64, 4)
    return tf.data.Dataset.from_tensor_slices((x, np.sin(3 * x[:, :1]))).batch(8)
"""
SPEC = f"""name: loop
model: {{builder: m.py:build}}
data: {{builder: m.py:data}}
loss: mse
train:
  max_steps: {STEPS}
  optimizer:
    name: SGD
    args: {{learning_rate: 0.01, momentum: 0.5}}
    wrappers: [{{kind: moving_average, average_decay: 0.99}}]
checkpoint: {{every_steps: 25, keep: 2}}
logging: {{every_steps: 1, tensorboard: false}}
"""


def optrun() -> list[str]:
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "optrun"]


def weights(run: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(run / "export" / "model.weights.h5", "r") as f:
        f.visititems(
            lambda name, item: found.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return found


def lines(run: Path) -> int:
    path = run / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def make_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """An uninterrupted run: its folder and its exported weights."""
    where = tmp_path_factory.mktemp("loop")
    (where / "m.py").write_text(MODULE)
    (where / "s.yaml").write_text(SPEC)
    done = subprocess.run(
        [*optrun(), "train", "s.yaml", "-q", "--out", "ref"], cwd=where, env=ENV, check=False
    )
    assert done.returncode == 0
    return where, weights(where / "ref")


def started(where: Path, name: str, at: int) -> subprocess.Popen[str]:
    """A training run into ``name``, once it has logged ``at`` steps (or ended)."""
    proc = subprocess.Popen(
        [*optrun(), "train", "s.yaml", "-q", "--out", name],
        cwd=where,
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while lines(where / name) < at and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc


def _cycle(where: Path, name: str, sig: int, at: int) -> tuple[int, int]:
    proc = started(where, name, at)
    proc.send_signal(sig)
    code = proc.wait(timeout=240)
    resumed = subprocess.run(
        [*optrun(), "train", "s.yaml", "-q", "--out", name, "--resume"],
        cwd=where,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    return code, resumed.returncode


def run_loop(reference: tuple[Path, dict[str, np.ndarray]], kinds: list[int], seed: int) -> None:
    where, want = reference
    rng = random.Random(seed)
    codes = []
    for i, sig in enumerate(kinds):
        name = f"{signal.Signals(sig).name}-{seed}-{i}"
        code, _ = _cycle(where, name, sig, rng.randrange(30, STEPS - 100))
        codes.append(code)
        got = weights(where / name)
        assert got.keys() == want.keys()
        diff = max(float(np.max(np.abs(got[k] - want[k]))) for k in want)
        assert diff == 0.0, (name, diff)
        steps = [
            json.loads(line)["step"] for line in (where / name / "metrics.jsonl").read_text().splitlines()
        ]
        assert steps == list(range(1, STEPS + 1)), name  # no step lost, none twice
    expected = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}
    assert all(code in (expected[s], 0) for code, s in zip(codes, kinds, strict=True)), codes
    names = ", ".join(sorted({signal.Signals(s).name for s in kinds}))
    print(f"\n{len(kinds)} interrupts ({names}): each resumed to the uninterrupted weights, difference 0.0")

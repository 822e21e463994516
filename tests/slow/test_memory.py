"""Memory stays flat over a long run: 20,000 training steps, RSS sampled from /proc while it runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
STEPS = 20_000
MAX_GROWTH_MB = 50
MODULE = """
import numpy as np
import tensorflow as tf

def build():
    return tf.Variable(np.zeros(16, np.float32), name='w')

def loss(w, batch):
    return tf.reduce_sum(tf.square(w - batch))

def data():
    return tf.data.Dataset.from_tensors(np.ones(16, np.float32)).repeat()
"""
SPEC = f"""name: long
model: {{builder: m.py:build}}
data: {{builder: m.py:data}}
loss: m.py:loss
train: {{max_steps: {STEPS}, optimizer: {{name: SGD, args: {{learning_rate: 0.001}}}}}}
checkpoint: {{every_steps: 2000, keep: 2}}
logging: {{every_steps: 10}}
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_rss_is_flat_over_20k_steps(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(MODULE)
    (tmp_path / "s.yaml").write_text(SPEC)
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "optrun"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([*cmd, "train", "s.yaml", "-q", "--out", "run"], cwd=tmp_path, env=env)
    metrics = tmp_path / "run" / "metrics.jsonl"
    samples: dict[int, float] = {}
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        done = metrics.read_text().count("\n") * 10 if metrics.exists() else 0
        for mark in (4_000, 19_000):
            if done >= mark and mark not in samples:
                samples[mark] = rss_mb(proc.pid)
        time.sleep(0.05)
    assert proc.wait(timeout=60) == 0
    assert set(samples) == {4_000, 19_000}, samples
    growth = samples[19_000] - samples[4_000]
    print(f"\nmemory: RSS {samples[4_000]:.0f} MB at step 4,000, {samples[19_000]:.0f} MB at step 19,000")
    assert growth < MAX_GROWTH_MB, samples

"""Two optrun processes on one run directory, for real: exactly one runs, nothing mixes.

Slow (each process imports TensorFlow): ``make test-slow`` runs these; CI does too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
TRIES = 20
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SPEC = (
    "name: tiny\nmodel: {builder: model.py:build}\nloss: model.py:loss\n"
    "minimize: {method: L-BFGS-B}\ncheckpoint: {keep: 3}\n"
    "train: {max_steps: 1000000, optimizer: {name: SGD, args: {learning_rate: 0.01}}}\n"
    "data: {builder: model.py:data}\n"
)
MODEL = (
    "import tensorflow as tf\n"
    "def build():\n    return tf.Variable([3.0, -1.0], name='v')\n"
    "def loss(v, batch=None):\n    return tf.reduce_sum(tf.square(v - 1.0))\n"
    "def data():\n    return tf.data.Dataset.from_tensors(0.0).repeat()\n"
)


def optrun() -> list[str]:
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "optrun"]


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*optrun(), *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def test_two_simultaneous_starts(project: Path) -> None:
    for i in range(TRIES):
        out = f"run{i}"
        procs = [start(project, "minimize", "spec.yaml", "-q", "--out", out) for _ in range(2)]
        results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        loser = next(err for code, err in results if code == 2)
        assert "in use by pid" in loser or "already exists" in loser, loser
        run = project / out
        result = json.loads((run / "result.json").read_text())
        assert result["success"] is True
        steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(steps) == len(set(steps)), steps  # one run's metrics, no step twice


def test_force_against_a_live_run(project: Path) -> None:
    # The live run writes to a file, not a pipe: a pipe nobody reads during its minutes of
    # training fills, and a process blocked writing to it cannot finish its SIGTERM exit.
    log = (project / "live.log").open("w")
    live = subprocess.Popen(
        [*optrun(), "train", "spec.yaml", "-q", "--out", "live", "--set", "checkpoint.every_steps=50"],
        cwd=project,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (project / "live" / "config.yaml").exists():
            assert live.poll() is None and time.monotonic() < deadline, (project / "live.log").read_text()
            time.sleep(0.2)
        for _ in range(TRIES // 2):  # two at a time: 20 tries in all
            procs = [
                start(project, "train", "spec.yaml", "-q", "--out", "live", flag)
                for flag in ("--force", "--resume")
            ]
            for proc in procs:
                code = proc.wait(timeout=300)
                err = proc.stderr.read() if proc.stderr else ""
                assert code == 2 and f"in use by pid {live.pid}" in err, (code, err)
        assert live.poll() is None  # the live run went on, untouched
    finally:
        live.terminate()
        try:
            live.wait(timeout=120)
        except subprocess.TimeoutExpired:  # fail with what it said, never hang CI
            live.kill()
            live.wait(timeout=60)
            pytest.fail(
                f"the live run did not stop within 120 s of SIGTERM:\n{(project / 'live.log').read_text()}"
            )
        finally:
            log.close()
    result = json.loads((project / "live" / "result.json").read_text())
    assert result["status"] == "interrupted"
    steps = [
        json.loads(line)["step"] for line in (project / "live" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps))
    assert len(list((project / "live" / "checkpoints").glob("*.index"))) <= 3

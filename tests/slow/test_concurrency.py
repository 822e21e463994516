"""Two optrun processes on one run directory, for real: exactly one runs, nothing mixes.

Slow (each process imports TensorFlow): ``make test-slow`` runs these; CI does too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.slow
TRIES = 20
#: The longest any process of these tests may take (TensorFlow's start, a refusal, a stop).
WAIT_S = 120
#: How soon a training run must end after SIGTERM: its step, a checkpoint, result.json. Quiet,
#: it takes 0.05-0.1 s; while the run still freed its tf.data iterator on the way out, about one
#: SIGTERM in four waited 3-20 s for the iterator's autotuning thread (one CI run: over 120 s).
ENDS_WITHIN_S = 3.0
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


def finish(proc: subprocess.Popen[str], what: str) -> tuple[int, str]:
    """``proc``'s exit code and stderr, within WAIT_S; else it is killed and the test fails, saying so."""
    try:
        _, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"{what} did not end within {WAIT_S} s; it said:\n{err}")
    return proc.returncode, err


def live_run(project: Path, out: str, log: IO[str]) -> subprocess.Popen[str]:
    """An endless training run into ``out``, once it is training (its config.yaml written).

    Its output goes to a file, not a pipe: a pipe nobody reads during minutes of training fills,
    and a process blocked writing to it cannot finish its SIGTERM exit.
    """
    live = subprocess.Popen(
        [*optrun(), "train", "spec.yaml", "-q", "--out", out, "--set", "checkpoint.every_steps=50"],
        cwd=project,
        env=ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + WAIT_S
    while not (project / out / "config.yaml").exists():
        if live.poll() is not None or time.monotonic() > deadline:
            live.kill()
            live.wait()
            pytest.fail(f"the run did not start training within {WAIT_S} s:\n{Path(log.name).read_text()}")
        time.sleep(0.2)
    return live


def stop(live: subprocess.Popen[str], log: IO[str]) -> tuple[int, float]:
    """SIGTERM to ``live``: its exit code and how long it took to end (failing after WAIT_S)."""
    sent = time.monotonic()
    live.terminate()
    try:
        code = live.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:  # fail with what it said, never hang CI
        live.kill()
        live.wait()
        pytest.fail(f"the run did not end within {WAIT_S} s of SIGTERM:\n{Path(log.name).read_text()}")
    return code, time.monotonic() - sent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def test_two_simultaneous_starts(project: Path) -> None:
    for i in range(TRIES):
        out = f"run{i}"
        procs = [start(project, "minimize", "spec.yaml", "-q", "--out", out) for _ in range(2)]
        results = [finish(p, f"a start on {out}") for p in procs]
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
    with (project / "live.log").open("w") as log:
        live = live_run(project, "live", log)
        try:
            for _ in range(TRIES // 2):  # two at a time: 20 tries in all
                procs = [
                    start(project, "train", "spec.yaml", "-q", "--out", "live", flag)
                    for flag in ("--force", "--resume")
                ]
                for proc, flag in zip(procs, ("--force", "--resume"), strict=True):
                    code, err = finish(proc, f"{flag} against the live run")
                    assert code == 2 and f"in use by pid {live.pid}" in err, (code, err)
            assert live.poll() is None  # the live run went on, untouched
        finally:
            code, _ = stop(live, log)
    assert code == 143
    result = json.loads((project / "live" / "result.json").read_text())
    assert result["status"] == "interrupted"
    steps = [
        json.loads(line)["step"] for line in (project / "live" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps))
    assert len(list((project / "live" / "checkpoints").glob("*.index"))) <= 3


def test_sigterm_ends_a_training_run_at_once(project: Path) -> None:
    """Eight runs, each stopped by SIGTERM after 5-10 s of training (the longer a run, the
    longer tf.data's autotuner sleeps between rounds): each ends within ENDS_WITHIN_S."""
    rng = random.Random(0)
    for i in range(8):
        with (project / f"run{i}.log").open("w") as log:
            live = live_run(project, f"run{i}", log)
            time.sleep(rng.uniform(5, 10))
            code, took = stop(live, log)
        said = (project / f"run{i}.log").read_text()
        assert code == 143, (i, code, said)
        assert took < ENDS_WITHIN_S, f"run {i} took {took:.1f} s to end after SIGTERM:\n{said}"
        assert json.loads((project / f"run{i}" / "result.json").read_text())["status"] == "interrupted"

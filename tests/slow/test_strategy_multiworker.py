"""Two real worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy, against one process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SPEC = """\
name: mw
model: {builder: strategy_problem.py:build_model, params: {linear: true}}
data: {builder: strategy_problem.py:make_data, params: {n: 40, batch_size: 8}, global_batch_size: 8}
loss: mse
train: {max_steps: 10, optimizer: {name: SGD, args: {learning_rate: 0.1}}}
strategy: {kind: multi_worker}
checkpoint: {export: none}
logging: {tensorboard: false}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_workers_train_as_one_process(tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "strategy_problem.py", tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cluster = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    command = [sys.executable, "-m", "optrun", "train", str(spec), "--json", "-q"]
    workers = []
    for index in (0, 1):
        config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        workers.append(
            subprocess.Popen(
                [*command, "--out", str(tmp_path / f"w{index}")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    single = subprocess.run(
        [*command, "--out", str(tmp_path / "one"), "--strategy", "default"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    one = json.loads(single.stdout)
    for result in results:
        assert (result["strategy"], result["replicas"], result["steps"]) == ("multi_worker", 2, 10)
        assert result["final_loss"] == pytest.approx(one["final_loss"], rel=1e-5)  # float32 sums

"""Two real worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy, against one process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
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


def _start_workers(command: list[str], tmp_path: Path) -> tuple[list[subprocess.Popen[str]], list[Path]]:
    """Two workers on free ports of 127.0.0.1, each with its TF_CONFIG and its own TMPDIR."""
    cluster = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    workers, scratch = [], []
    for index in (0, 1):
        config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        scratch.append(tmp_path / f"tmp{index}")
        scratch[-1].mkdir(parents=True)
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(config),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TMPDIR": str(scratch[-1]),
        }
        workers.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    return workers, scratch


def _workers_and_one(command: list[str], tmp_path: Path) -> tuple[list[dict], dict, list[Path]]:
    """Both workers' results (each must succeed), one process's on the same spec, and the
    workers' TMPDIRs. ``command`` ends with ``--out RUN``; the one process writes tmp_path/one."""
    workers, scratch = _start_workers(command, tmp_path)
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    single = subprocess.run(
        [*command[:-1], str(tmp_path / "one"), "--strategy", "default"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    return results, json.loads(single.stdout), scratch


def _checkpoint_values(run: Path) -> dict[str, np.ndarray]:
    """Every value in a run's latest checkpoint: the weights, the optimizer's state and the step."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    return {
        key: reader.get_tensor(key)
        for key in reader.get_variable_to_shape_map()
        if key.endswith("VARIABLE_VALUE") and not key.startswith("save_counter")
    }


def test_two_workers_train_as_one_process(tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "strategy_problem.py", tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    # The same command and --out on every worker: the chief writes it, the other a temporary directory.
    command = [sys.executable, "-m", "optrun", "train", str(spec), "--json", "-q", "--out", str(run)]
    results, one, scratch = _workers_and_one(command, tmp_path)
    for index, result in enumerate(results):
        assert (result["strategy"], result["replicas"], result["steps"]) == ("multi_worker", 2, 10)
        assert (result["task"], result["chief"]) == (f"worker:{index}", index == 0)
        assert result["final_loss"] == pytest.approx(one["final_loss"], rel=1e-5)  # float32 sums
    assert results[1]["run_dir"] == str(run)
    # Worker 1 saved alongside the chief, to a temporary directory that is gone; nothing else was left.
    assert [p.name for p in scratch[1].iterdir() if p.name.startswith("optrun-")] == []
    left = {p.name for p in tmp_path.iterdir()} - {"__pycache__"}
    assert left == {"one", "run", "spec.yaml", "strategy_problem.py", "tmp0", "tmp1"}
    assert json.loads((run / "result.json").read_text())["chief"] is True
    chief, alone = _checkpoint_values(run), _checkpoint_values(tmp_path / "one")
    assert sorted(chief) == sorted(alone) and len(chief) >= 4
    for key, value in alone.items():
        np.testing.assert_allclose(chief[key], value, rtol=1e-5, atol=1e-7, err_msg=key)


MINIMIZE_SPEC = """\
name: mwmin
model: {builder: m.py:build}
data: {builder: m.py:data, params: {batch: 50}, global_batch_size: 50}
loss: m.py:loss
strategy: {kind: multi_worker}
minimize: {data: {reduction: sum}}
checkpoint: {export: none}
logging: {every_steps: 1, tensorboard: false}
"""


def _y_norm2() -> float:
    """The loss at the start point w = 0, by numpy: |y|^2."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(203, 4))
    y = x @ np.array([1.0, -2.0, 3.0, 0.5]) + 0.1 * rng.normal(size=203)
    return float(y @ y)


def _optimum(constrained: bool) -> np.ndarray:
    """By numpy: least squares, or with sum(Xw - y) = 0 (its KKT system)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(203, 4))
    y = x @ np.array([1.0, -2.0, 3.0, 0.5]) + 0.1 * rng.normal(size=203)
    if not constrained:
        return np.linalg.lstsq(x, y, rcond=None)[0]
    ones = np.ones(203)
    a = np.block([[2 * x.T @ x, (x.T @ ones)[:, None]], [(ones @ x)[None, :], np.zeros((1, 1))]])
    return np.linalg.solve(a, np.concatenate([2 * x.T @ y, [ones @ y]]))[:4]


@pytest.mark.parametrize("constrained", [False, True], ids=["lbfgsb", "slsqp-summed-constraint"])
def test_two_workers_minimize_as_one_process(tmp_path: Path, constrained: bool) -> None:
    """scipy on the chief, each evaluation on both workers: the result of one process."""
    shutil.copy(SCRIPTS / "least_squares.py", tmp_path / "m.py")
    spec = tmp_path / "spec.yaml"
    text = MINIMIZE_SPEC
    if constrained:  # an equality summed over the batches like the loss: SLSQP
        text = text.replace("{reduction: sum}", "{reduction: sum, equalities: [m.py:residual_sum]}")
    spec.write_text(text)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "optrun", "minimize", str(spec), "--json", "-q", "--out", str(run)]
    results, one, scratch = _workers_and_one(command, tmp_path)
    chief, other = results
    assert (chief["strategy"], chief["replicas"], chief["task"], chief["chief"]) == (
        "multi_worker",
        2,
        "worker:0",
        True,
    )
    assert chief["nfev"] == one["nfev"] and chief["nit"] == one["nit"]
    np.testing.assert_allclose(chief["solution"]["w"], one["solution"]["w"], rtol=0, atol=1e-6)
    assert chief["method"] == ("SLSQP" if constrained else "L-BFGS-B")
    np.testing.assert_allclose(chief["solution"]["w"], _optimum(constrained), atol=1e-5)
    if constrained:
        assert abs(chief["constraint_residuals"]["equalities"][0]) < 1e-6
    # The other worker evaluated at every point the chief did (its first is the start point),
    # ended where the chief did, and kept nothing.
    assert (other["task"], other["chief"], other["status"], other["run_dir"]) == (
        "worker:1",
        False,
        "followed",
        str(run),
    )
    assert other["evaluations"] >= chief["nfev"]
    # At every iteration, not only at the end: the chief's loss curve is the one process's.
    curves = [
        [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        for folder in (run, tmp_path / "one")
    ]
    assert [r["step"] for r in curves[0]] == [r["step"] for r in curves[1]]
    for mine, alone in zip(*curves, strict=True):
        assert mine["loss"] == pytest.approx(alone["loss"], rel=1e-9)
    assert curves[0][0]["step"] == 0 and curves[0][0]["loss"] == pytest.approx(_y_norm2(), rel=1e-12)
    np.testing.assert_allclose(other["solution"]["w"], chief["solution"]["w"], rtol=0, atol=1e-12)
    assert [p.name for p in scratch[1].iterdir() if p.name.startswith("optrun-")] == []
    assert not (tmp_path / "tmp1" / "run").exists() and (run / "checkpoints").is_dir()


LONG_SPEC = (
    SPEC.replace("max_steps: 10", "max_steps: 100000")
    .replace("strategy: {kind: multi_worker}", "strategy: {kind: multi_worker, heartbeat_timeout_s: 5}")
    .replace("checkpoint: {export: none}", "checkpoint: {export: none, every_steps: 20}")
)
#: What the tests allow a survivor: TF's heartbeat (5 s here) and the process's exit, with room.
FAILS_WITHIN_S = 60


def _kill_one(command: list[str], tmp_path: Path, killed: int, ready: Callable[[], bool]) -> None:
    """Starts two workers, SIGKILLs worker ``killed`` once ``ready()`` (a checkpoint, some
    iterations): the other must fail with the peer message within FAILS_WITHIN_S."""
    import signal
    import time

    workers, _ = _start_workers(command, tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not ready():
            assert time.monotonic() < deadline, "not ready within 180 s"
            assert all(w.poll() is None for w in workers), workers[0].communicate()[1][-2000:]
            time.sleep(0.2)
        time.sleep(0.5)  # mid-run, not at the very moment the sign appeared
        workers[killed].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = workers[1 - killed]
        _, err = survivor.communicate(timeout=FAILS_WITHIN_S + 60)
        waited = time.monotonic() - killed_at
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert survivor.returncode == 1, err[-2000:]
    assert waited < FAILS_WITHIN_S, f"the survivor took {waited:.0f} s to fail"
    assert "another worker of the cluster died or stopped answering" in err, err[-2000:]
    assert "Traceback" not in err


@pytest.mark.parametrize("killed", [1, 0], ids=["kill-worker-1", "kill-the-chief"])
def test_a_killed_worker_fails_the_other_promptly_and_the_checkpoint_stays_loadable(
    tmp_path: Path, killed: int
) -> None:

    shutil.copy(SCRIPTS / "strategy_problem.py", tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(LONG_SPEC)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "optrun", "train", str(spec), "--json", "-q", "--out", str(run)]
    _kill_one(command, tmp_path, killed, lambda: (run / "checkpoints" / "checkpoint").is_file())
    # The chief's last checkpoint loads, and a one-process --resume goes on from it.
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert latest is not None
    saved = int(tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert saved >= 20 and saved % 20 == 0
    if killed == 1:  # the chief survived: its result.json says why it stopped
        result = json.loads((run / "result.json").read_text())
        assert result["status"] == "error" and "died or stopped answering" in result["error"]
    go_on = [*command, "--resume", "--set", f"train.max_steps={saved + 5}"]
    if killed == 0:  # on one process
        resumed = subprocess.run(
            [*go_on, "--strategy", "default"], capture_output=True, text=True, timeout=240, check=False
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert json.loads(resumed.stdout)["steps"] == saved + 5
        return
    # On both workers again: each restores the chief's checkpoint (worker 1 from the chief's --out).
    again, _ = _start_workers(go_on, tmp_path / "again")
    for worker in again:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-2000:]
        assert json.loads(out)["steps"] == saved + 5


def test_a_worker_that_never_comes_ends_the_start_with_a_message(tmp_path: Path) -> None:
    """Only worker 0 of two is started: it fails within its startup timeout and writes nothing."""
    import time

    shutil.copy(SCRIPTS / "strategy_problem.py", tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("{kind: multi_worker}", "{kind: multi_worker, startup_timeout_s: 5}"))
    run = tmp_path / "run"
    config = {
        "cluster": {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]},
        "task": {"type": "worker", "index": 0},
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "optrun", "train", str(spec), "--out", str(run)],
        capture_output=True,
        text=True,
        timeout=FAILS_WITHIN_S + 60,
        env={**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
    )
    assert time.monotonic() - started < FAILS_WITHIN_S
    assert done.returncode != 0
    assert "not every worker of TF_CONFIG's cluster (2 tasks) joined within" in done.stderr
    assert "strategy.startup_timeout_s (5 s)" in done.stderr.replace("\n", " ") or "(5 s)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not run.exists()


@pytest.mark.parametrize("killed", [1, 0], ids=["kill-worker-1", "kill-the-chief"])
def test_a_killed_worker_fails_a_multi_worker_minimize_promptly(tmp_path: Path, killed: int) -> None:
    """The sample full-batch PINN on two workers, made long (no tolerance stop); one is killed
    after a few iterations: the other fails within the bound, and the chief's checkpoint loads."""

    configs = Path(__file__).resolve().parents[2] / "configs"
    run = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "optrun", "minimize", str(configs / "pinn_ode_mirrored.yaml"), "-q"),
        *("--strategy", "multi_worker", "--set", "strategy.heartbeat_timeout_s=5"),
        *("--set", "minimize.tol=1e-30", "--set", "minimize.options.maxiter=100000"),
        *("--set", "logging.every_steps=1", "--set", "logging.tensorboard=false", "--out", str(run)),
    ]
    metrics = run / "metrics.jsonl"
    _kill_one(
        command, tmp_path, killed, lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 4
    )
    if killed == 1:  # the chief kept its last accepted point and says why it stopped
        import tensorflow as tf

        result = json.loads((run / "result.json").read_text())
        assert result["status"] == "error" and "died or stopped answering" in result["error"]
        latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
        assert latest is not None and int(latest.rsplit("-", 1)[-1]) >= 3
        assert tf.train.load_checkpoint(latest).get_variable_to_shape_map()


@pytest.mark.parametrize("signalled", [[0, 1], [0], [1]], ids=["both", "the-chief", "worker-1"])
def test_sigterm_ends_every_worker_within_the_heartbeat(tmp_path: Path, signalled: list[int]) -> None:
    """SIGTERM (or Ctrl-C) to every worker, or to one only, mid-run: every process ends within
    heartbeat_timeout_s (5 s here) and its exit, never waiting in a collective for a peer that left."""
    import signal
    import time

    shutil.copy(SCRIPTS / "strategy_problem.py", tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(LONG_SPEC)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "optrun", "train", str(spec), "--json", "-q", "--out", str(run)]
    workers, _ = _start_workers(command, tmp_path)
    ended: dict[int, tuple[int, float, str]] = {}
    try:
        deadline = time.monotonic() + 180
        while not (run / "checkpoints" / "checkpoint").is_file():
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            assert all(w.poll() is None for w in workers), workers[0].communicate()[1][-2000:]
            time.sleep(0.2)
        time.sleep(0.5)
        for index in signalled:
            workers[index].send_signal(signal.SIGTERM)
        sent = time.monotonic()
        for index, worker in enumerate(workers):
            _, err = worker.communicate(timeout=FAILS_WITHIN_S + 60)
            ended[index] = (worker.returncode, time.monotonic() - sent, err)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for index, (code, waited, err) in ended.items():
        assert waited < FAILS_WITHIN_S, f"worker {index} took {waited:.0f} s to end"
        assert "Traceback" not in err
        # A signalled worker is interrupted (143); one that was not fails with the peer message.
        assert code == (143 if index in signalled else 1), (index, code, err[-2000:])
    assert json.loads((run / "result.json").read_text())["status"] == (
        "interrupted" if 0 in signalled else "error"
    )
    assert tf_checkpoint_loads(run)


def tf_checkpoint_loads(run: Path) -> bool:
    """Whether the run's latest checkpoint reads back (a save cut short would not)."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    return latest is not None and bool(tf.train.load_checkpoint(latest).get_variable_to_shape_map())

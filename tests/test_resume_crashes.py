"""What a crash leaves for ``--resume``: a killed resumed session leaves no stale result.json, a
resume that only writes the end reports the loss its last step logged, TensorBoard's files are cut
back with metrics.jsonl, and a full disk says what is safe and leaves no half-written file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from tests.test_cli_process import ENV, optrun
from tests.test_resume_edges import cli, spec_in_tmp, steps  # noqa: F401 - spec_in_tmp: the `spec` fixture

KILLED_AT_STEP = """
import os, signal
import numpy as np
import tensorflow as tf

calls = [0]

def _count():
    calls[0] += 1
    if calls[0] == int(os.environ.get("KILL_AT_CALL", "0")):
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would: no handler runs
    return np.float32(0.0)

def build():
    return tf.Variable([3.0, -1.0], name='w')

def loss(w, batch=None):
    return tf.reduce_sum(tf.square(w - 1.0)) + 0.0 * tf.reshape(tf.py_function(_count, [], tf.float32), [])

def data():
    return tf.data.Dataset.from_tensors(np.float32(0.0)).repeat()
"""


def _run(tmp_path: Path, *args: str, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*optrun(), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**ENV, "KILL_AT_CALL": str(kill_at)},
        check=False,
    )


def test_a_killed_resumed_session_leaves_the_run_incomplete_not_its_old_result(tmp_path: Path) -> None:
    (tmp_path / "k.py").write_text(KILLED_AT_STEP)
    (tmp_path / "s.yaml").write_text(
        "name: k\nmodel: {builder: k.py:build}\nloss: k.py:loss\ndata: {builder: k.py:data}\n"
        "train: {max_steps: 20, optimizer: {name: SGD, args: {learning_rate: 0.01}}}\n"
        "checkpoint: {every_steps: 5, keep: 20, export: none}\nlogging: {every_steps: 1}\n"
    )
    assert _run(tmp_path, "train", "s.yaml", "-q", "--out", "run").returncode == 0
    # Resumed with a larger budget and killed at step 28 (one call per step): checkpoint 25 is
    # the newest, and the first session's result.json (completed at 20) is no longer the run's.
    more = ("--resume", "--set", "train.max_steps=40")
    killed = _run(tmp_path, "train", "s.yaml", "-q", "--out", "run", *more, kill_at=8)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "result.json").exists()
    listed = json.loads(_run(tmp_path, "runs", "run", "--json").stdout)
    assert listed[0]["status"] == "incomplete", listed
    old = _run(tmp_path, "train", "s.yaml", "-q", "--out", "run", "--resume")
    said = " ".join(old.stderr.split())
    assert old.returncode == 2 and "stopped at step 25, which uses up its budget of 20" in said, said
    new = _run(tmp_path, "train", "s.yaml", "-q", "--out", "run", *more)
    assert new.returncode == 0, new.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (result["status"], result["steps"]) == ("completed", 40)
    assert steps(tmp_path / "run") == list(range(1, 41))


def test_a_resume_that_only_writes_the_end_reports_the_last_logged_loss(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0
    run = Path("run")
    logged = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    (run / "result.json").unlink()  # as a kill after the last step's checkpoint leaves it
    assert cli("train", str(spec), "-q", "--out", "run", "--resume").exit_code == 0
    result = json.loads((run / "result.json").read_text())
    assert (result["status"], result["steps"], result["final_loss"]) == ("completed", 20, logged["loss"])


def _losses(folder: Path) -> list[tuple[int, float]]:
    found = []
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                if value.tag == "loss":
                    found.append((event.step, float(tf.make_ndarray(value.tensor))))
    return sorted(found)


def test_tensorboard_is_cut_back_with_the_metrics_on_resume(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run", "--set", "logging.tensorboard=true").exit_code == 0
    run = Path("run")
    # As a kill after step 25 of a longer run would leave them: steps past the checkpoint (20).
    writer = tf.summary.create_file_writer(str(run / "tensorboard"))
    with writer.as_default():
        for step in range(21, 26):
            tf.summary.scalar("loss", 99.0, step=step)
    writer.close()
    (run / "tensorboard" / ".events.out.tfevents.1.host.tmp").write_bytes(b"a copy a kill cut short")
    more = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert more.exit_code == 0, more.output
    losses = _losses(run / "tensorboard")
    assert [s for s, _ in losses] == list(range(1, 31))  # each step once
    assert not list((run / "tensorboard").rglob("*.tmp"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    lines = {r["step"]: r["loss"] for r in records}
    np.testing.assert_allclose([v for _, v in losses], [lines[s] for s in range(1, 31)], rtol=1e-6)


def test_a_full_disk_mid_run_says_which_checkpoint_is_whole(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saving = tf.train.CheckpointManager.save

    def fills_up(self: Any, checkpoint_number: Any = None, **kwargs: Any) -> Any:
        if checkpoint_number == 20:
            raise OSError(28, "No space left on device")
        return saving(self, checkpoint_number=checkpoint_number, **kwargs)

    replacing = os.replace

    def refused(src: Any, dst: Any) -> None:  # result.json cannot land either
        if Path(dst).name == "result.json":
            raise OSError(28, "No space left on device")
        replacing(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(tf.train.CheckpointManager, "save", fills_up)
        patch.setattr(os, "replace", refused)
        out = cli("train", str(spec), "-q", "--out", "run", "--set", "train.max_steps=30")
    said = " ".join(out.output.split())
    assert out.exit_code == 1, said
    assert "No space left on device" in said
    assert "The last whole checkpoint is ckpt-10: --resume goes on from there" in said
    assert "(result.json could not be written)" in said
    assert not list(Path("run").glob(".*.tmp")) and not (Path("run") / "result.json").exists()
    again = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert again.exit_code == 0, again.output
    assert steps(Path("run")) == list(range(1, 31))


def test_a_lock_file_the_disk_refuses_leaves_no_folder(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("optrun.runner.rundir.os.write", refused)
    out = cli("train", str(spec), "-q", "--out", "run")
    assert out.exit_code == 2 and "cannot write its lock file: No space left on device" in out.output
    assert not Path("run").exists()


def test_a_run_killed_before_its_first_periodic_checkpoint_says_so(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run", "--set", "checkpoint.every_steps=100").exit_code == 0
    for path in (Path("run") / "checkpoints").iterdir():  # as a kill before step 100 leaves it
        path.unlink()
    (Path("run") / "result.json").unlink()
    out = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "checkpoint.every_steps=100")
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "stopped before its first, due every 100 steps" in said, said
    assert "set checkpoint.every_steps" not in said


def test_a_minimize_killed_before_its_first_checkpoint_counts_iterations(spec: Path) -> None:
    every = ("--set", "checkpoint.every_steps=100")
    assert cli("minimize", str(spec), "-q", "--out", "run", *every).exit_code == 0
    for path in (Path("run") / "checkpoints").iterdir():  # as a kill before iteration 100 leaves it
        path.unlink()
    (Path("run") / "result.json").unlink()
    out = cli("minimize", str(spec), "-q", "--out", "run", "--resume", *every)
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "stopped before its first, due every 100 iterations" in said, said

"""Timed checkpoints (``checkpoint.every_seconds``, 600 by default): a run checkpoints as it goes
without ``every_steps``, so one killed outright resumes from its last checkpoint."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from optrun.runner.save_clock import SaveClock
from optrun.spec.experiment import CheckpointSpec
from tests.test_resume_crashes import KILLED_AT_STEP, _run
from tests.test_resume_edges import cli, spec_in_tmp  # noqa: F401 - spec_in_tmp: the `spec` fixture


def _numbers(run: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1].split(".")[0]) for p in (run / "checkpoints").glob("ckpt-*.index"))


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_is_due_by_steps_or_by_time_since_the_last_save(monkeypatch: pytest.MonkeyPatch) -> None:
    now = _Clock()
    monkeypatch.setattr("optrun.runner.save_clock.time.monotonic", now)
    clock = SaveClock(every_steps=4, every_seconds=10.0)
    assert [s for s in range(1, 10) if clock.due(s)] == [4, 8]
    now.now = 109.9
    assert not clock.due(1)
    now.now = 110.0
    assert clock.due(1)
    clock.saved()  # the wait starts again at 110
    now.now = 119.0
    assert not clock.due(5) and clock.due(8)
    now.now = 120.0
    assert clock.due(5)


def test_a_multi_worker_clock_goes_by_steps_only(monkeypatch: pytest.MonkeyPatch) -> None:
    now = _Clock()
    monkeypatch.setattr("optrun.runner.save_clock.time.monotonic", now)
    clock = SaveClock(every_steps=None, every_seconds=1.0, timed=False)
    now.now = 1e6
    assert not any(clock.due(s) for s in range(1, 100))


def test_the_default_policy_checkpoints_every_ten_minutes_unless_steps_are_given() -> None:
    assert CheckpointSpec().seconds == 600.0
    assert CheckpointSpec(every_steps=50).seconds is None  # a spec's own step policy stands alone
    assert CheckpointSpec(every_steps=50, every_seconds=30).seconds == 30.0
    assert CheckpointSpec(every_seconds=None).seconds is None


@pytest.mark.parametrize(("every_steps", "saved"), [("null", list(range(1, 21))), ("7", [7, 14, 20])])
def test_auto_times_checkpoints_only_without_every_steps(
    spec: Path, monkeypatch: pytest.MonkeyPatch, every_steps: str, saved: list[int]
) -> None:
    monkeypatch.setattr("optrun.spec.experiment.AUTO_SECONDS", 1e-6)  # due at every step
    steps = ("--set", f"checkpoint.every_steps={every_steps}", "--set", "checkpoint.keep=30")
    assert cli("train", str(spec), "-q", "--out", "run", *steps).exit_code == 0
    assert _numbers(Path("run")) == saved


@pytest.mark.parametrize("value", ["0", "-1", "true", ".nan", ".inf", "abc"])
def test_a_bad_interval_is_refused_before_anything_is_written(spec: Path, value: str) -> None:
    out = cli("train", str(spec), "-q", "--out", "run", "--set", f"checkpoint.every_seconds={value}")
    assert out.exit_code == 2 and "checkpoint.every_seconds" in out.output, out.output
    assert not Path("run").exists()


def test_a_train_run_checkpoints_by_time_between_steps(spec: Path) -> None:
    timed = ("--set", "checkpoint.every_steps=null", "--set", "checkpoint.every_seconds=1e-6")
    out = cli("train", str(spec), "-q", "--out", "run", *timed, "--set", "checkpoint.keep=30")
    assert out.exit_code == 0, out.output
    assert _numbers(Path("run")) == list(range(1, 21))  # each step outlasts a microsecond


def test_a_minimize_run_checkpoints_by_time_between_iterations(spec: Path) -> None:
    timed = ("--set", "checkpoint.every_steps=null", "--set", "checkpoint.every_seconds=1e-6")
    out = cli("minimize", str(spec), "-q", "--out", "run", *timed, "--set", "checkpoint.keep=30")
    assert out.exit_code == 0, out.output
    iterations = json.loads((Path("run") / "result.json").read_text())["nit"]
    assert iterations >= 2 and _numbers(Path("run")) == list(range(1, iterations + 1))


def test_a_run_killed_outright_resumes_from_its_last_timed_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "k.py").write_text(KILLED_AT_STEP)
    (tmp_path / "s.yaml").write_text(
        "name: k\nmodel: {builder: k.py:build}\nloss: k.py:loss\ndata: {builder: k.py:data}\n"
        "train: {max_steps: 20, optimizer: {name: SGD, args: {learning_rate: 0.01}}}\n"
        "checkpoint: {every_seconds: 1.0e-6, keep: 30, export: none}\nlogging: {every_steps: 1}\n"
    )
    # One loss call per step: killed inside step 9, as the OOM killer would.
    killed = _run(tmp_path, "train", "s.yaml", "-q", "--out", "run", kill_at=9)
    assert killed.returncode == -signal.SIGKILL
    assert _numbers(tmp_path / "run") == list(range(1, 9))
    again = _run(tmp_path, "train", "s.yaml", "-q", "--out", "run", "--resume")
    assert again.returncode == 0, again.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (result["status"], result["steps"]) == ("completed", 20)
    # w goes as w - 0.01 * 2 (w - 1) per step from (3, -1): after 20 steps, 1 + (0.98 ** 20) (2, -2).
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 21))
    assert lines[-1]["loss"] == pytest.approx(8 * 0.98**38, rel=1e-5)


def test_a_run_with_the_default_policy_killed_early_says_when_its_first_was_due(spec: Path) -> None:
    assert (
        cli("train", str(spec), "-q", "--out", "run", "--set", "checkpoint.every_steps=null").exit_code == 0
    )
    for path in (Path("run") / "checkpoints").iterdir():  # as a kill in the first ten minutes leaves it
        path.unlink()
    (Path("run") / "result.json").unlink()
    out = cli("train", str(spec), "-q", "--out", "run", "--resume")
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "stopped before its first, due after 600 s" in said, said

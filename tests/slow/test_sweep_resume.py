"""A sweep stopped by a real signal, then ``--resume``: no trial lost, none run twice, the interrupted
trial continued in place from its checkpoint and ending where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.sweep_support import result_of, run, start, study_trials, trial_dirs, write_spec

pytest.importorskip("optuna")
pytestmark = pytest.mark.slow

STEPS = 1500


def _wait_for_metrics(path: Path, proc: subprocess.Popen[str], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().count("\n") >= 3:
            return
        assert proc.poll() is None, "the sweep ended before its second trial ran"
        time.sleep(0.05)
    pytest.fail(f"{path} never showed a logged step")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_then_resume_loses_and_repeats_nothing(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    spec = write_spec(tmp_path, max_steps=STEPS)
    args = (
        "sweep", str(spec), "--trials", "3", "--sampler", "random", "--pruner", "none", "--out", "sweep",
        "--param", "train.optimizer.args.learning_rate=log:1e-3..1e-1",
    )  # fmt: skip
    proc = start(*args, cwd=tmp_path)
    _wait_for_metrics(tmp_path / "sweep" / "trial-0001" / "metrics.jsonl", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "trial-0001" in err and "--resume" in err

    stopped = {t.number: t for t in study_trials(tmp_path / "sweep" / "study.journal")}
    assert sorted(stopped) == [0, 1]
    assert stopped[0].state.name == "COMPLETE"
    assert stopped[1].state.name == "RUNNING" and stopped[1].user_attrs["interrupted"]  # marked, not dropped
    cut = result_of(tmp_path / "sweep" / "trial-0001")
    assert cut["status"] == "interrupted" and 0 < cut["steps"] < STEPS
    listed = json.loads(run("runs", "sweep", "--json", cwd=tmp_path).stdout)
    assert {t["number"]: t["state"] for t in listed} == {0: "complete", 1: "interrupted"}

    resumed = run(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    trials = {t.number: t for t in study_trials(tmp_path / "sweep" / "study.journal")}
    assert sorted(trials) == [0, 1, 2] and all(t.state.name == "COMPLETE" for t in trials.values())
    assert trials[1].params == stopped[1].params and trials[1].user_attrs["resumed"] == 1
    assert trial_dirs(tmp_path / "sweep") == ["trial-0000", "trial-0001", "trial-0002"]
    lines = (tmp_path / "sweep" / "trial-0001" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(
        range(5, STEPS + 1, 5)
    )  # none twice or missing
    done = result_of(tmp_path / "sweep" / "trial-0001")
    assert (done["status"], done["steps"]) == ("completed", STEPS)

    rate = trials[1].params["train.optimizer.args.learning_rate"]
    ref = run(
        "train",
        str(spec),
        "--set",
        f"train.optimizer.args.learning_rate={rate!r}",
        "--out",
        "ref",
        "-q",
        cwd=tmp_path,
    )
    assert ref.returncode == 0, ref.stderr
    assert done["final_loss"] == result_of(tmp_path / "ref")["final_loss"] == trials[1].value

"""Progress in each kind's own words, and third-party warnings captured instead of printed raw.

Real runs of the built-in defaults (the constrained example, whose trust-constr
run makes scipy warn ``delta_grad == 0.0``) through the CLI in-process, and one
in a subprocess, where Python's default warning filters would print it raw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from optrun_cli.main import app

runner = CliRunner()
ITERATION = re.compile(
    r"^minimize iteration (\d+)(?:/(\d+))?  nfev (\d+)(?:/\d+)?  loss (\S+)  violation (\S+)  "
    r"elapsed [\dhms.]+$",
    re.M,
)
RAW = re.compile(r"\.py:\d+: \w*Warning")  # what warnings.showwarning prints: file.py:737: UserWarning
DELTA_GRAD = "delta_grad == 0.0"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def read(out: Path, name: str = "result.json") -> Any:
    text = (out / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def flat(text: str) -> str:
    return " ".join(text.split())


def test_trust_constr_warning_shown_once_with_its_count_and_recorded(in_tmp: Path) -> None:
    result = invoke("minimize", "--method", "trust-constr", "--out", str(in_tmp / "r"), "--force")
    assert result.exit_code == 0, result.output
    everything = result.stdout + result.stderr
    assert everything.count(DELTA_GRAD) == 1, everything
    shown = re.search(r"UserWarning \((\d+) times\): delta_grad == 0\.0\.", everything)
    assert shown is not None, everything
    assert not RAW.search(everything) and "warnings.warn" not in everything
    outcome = read(in_tmp / "r")
    [entry] = [w for w in outcome["warnings"] if DELTA_GRAD in w]
    assert entry.startswith(f"UserWarning ({shown.group(1)} times): {DELTA_GRAD}")
    log = read(in_tmp / "r", "warnings.log")
    assert log.count(DELTA_GRAD) == 1
    assert f"UserWarning ({shown.group(1)} times) at scipy/optimize/" in log


def test_quiet_prints_nothing_but_still_records_the_warnings(in_tmp: Path) -> None:
    result = invoke("minimize", "--method", "trust-constr", "--out", str(in_tmp / "r"), "-q")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert any(DELTA_GRAD in w for w in read(in_tmp / "r")["warnings"])
    assert DELTA_GRAD in read(in_tmp / "r", "warnings.log")


def test_no_warnings_no_log_and_no_key(in_tmp: Path) -> None:
    assert invoke("minimize", "--method", "SLSQP", "--out", "s", "-q").exit_code == 0
    assert "warnings" not in read(in_tmp / "s") and not (in_tmp / "s" / "warnings.log").exists()


def test_minimize_lines_speak_scipy_and_end_on_result_json(in_tmp: Path) -> None:
    result = invoke("minimize", "--method", "trust-constr", "--out", "r")
    assert result.exit_code == 0, result.output
    lines = ITERATION.findall(result.stdout)
    assert lines, result.stdout
    outcome = read(in_tmp / "r")
    maxiter = yaml.safe_load(read(in_tmp / "r", "config.yaml"))["minimize"]["options"]["maxiter"]
    iterations = [int(line[0]) for line in lines]
    assert iterations == sorted(iterations) and iterations[0] == 1
    assert all(int(line[1]) == maxiter for line in lines)
    nfevs = [int(line[2]) for line in lines]
    assert nfevs == sorted(nfevs)
    assert (iterations[-1], nfevs[-1]) == (outcome["nit"], outcome["nfev"])
    assert float(lines[-1][3]) == pytest.approx(outcome["fun"], rel=1e-5)
    assert float(lines[-1][4]) == pytest.approx(outcome["constraint_residuals"]["violation"], abs=1e-3)
    assert lines[0][4] != "0"  # the start point violates both constraints
    # scipy converged before maxiter, and the last line says so, with its message.
    assert outcome["success"] and outcome["nit"] < maxiter
    assert (
        f"minimize stopped at iteration {outcome['nit']} of {maxiter}: converged "
        f"(scipy: {outcome['message']})" in flat(result.stdout)
    )
    assert "steps/s" not in result.stdout and "starting, 100 steps" not in result.stdout
    assert result.stdout.index("stopped at iteration") < result.stdout.index("optrun minimize:")


def test_the_iteration_limit_and_a_sparse_log_interval(in_tmp: Path) -> None:
    """Not converged at --maxiter 3: said so (a budget reached, exit 0). Logging every 5th iteration:
    the last line still comes."""
    short = invoke("minimize", "--method", "trust-constr", "--maxiter", "3", "--out", "short")
    assert short.exit_code == 0 and read(in_tmp / "short")["status"] == "budget_reached"
    outcome = read(in_tmp / "short")
    last = ITERATION.findall(short.stdout)[-1]
    assert (int(last[0]), last[1], int(last[2])) == (outcome["nit"], "3", outcome["nfev"]) == (3, "3", 3)
    assert f"stopped at iteration 3 of 3: budget_reached (scipy: {outcome['message']})" in flat(short.stdout)
    sparse = invoke(
        "minimize", "--method", "trust-constr", "--out", "sparse", "--set", "logging.every_steps=5"
    )
    outcome = read(in_tmp / "sparse")
    lines = ITERATION.findall(sparse.stdout)
    assert [int(line[0]) for line in lines] == [5, 10, outcome["nit"]]
    assert int(lines[-1][2]) == outcome["nfev"]


def test_evaluation_limits_without_an_iteration_total(in_tmp: Path) -> None:
    """COBYLA's maxiter counts evaluations: shown against nfev, and no iteration total."""
    result = invoke("minimize", "--method", "COBYLA", "--maxiter", "20", "--out", "c")
    assert result.exit_code in (0, 1), result.output
    assert "minimize: starting\n" in result.stdout
    assert re.search(r"^minimize iteration 1  nfev \d+/20  ", result.stdout, re.M), result.stdout
    assert read(in_tmp / "c")["nfev"] <= 20


def test_train_keeps_steps_and_adds_epochs(in_tmp: Path) -> None:
    # 512 samples in batches of 32: 16 steps an epoch, so 40 steps make 3 passes.
    args = ("train", "--out", "t", "--set", "train.max_steps=40", "--set", "logging.every_steps=20")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "train: starting, 40 steps" in result.stdout
    lines = re.findall(
        r"^train step (\d+)/40  epoch (\d+)/3  loss \S+  [\d.]+ steps/s  elapsed [\dhms.]+$",
        result.stdout,
        re.M,
    )
    assert lines == [("20", "2"), ("40", "3")], result.stdout
    assert "optrun train:" in result.stdout and "iteration" not in result.stdout


class StepOnly:
    """A reporter written against the first protocol: start, step, note."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, float, bool]] = []

    def start(self, kind: str, total: int | None, first_step: int) -> None:
        self.kind, self.total = kind, total

    def step(self, step: int, loss: float, logged: bool) -> None:
        self.steps.append((step, loss, logged))

    def note(self, message: str) -> None:
        raise AssertionError(message)


def test_a_step_only_reporter_still_works(in_tmp: Path) -> None:
    from optrun.runner import RunOptions, run_minimize
    from optrun.spec.load import load_spec

    reporter = StepOnly()
    loaded = load_spec(None, ["minimize.method=trust-constr"], default="minimize")
    outcome = run_minimize(loaded, RunOptions(out=in_tmp / "r", reporter=reporter))
    assert (reporter.kind, reporter.total) == ("minimize", 100)
    assert [s[0] for s in reporter.steps] == list(range(1, len(reporter.steps) + 1))
    assert reporter.steps[-1][0] == outcome.result["nit"]
    assert any(DELTA_GRAD in w for w in outcome.result["warnings"])


def test_user_warnings_counted_and_deprecations_left_out(in_tmp: Path) -> None:
    (in_tmp / "noisy.py").write_text(
        "import warnings\nimport tensorflow as tf\n"
        "def var():\n    return tf.Variable([3.0, -2.0], dtype=tf.float64)\n"
        "def loss(v):\n"
        "    warnings.warn('the loss was traced', UserWarning)\n"
        "    warnings.warn('an old API', DeprecationWarning)\n"
        "    return tf.reduce_sum(tf.square(v))\n"
    )
    (in_tmp / "noisy.yaml").write_text(
        "name: noisy\nmodel: {builder: noisy.py:var}\nloss: noisy.py:loss\nminimize: {method: L-BFGS-B}\n"
    )
    result = invoke("minimize", "noisy.yaml", "--out", "n")
    assert result.exit_code == 0, result.output
    everything = result.stdout + result.stderr
    assert everything.count("the loss was traced") == 1 and not RAW.search(everything)
    [entry] = read(in_tmp / "n")["warnings"]
    assert re.fullmatch(r"UserWarning \((once|\d+ times)\): the loss was traced", entry)
    assert "an old API" not in read(in_tmp / "n", "warnings.log")


def test_subprocess_stderr_has_no_raw_warning(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "optrun", "minimize", "--method", "trust-constr", "--out", "r"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert DELTA_GRAD not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert proc.stdout.count(DELTA_GRAD) == 1 and not RAW.search(proc.stdout)
    outcome = json.loads((tmp_path / "r" / "result.json").read_text())
    last = ITERATION.findall(proc.stdout)[-1]
    assert (int(last[0]), int(last[2])) == (outcome["nit"], outcome["nfev"])

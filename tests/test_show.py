"""``optrun show`` and ``optrun runs`` on real run directories (made once, by the CLI, in-process)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from optrun_cli.main import app

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def metric_lines(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real minimize run and one real train run, under one folder."""
    root = tmp_path_factory.mktemp("runs")
    minimize = invoke("minimize", "--method", "SLSQP", "--out", str(root / "mini"), "-q")
    assert minimize.exit_code == 0, minimize.output
    train = invoke(
        "train",
        "--out",
        str(root / "tr"),
        "--set",
        "train.max_steps=20",
        "--set",
        "logging.every_steps=2",
        "-q",
    )
    assert train.exit_code == 0, train.output
    return {"root": root, "minimize": root / "mini", "train": root / "tr"}


@pytest.fixture
def copy(made: dict[str, Path], tmp_path: Path) -> Iterator[Any]:
    """Copies a made run into tmp_path (to damage it freely); lock files are left behind."""

    def make(kind: str, name: str = "run") -> Path:
        target = tmp_path / name
        shutil.copytree(made[kind], target, ignore=shutil.ignore_patterns(".optrun-lock"))
        return target

    yield make


# ---------------------------------------------------------------- show


def test_show_minimize(made: dict[str, Path]) -> None:
    run = made["minimize"]
    result = read_json(run / "result.json")
    shown = invoke("show", str(run))
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "succeeded" in out and "optrun minimize: constrained-example" in out
    assert repr(result["fun"]) in out  # the result table, as at the end of the run
    assert "SLSQP" in out and "optrun.spec.defaults.problems:sum_of_squares" in out
    assert "│ equalities    │ 1 " in out and "│ inequalities  │ 1 " in out
    # Step 0 is the start point v = (7, 7): violation max(|7 - 1|, max(0, -(7 - 1))) = 6; SLSQP's
    # iterates are feasible after it, so the violation chart runs from 6 down to 0.
    lines = metric_lines(run)
    assert (lines[0]["step"], lines[0]["constraint_violation"]) == (0, 6.0)
    assert all(line["constraint_violation"] == 0 for line in lines[1:])
    violation = out[out.index("constraint_violation by step") + 1 :]
    assert "6 ┤" in violation and "0 ┤" in violation


def test_show_names_the_method_a_default_chose(copy: Any) -> None:
    run = copy("minimize")
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("method: SLSQP", "method: null"))
    shown = invoke("show", str(run), "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["settings"]["method"] == "SLSQP"  # from result.json


def test_show_train_plots_the_loss(made: dict[str, Path]) -> None:
    run = made["train"]
    lines = metric_lines(run)
    losses = [line["loss"] for line in lines]
    assert len(losses) == 10  # every 2 of 20 steps
    shown = invoke("show", str(run))
    assert shown.exit_code == 0, shown.output
    out = shown.stdout.splitlines()
    assert "loss by step" in out  # spans less than two decades: a linear scale
    chart = out[out.index("loss by step") + 1 :]
    top, bottom = f"{max(losses):.4g}", f"{min(losses):.4g}"
    assert chart[0].split()[0] == top and chart[0].split()[1].startswith("┤")
    assert chart[7].split()[0] == bottom and chart[7].split()[1].startswith("┤")
    assert chart[8].strip().startswith("└") and chart[9].split() == [str(lines[0]["step"]), "20"]
    assert any(0x2800 < ord(c) <= 0x28FF for row in chart[:8] for c in row)  # braille dots drawn
    assert "SGD" in shown.stdout and '["variable_clipping", "moving_average"]' in shown.stdout
    assert repr(read_json(run / "result.json")["final_loss"]) in shown.stdout


def test_show_json(made: dict[str, Path]) -> None:
    for kind in ("minimize", "train"):
        run = made[kind]
        shown = invoke("show", str(run), "--json")
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.stdout)
        assert set(data) == {"run_dir", "name", "kind", "status", "result", "settings", "spec", "metrics"}
        assert data["run_dir"] == str(run) and data["kind"] == kind and data["status"] == "succeeded"
        assert data["result"] == read_json(run / "result.json")
        lines = metric_lines(run)
        metrics = data["metrics"]
        assert set(metrics) == {"file", "count", "torn", "last", "steps", "series"}
        assert metrics["count"] == len(lines) and metrics["last"] == lines[-1] and metrics["torn"] is False
        assert metrics["steps"] == [line["step"] for line in lines]
        assert metrics["series"]["loss"] == [line["loss"] for line in lines]
        assert data["settings"]["name"] == data["name"] == data["spec"]["name"]
    mini = json.loads(invoke("show", str(made["minimize"]), "--json").stdout)
    assert mini["settings"]["method"] == "SLSQP" and mini["settings"]["options"] == {"maxiter": 100}
    assert (mini["settings"]["equalities"], mini["settings"]["inequalities"]) == (1, 1)
    assert mini["metrics"]["series"]["constraint_violation"] == [
        line["constraint_violation"] for line in metric_lines(made["minimize"])
    ]
    train = json.loads(invoke("show", str(made["train"]), "--json").stdout)
    assert train["settings"]["optimizer"] == "SGD" and train["settings"]["max_steps"] == 20
    assert train["settings"]["wrappers"] == ["variable_clipping", "moving_average"]


def test_show_quiet_prints_the_status(made: dict[str, Path]) -> None:
    shown = invoke("show", str(made["train"]), "-q")
    assert shown.exit_code == 0 and shown.stdout == "succeeded\n"


def test_show_log_scale_and_violation_chart(copy: Any) -> None:
    run = copy("minimize")
    records = [
        {"step": 1, "wall_time": 0.1, "loss": 1000.0, "constraint_violation": 0.5},
        {"step": 2, "wall_time": 0.2, "loss": 3.0, "constraint_violation": 0.25},
        {"step": 3, "wall_time": 0.3, "loss": 0.1, "constraint_violation": 0.0},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = invoke("show", str(run)).stdout.splitlines()
    loss = out[out.index("loss (log scale) by step") + 1 :]
    assert loss[0].split()[0] == "1000" and loss[7].split()[0] == "0.1"
    violation = out[out.index("constraint_violation by step") + 1 :]
    assert violation[0].split()[0] == "0.5" and violation[7].split()[0] == "0"


# ---------------------------------------------------------------- runs


def test_runs_lists_newest_first(made: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    mini, train = root / "mini", root / "group" / "tr"  # a run one folder deeper is found too
    shutil.copytree(made["minimize"], mini)
    shutil.copytree(made["train"], train)
    os.utime(mini / "result.json", (1_000_000, 1_000_000))
    os.utime(train / "result.json", (2_000_000, 2_000_000))
    listed = invoke("runs", str(root), "--json")
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)
    assert [e["run_dir"] for e in entries] == [str(train), str(mini)]
    fields = {"run_dir", "name", "kind", "status", "steps", "final_loss", "wall_time_s", "modified", "error"}
    assert all(set(e) == fields for e in entries)
    train_result, mini_result = read_json(train / "result.json"), read_json(mini / "result.json")
    assert entries[0] | {"modified": None} == {
        "run_dir": str(train),
        "name": "default-train",
        "kind": "train",
        "status": "succeeded",
        "steps": 20,
        "final_loss": train_result["final_loss"],
        "wall_time_s": train_result["time_s"],
        "modified": None,
        "error": None,
    }
    assert entries[0]["modified"] == 2_000_000
    assert (entries[1]["name"], entries[1]["kind"], entries[1]["steps"]) == (
        "constrained-example",
        "minimize",
        mini_result["nit"],
    )
    assert entries[1]["final_loss"] == mini_result["fun"]

    os.utime(mini / "result.json", (3_000_000, 3_000_000))
    table = invoke("runs", str(root))
    assert table.exit_code == 0, table.output
    assert table.stdout.index(str(mini)) < table.stdout.index(str(train))
    assert "default-train" in table.stdout and "constrained-example" in table.stdout
    assert invoke("runs", str(root), "-q").stdout.splitlines() == [str(mini), str(train)]


def test_runs_defaults_to_runs_folder(made: dict[str, Path], tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(made["train"], tmp_path / "runs" / "tr")
    listed = invoke("runs", "--json")
    assert listed.exit_code == 0 and [e["run_dir"] for e in json.loads(listed.stdout)] == ["runs/tr"]


def test_runs_empty(tmp_path: Path) -> None:
    (tmp_path / "not-a-run").mkdir()
    listed = invoke("runs", str(tmp_path))
    assert listed.exit_code == 0 and listed.stdout.strip() == f"no runs under {tmp_path}"
    assert json.loads(invoke("runs", str(tmp_path), "--json").stdout) == []


# ---------------------------------------------------------------- status


def status_of(run: Path) -> tuple[str, str]:
    shown = json.loads(invoke("show", str(run), "--json").stdout)["status"]
    listed = json.loads(invoke("runs", str(run.parent), "--json").stdout)
    return shown, next(e["status"] for e in listed if e["run_dir"] == str(run))


def test_status_incomplete_failed_interrupted(copy: Any) -> None:
    run = copy("train")
    result = read_json(run / "result.json")
    (run / "result.json").write_text(json.dumps({**result, "status": "diverged", "success": False}))
    assert status_of(run) == ("failed", "failed")
    (run / "result.json").write_text(json.dumps({**result, "status": "interrupted", "success": False}))
    assert status_of(run) == ("interrupted", "interrupted")
    (run / "result.json").unlink()
    assert status_of(run) == ("incomplete", "incomplete")
    # How far it got comes from the metrics file's last line.
    entry = json.loads(invoke("runs", str(run.parent), "--json").stdout)[0]
    last = metric_lines(run)[-1]
    assert (entry["steps"], entry["final_loss"], entry["wall_time_s"]) == (
        last["step"],
        last["loss"],
        last["wall_time"],
    )
    assert "no result.json" in invoke("show", str(run)).stdout


def test_status_running_while_the_lock_is_held(copy: Any) -> None:
    run = copy("minimize")
    fd = os.open(run / ".optrun-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert status_of(run) == ("running", "running")
    finally:
        os.close(fd)
    assert status_of(run) == ("succeeded", "succeeded")


# ---------------------------------------------------------------- errors


def test_errors_missing_and_not_a_run(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for command in ("show", "runs"):
        result = invoke(command, str(missing))
        assert result.exit_code == 2 and f"{missing} does not exist" in result.stderr
        as_json = invoke(command, str(missing), "--json")
        error = json.loads(as_json.stdout)
        assert as_json.exit_code == 2 and error["success"] is False and error["exit_code"] == 2
        assert f"{missing} does not exist" in error["error"]
    plain = invoke("show", str(tmp_path))
    assert plain.exit_code == 2
    assert "not an optrun run directory (it has no .optrun-run marker)" in plain.stderr
    assert f"optrun runs {tmp_path}" in plain.stderr
    (tmp_path / "file").write_text("x")
    for command in ("show", "runs"):
        result = invoke(command, str(tmp_path / "file"))
        assert result.exit_code == 2 and "is a file" in result.stderr


def test_torn_last_metrics_line_is_skipped(copy: Any) -> None:
    run = copy("train")
    lines = metric_lines(run)
    with (run / "metrics.jsonl").open("a") as stream:
        stream.write('{"step": 22, "wall_ti')  # a kill mid-write
    shown = invoke("show", str(run), "--json")
    assert shown.exit_code == 0, shown.output
    metrics = json.loads(shown.stdout)["metrics"]
    assert metrics["torn"] is True and metrics["count"] == len(lines) and metrics["last"] == lines[-1]
    assert "skipped a torn last line" in invoke("show", str(run)).stdout


def test_damaged_files(copy: Any) -> None:
    run = copy("train")
    text = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join([text[0], "garbage", *text[1:]]) + "\n")
    result = invoke("show", str(run))
    assert result.exit_code == 2
    assert "metrics.jsonl: line 2 is not a metrics record" in result.stderr

    run = copy("minimize", "other")
    (run / "result.json").write_text('{"kind": "minimize", "succ')
    result = invoke("show", str(run))
    assert result.exit_code == 2 and "result.json is not valid JSON" in result.stderr
    error = json.loads(invoke("show", str(run), "--json").stdout)
    assert error["exit_code"] == 2 and "result.json is not valid JSON" in error["error"]
    # runs still lists it, as unreadable, beside the others.
    entries = json.loads(invoke("runs", str(run.parent), "--json").stdout)
    damaged = next(e for e in entries if e["run_dir"] == str(run))
    assert damaged["status"] == "unreadable" and "not valid JSON" in damaged["error"]
    assert {e["status"] for e in entries if e is not damaged} == {"succeeded"}
    listed = invoke("runs", str(run.parent))
    assert listed.exit_code == 0 and "damaged files" in listed.stdout


# ---------------------------------------------------------------- plot


def test_chart_edges() -> None:
    from optrun_cli.plot import chart, log_scale

    assert chart([1, 2], [float("nan"), float("inf")]) == []
    flat = chart([5], [3.0], width=10, height=4)
    assert flat[0].split()[0] == "3" and flat[3].split()[0] == "3" and flat[-1].split() == ["5"]
    assert log_scale([1000.0, 1.0]) and not log_scale([100.0, 1.0]) and not log_scale([1000.0, 0.0])


# ---------------------------------------------------------------- real processes


def run_optrun(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optrun", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_show_process(made: dict[str, Path], tmp_path: Path) -> None:
    shown = run_optrun("show", str(made["train"]), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "optrun train: default-train" in shown.stdout and "loss by step" in shown.stdout
    missing = run_optrun("show", "nope", cwd=tmp_path)
    assert missing.returncode == 2 and "nope does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_runs_process(made: dict[str, Path], tmp_path: Path) -> None:
    listed = run_optrun("runs", str(made["root"]), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {e["run_dir"] for e in json.loads(listed.stdout)} == {str(made["minimize"]), str(made["train"])}


def test_show_and_runs_do_not_import_tensorflow(made: dict[str, Path]) -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom optrun_cli.main import app\n"
        f"for args in (['show', {str(made['train'])!r}], ['runs', {str(made['root'])!r}]):\n"
        "    r = CliRunner().invoke(app, args)\n    assert r.exit_code == 0, r.output\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_the_tiers_line_tells_each_phase_of_a_run() -> None:
    from optrun_cli.summary import describe_tiers

    switched = {
        "first": "plain",
        "second": "xla",
        "evaluations": {"plain": 130, "xla": 870},
        "switched_at_evaluation": 130,
        "switched_after_s": 1.5234,
        "dropped_at_evaluation": None,
        "note": "",
    }
    assert describe_tiers(switched) == "plain 130, then xla 870 (switched after evaluation 130, at 1.52 s)"
    # Dropped as slower after 6 points: 1,111 plain evaluations in all, 207 of them before the switch.
    note = "xla dropped after evaluation 213: slower than plain here (its fastest point 13.7 ms, ...)"
    dropped = {**switched, "evaluations": {"plain": 1111, "xla": 6}, "switched_at_evaluation": 207}
    dropped.update(dropped_at_evaluation=213, note=note)
    assert describe_tiers(dropped) == f"plain 207, then xla 6, then plain 904 ({note})"
    never = {**switched, "evaluations": {"plain": 40, "xla": 0}, "switched_at_evaluation": None}
    assert describe_tiers(never) == "plain 40"  # the library's note says why, when it knows
    never["note"] = "xla not built: the run ended before it could pay"
    assert describe_tiers(never) == "plain 40 (xla not built: the run ended before it could pay)"


def test_damaged_or_foreign_fields_never_give_a_traceback(copy: Any) -> None:
    # Each from a copy of a real run: a marker kind that is not text, a result.json whose tiers
    # have another shape, metrics spanning the float range, a number too large for a float.
    run = copy("minimize")
    marker = read_json(run / ".optrun-run")
    (run / ".optrun-run").write_text(json.dumps({**marker, "kind": 5}))
    listed = invoke("runs", str(run.parent), "--json")
    assert listed.exit_code == 0 and "Traceback" not in listed.output, listed.output
    assert [r["kind"] for r in json.loads(listed.stdout)] == ["unknown"]
    result = read_json(run / "result.json")
    for tiers in ({"first": "plain", "evaluations": [1, 2]}, {**result["tiers"], "switched_after_s": "x"}):
        (run / "result.json").write_text(json.dumps({**result, "tiers": tiers}))
        shown = invoke("show", str(run))
        assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output
    (run / "result.json").write_text(json.dumps(result))
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 1e308}\n{"step": 2, "loss": -1e308}\n')
    shown = invoke("show", str(run))
    assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": ' + "9" * 400 + "}\n")
    assert invoke("show", str(run)).exit_code == 0


def test_a_pipe_in_place_of_a_runs_file_is_refused_not_waited_on(copy: Any) -> None:
    run = copy("minimize")
    for name in ("result.json", "metrics.jsonl"):
        keep = (run / name).read_bytes()
        (run / name).unlink()
        os.mkfifo(run / name)  # a read would block forever
        shown = invoke("show", str(run))
        assert shown.exit_code == 2 and "not a regular file" in shown.output, shown.output
        listed = invoke("runs", str(run.parent))
        assert listed.exit_code == 0 and "Traceback" not in listed.output
        (run / name).unlink()
        (run / name).write_bytes(keep)

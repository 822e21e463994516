"""Run directories: --force removes only optrun's own, one run per directory, locks die with their process."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import RunError
from optrun.runner.rundir import LOCK, MARKER, claimed, read_marker
from optrun_cli.main import app

runner = CliRunner()
SPEC = "name: tiny\nmodel: {builder: model.py:build}\nloss: model.py:loss\nminimize: {method: L-BFGS-B}\n"
MODEL = (
    "import tensorflow as tf\n"
    "def build():\n    return tf.Variable([3.0, -1.0], name='v')\n"
    "def loss(v):\n    return tf.reduce_sum(tf.square(v - 1.0))\n"
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def minimize(*args: str):
    return runner.invoke(app, ["minimize", "spec.yaml", "-q", *args])


def test_force_never_removes_what_optrun_did_not_make(in_tmp: Path) -> None:
    thesis = in_tmp / "u" / "sub" / "thesis.tex"
    thesis.parent.mkdir(parents=True)
    thesis.write_text("x")
    result = minimize("--out", "u", "--force")
    assert result.exit_code == 2 and "was not made by optrun" in result.stderr
    assert thesis.read_text() == "x" and sorted(p.name for p in (in_tmp / "u").iterdir()) == ["sub"]


@pytest.mark.parametrize(
    ("out", "why"), [(".", "the current directory"), ("..", "holds it"), ("sub", "the spec's own folder")]
)
def test_force_refuses_protected_folders(in_tmp: Path, out: str, why: str) -> None:
    if out == "sub":  # a spec kept in a folder of its own
        (in_tmp / "sub").mkdir()
        (in_tmp / "sub" / "spec.yaml").write_text(SPEC.replace("model.py", "../model.py"))
        result = runner.invoke(app, ["minimize", "sub/spec.yaml", "-q", "--out", "sub", "--force"])
    else:
        result = minimize("--out", out, "--force")
    assert result.exit_code == 2 and why in result.stderr, result.stderr
    assert (in_tmp / "model.py").is_file() and (in_tmp / "spec.yaml").is_file()


def test_home_is_refused(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = in_tmp / "home"
    home.mkdir()
    (home / "notes.txt").write_text("keep")
    monkeypatch.setenv("HOME", str(home))
    result = minimize("--out", str(home), "--force")
    assert result.exit_code == 2 and "home directory" in result.stderr
    assert (home / "notes.txt").read_text() == "keep"


def test_symlinked_out_is_refused_and_its_target_untouched(in_tmp: Path) -> None:
    target = in_tmp / "elsewhere"
    target.mkdir()
    (target / "data.csv").write_text("1,2")
    (in_tmp / "link").symlink_to(target)
    result = minimize("--out", "link", "--force")
    assert result.exit_code == 2 and "symbolic link" in result.stderr
    assert (target / "data.csv").read_text() == "1,2"


def test_uncreatable_out_has_a_clear_message(in_tmp: Path) -> None:
    (in_tmp / "afile").write_text("")
    result = minimize("--out", "afile/run")
    assert result.exit_code == 2 and "cannot create the run directory" in result.stderr


def test_marker_and_force_on_optrun_directories(in_tmp: Path) -> None:
    assert minimize("--out", "run").exit_code == 0
    first = read_marker(in_tmp / "run")
    assert first is not None and first["made_by"].startswith("optrun") and len(first["spec_hash"]) == 64
    (in_tmp / "run" / "stale.txt").write_text("from an older run")
    assert minimize("--out", "run", "--force").exit_code == 0
    second = read_marker(in_tmp / "run")
    assert second is not None and second["run_id"] != first["run_id"]
    assert not (in_tmp / "run" / "stale.txt").exists()
    assert json.loads((in_tmp / "run" / "result.json").read_text())["success"] is True


@pytest.mark.parametrize("flags", [(), ("--force",), ("--resume",)])
def test_a_directory_in_use_is_refused(in_tmp: Path, flags: tuple[str, ...]) -> None:
    assert minimize("--out", "run").exit_code == 0
    before = sorted(p.name for p in (in_tmp / "run").rglob("*"))
    with claimed(in_tmp / "run", "minimize", SPEC, "spec.yaml", resume=True, force=False):
        result = minimize("--out", "run", *flags)
    assert result.exit_code == 2 and f"in use by pid {os.getpid()}" in result.stderr
    assert sorted(p.name for p in (in_tmp / "run").rglob("*")) == before


def test_a_start_between_lock_and_marker_is_in_use_not_foreign(in_tmp: Path) -> None:
    # The window a simultaneous start can see: the first holds the lock and has
    # written only the marker's temporary file.
    run = in_tmp / "run"
    run.mkdir()
    fd = os.open(run / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242\n")
        (run / (MARKER + ".tmp")).write_text("{")
        with (
            pytest.raises(RunError, match="in use by pid 4242"),
            claimed(run, "minimize", SPEC, "spec.yaml", resume=False, force=False),
        ):
            pass
    finally:
        os.close(fd)
    # A start that died there leaves a directory the next start simply takes.
    with claimed(run, "minimize", SPEC, "spec.yaml", resume=False, force=False):
        assert read_marker(run) is not None


def test_a_lock_dies_with_its_process(in_tmp: Path) -> None:
    (in_tmp / "run").mkdir()
    (in_tmp / "run" / MARKER).write_text(json.dumps({"made_by": "optrun test"}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from optrun.runner.rundir import claimed\n"
            "with claimed(Path('run'), 'minimize', '', 'spec.yaml', True, False):\n"
            "    print('locked', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with (
        pytest.raises(RunError, match=f"in use by pid {holder.pid}"),
        claimed(in_tmp / "run", "minimize", "", "spec.yaml", resume=True, force=False),
    ):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    deadline = time.monotonic() + 5
    with claimed(in_tmp / "run", "minimize", "", "spec.yaml", resume=True, force=False):
        assert (in_tmp / "run" / LOCK).read_text().strip() == str(os.getpid())
    assert time.monotonic() < deadline


def test_a_claim_says_what_this_start_made_and_which_run_it_holds(in_tmp: Path) -> None:
    run = in_tmp / "deep" / "run"
    with claimed(run, "minimize", SPEC, "spec.yaml", resume=False, force=False) as claim:
        marker = read_marker(run)
        assert marker is not None and claim.run_id == marker["run_id"] and len(claim.run_id) == 32
        assert claim.made and claim.home == run.resolve()
    # Resumed: the run's own id, and a directory this start did not make.
    with claimed(run, "minimize", SPEC, "spec.yaml", resume=True, force=False) as again:
        assert (again.run_id, again.made) == (claim.run_id, False)
    # --force over it: a new run id, still not made by this start (an interrupt must not remove it).
    with claimed(run, "minimize", SPEC, "spec.yaml", resume=False, force=True) as forced:
        assert forced.run_id not in (None, claim.run_id) and not forced.made


def test_a_refused_resume_leaves_an_empty_folder_empty(in_tmp: Path) -> None:
    (in_tmp / "empty").mkdir()
    with (
        pytest.raises(RunError, match="holds no optrun run"),
        claimed(in_tmp / "empty", "train", SPEC, "spec.yaml", resume=True, force=False),
    ):
        pass
    assert list((in_tmp / "empty").iterdir()) == []


def test_an_interrupt_before_a_forced_run_started_keeps_the_directory(in_tmp: Path) -> None:
    assert minimize("--out", "run").exit_code == 0
    with pytest.MonkeyPatch.context() as patch:

        def interrupted(*_: object) -> None:
            raise KeyboardInterrupt

        patch.setattr("optrun.runner.minimize.record_config", interrupted)
        assert minimize("--out", "run", "--force").exit_code == 130
    assert (in_tmp / "run").is_dir() and read_marker(in_tmp / "run") is not None


def test_a_full_disk_as_the_run_starts_leaves_nothing_and_says_so(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def full(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(dst).endswith(MARKER):  # the marker, the run's first file: the disk refuses it
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    result = minimize("--out", "run")
    assert result.exit_code == 2, result.output
    said = " ".join(result.stderr.split())
    assert "--out run: cannot write in the run directory: No space left on device; free some space" in said
    assert "Traceback" not in result.output and not (in_tmp / "run").exists()  # the same command runs again
    monkeypatch.setattr(os, "replace", real_replace)
    assert minimize("--out", "run").exit_code == 0


LONG = "m" * 300  # past the 255 bytes a file name may have


def test_a_metrics_file_no_file_system_takes_is_refused_at_its_key(in_tmp: Path) -> None:
    for name, what in ((f"{LONG}.jsonl", "longer than 255 bytes"), ("a\0b", "holds a NUL")):
        result = minimize("--set", f"logging.metrics_file={json.dumps(name)}", "--out", "run")
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())
        assert "logging.metrics_file" in said and what in said and "Traceback" not in said, said
        assert not (in_tmp / "run").exists()


def test_an_out_name_past_255_bytes_is_refused_and_nothing_is_made(in_tmp: Path) -> None:
    for out in (LONG, f"new/{LONG}"):
        result = minimize("--out", out)
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())
        assert said.startswith("error: --out: the name 'mmmm") and "longer than the 255 bytes" in said, said
        assert {p.name for p in in_tmp.iterdir()} == {"model.py", "spec.yaml"}


def test_runs_lists_a_run_whose_config_names_an_impossible_metrics_file(in_tmp: Path) -> None:
    # A run directory an earlier optrun left: its config names a metrics file no file system takes.
    assert minimize("--out", "runs/ok").exit_code == 0
    broken = in_tmp / "runs" / "broken"
    broken.mkdir()
    (broken / MARKER).write_text((in_tmp / "runs" / "ok" / MARKER).read_text())
    config = (in_tmp / "runs" / "ok" / "config.yaml").read_text()
    (broken / "config.yaml").write_text(config.replace("metrics.jsonl", f"{LONG}.jsonl"))
    result = runner.invoke(app, ["runs", "runs", "--json"])
    assert result.exit_code == 0, result.output
    listed = {Path(entry["run_dir"]).name: entry for entry in json.loads(result.stdout)}
    assert set(listed) == {"ok", "broken"}, listed
    assert listed["ok"]["status"] == "succeeded" and listed["broken"]["steps"] is None, listed


def _cut_after(real: object) -> object:
    """``real``, done, then a Ctrl-C the first time: a signal that lands right after the call."""
    cuts = [KeyboardInterrupt]

    def cut(*args: object, **kwargs: object) -> object:
        done = real(*args, **kwargs)  # type: ignore[operator]
        if cuts:
            raise cuts.pop()
        return done

    return cut


@pytest.mark.parametrize(
    "where",
    ["optrun.runner.rundir.os.open", "optrun.runner.rundir.fcntl.flock", "optrun.runner.rundir.os.write",
     "optrun.runner.rundir._write_marker", "optrun.runner.rundir.Path.resolve"],
    ids=["lock file made", "lock taken", "pid written", "marker written", "claim made"],
)  # fmt: skip
def test_a_ctrl_c_while_the_folder_is_claimed_leaves_nothing_and_the_command_runs_again(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import importlib

    module, name = where.rsplit(".", 1)
    owner = importlib.import_module(module) if module.count(".") == 2 else None
    if owner is None:  # an attribute of something the module imported (os, fcntl, Path)
        parent, attr = module.rsplit(".", 1)
        owner = getattr(importlib.import_module(parent), attr)
    monkeypatch.setattr(owner, name, _cut_after(getattr(owner, name)))
    args = (in_tmp / "r", "minimize", "spec", "spec.yaml", False, False)
    with pytest.raises(KeyboardInterrupt), claimed(*args):
        pass
    monkeypatch.undo()
    assert not (in_tmp / "r").exists()
    with claimed(*args) as claim:  # runs again
        assert claim.made


def test_a_start_refused_after_a_rival_ran_in_the_folder_it_made_removes_nothing_of_the_rival(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This start makes the folder; before it takes the lock, a rival start (which found it made)
    # runs in it whole. This start is then refused ("already exists"), and the rival's run stays.
    from optrun.runner import rundir

    real_lock, rivals = rundir._lock, [None]

    def rival_first(out: Path, taking: object) -> None:
        if rivals:
            rivals.pop()
            with claimed(out, "minimize", "spec", "spec.yaml", False, False):
                (out / "result.json").write_text("{}")
        real_lock(out, taking)  # type: ignore[arg-type]

    monkeypatch.setattr(rundir, "_lock", rival_first)
    args = (in_tmp / "r", "minimize", "spec", "spec.yaml", False, False)
    with pytest.raises(RunError, match="already exists"), claimed(*args):
        pass
    assert (in_tmp / "r" / "result.json").is_file() and read_marker(in_tmp / "r") is not None

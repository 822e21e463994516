"""Resume edge cases: finished runs, metrics after a kill, leftover temp checkpoints, minimize budgets,
and a signal that arrives while a checkpoint is being written."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import tensorflow as tf
from typer.testing import CliRunner

from optrun_cli.main import app

MODULE = """
import numpy as np
import tensorflow as tf

def build():
    return tf.Variable([3.0, -1.0], name='w')

def loss(w, batch=None):
    return tf.reduce_sum(tf.square(w - 1.0)) + tf.reduce_sum(tf.square(w[1:] - tf.square(w[:-1])))

def data():
    return tf.data.Dataset.from_tensors(np.float32(0.0)).repeat()
"""
SPEC = """name: r
model: {builder: m.py:build}
loss: m.py:loss
data: {builder: m.py:data}
train: {max_steps: 20, optimizer: {name: SGD, args: {learning_rate: 0.01}}}
minimize: {method: L-BFGS-B, options: {maxiter: 5}}
checkpoint: {every_steps: 10}
logging: {every_steps: 1}
"""


@pytest.fixture(name="spec")
def spec_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The resume specs' folder, made the current one: ``s.yaml`` over the module ``m.py``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(MODULE)
    (tmp_path / "s.yaml").write_text(SPEC)
    return tmp_path / "s.yaml"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _files(run: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of a run directory: its modification time and its bytes."""
    return {
        str(p.relative_to(run)): (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()
    }


def test_resuming_a_finished_run_changes_nothing(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0
    before = _files(Path("run"))
    again = cli("train", str(spec), "--out", "run", "--resume")
    assert again.exit_code == 0 and "already finished at step 20" in again.output
    after = _files(Path("run"))
    # No file written, none added (a TensorBoard events file), none touched (config.yaml).
    assert sorted(after) == sorted(before)
    assert [k for k in before if after[k] != before[k] and not k.startswith(".")] == []
    more = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert more.exit_code == 0
    assert json.loads((Path("run") / "result.json").read_text())["steps"] == 30
    assert steps(Path("run")) == list(range(1, 31))


def test_a_resume_keeps_the_runs_seed(spec: Path) -> None:
    # The steps still to come draw with the seed: another one would not continue the same run.
    assert cli("train", str(spec), "-q", "--out", "run", "--seed", "3").exit_code == 0
    config = (Path("run") / "config.yaml").read_text()
    other = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert other.exit_code == 2
    assert "differs from the run in run at seed (the run used seed 3: pass --seed 3)" in " ".join(
        other.stderr.split()
    )
    assert (Path("run") / "config.yaml").read_text() == config  # nothing written
    same = cli(
        "train", str(spec), "-q", "--out", "run", "--resume", "--seed", "3", "--set", "train.max_steps=30"
    )
    assert same.exit_code == 0 and steps(Path("run")) == list(range(1, 31))


def test_metrics_are_cut_back_and_temp_checkpoints_removed_on_resume(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0
    run = Path("run")
    # As a SIGKILL after step 25 of a longer run would leave them: lines past the checkpoint,
    # a torn last line, and a half-written checkpoint.
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 21, "loss": 1.0}\n{"step": 22, "loss": 1.0}\n{"step": 2')
    (run / "checkpoints" / "ckpt-25_temp").mkdir()
    (run / "checkpoints" / "ckpt-25_temp" / "part").write_text("half")
    assert (
        cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=30").exit_code
        == 0
    )
    assert steps(run) == list(range(1, 31))
    assert not list((run / "checkpoints").glob("*_temp*"))


def test_minimize_resume_continues_the_count_and_the_budget(spec: Path) -> None:
    first = cli("minimize", str(spec), "-q", "--out", "min")
    assert first.exit_code == 0  # maxiter 5 reached: not converged, a budget reached
    assert json.loads((Path("min") / "result.json").read_text())["nit"] == 5
    same = cli("minimize", str(spec), "--out", "min", "--resume")
    assert same.exit_code == 0 and "already ran 5 iterations (maxiter: 5)" in same.output
    more = cli("minimize", str(spec), "-q", "--out", "min", "--resume", "--set", "minimize.options.maxiter=8")
    result = json.loads((Path("min") / "result.json").read_text())
    assert result["nit"] == 8, (more.output, result)
    logged = steps(Path("min"))
    assert logged == sorted(set(logged)) and logged[-1] == 8


@pytest.mark.parametrize("method", ["COBYLA", "TNC"])
def test_a_budget_of_evaluations_is_the_whole_runs_across_resumes(spec: Path, method: str) -> None:
    # COBYLA's maxiter and TNC's (passed on as maxfun) count evaluations, not iterations.
    budget = ["--method", method, "--set"]
    first = cli("minimize", str(spec), "-q", "--out", "min", *budget, "minimize.options.maxiter=8")
    assert first.exit_code == 0, first.output
    before = json.loads((Path("min") / "result.json").read_text())["nfev"]
    more = cli(
        "minimize", str(spec), "-q", "--out", "min", "--resume", *budget, "minimize.options.maxiter=14"
    )
    assert more.exit_code == 0, more.output
    result = json.loads((Path("min") / "result.json").read_text())
    # 14 in all (scipy's TNC makes one evaluation past its maxfun, in each session); the
    # second session was given only what the first left, not 14 more (8 + 14 = 22).
    assert result["nfev"] == (14 if method == "COBYLA" else 15), (before, result)
    assert before == (8 if method == "COBYLA" else 9)


def test_a_training_run_that_user_code_failed_resumes_from_its_last_step(spec: Path) -> None:
    # The data raises at its 8th batch, until the file that says so is gone; no periodic checkpoint.
    Path("fail_at").write_text("8")
    Path("m.py").write_text(
        MODULE + "\ndef flaky():\n"
        "    import os\n"
        "    for i in range(1, 100):\n"
        "        if os.path.exists('fail_at') and i == int(open('fail_at').read()):\n"
        "            raise RuntimeError('bad record')\n"
        "        yield np.float32(0.0)\n"
    )
    spec.write_text(
        SPEC.replace("m.py:data", "m.py:flaky").replace("checkpoint: {every_steps: 10}", "checkpoint: {}")
    )
    failed = cli("train", str(spec), "-q", "--out", "run")
    assert failed.exit_code == 1 and "bad record" in failed.output
    assert json.loads((Path("run") / "result.json").read_text())["steps"] == 7
    assert tf.train.latest_checkpoint("run/checkpoints").endswith("ckpt-7")  # the 7 steps made
    Path("fail_at").unlink()  # the cause fixed
    again = cli("train", str(spec), "-q", "--out", "run", "--resume")
    assert again.exit_code == 0, again.output
    assert json.loads((Path("run") / "result.json").read_text())["steps"] == 20
    assert steps(Path("run")) == list(range(1, 21))  # each step once: none lost, none repeated


def test_a_resume_keeps_the_metrics_file_that_holds_the_history(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run", "--set", "train.max_steps=10").exit_code == 0
    moved = cli(
        "train", str(spec), "-q", "--out", "run", "--resume", "--set", "logging.metrics_file=m2.jsonl"
    )
    assert moved.exit_code == 2 and "logging.metrics_file" in " ".join(moved.output.split()), moved.output
    assert not (Path("run") / "m2.jsonl").exists() and steps(Path("run")) == list(range(1, 11))


def test_a_signal_during_a_checkpoint_write_waits_for_it(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = tf.train.CheckpointManager.save
    calls: list[int] = []

    def save_with_a_signal_inside(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-write; must be held until it ends
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_with_a_signal_inside)
    result = cli("train", str(spec), "-q", "--out", "run", "--set", "train.max_steps=1000")
    assert result.exit_code == 130
    run = Path("run")
    assert (run / "checkpoints" / "ckpt-10.index").is_file()  # the write the signal hit is whole
    assert not list((run / "checkpoints").glob("*_temp*"))
    assert json.loads((run / "result.json").read_text())["status"] == "interrupted"
    resumed = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=12")
    assert resumed.exit_code == 0


def interrupted_after_step_10(spec: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    """A training run of ``spec`` in ``run``, Ctrl-C'd right after its checkpoint at step 10."""
    real_save = tf.train.CheckpointManager.save

    def save_then_interrupt(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        saved = real_save(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return saved

    with monkeypatch.context() as patched:
        patched.setattr(tf.train.CheckpointManager, "save", save_then_interrupt)
        done = cli("train", str(spec), "-q", "--out", "run", "--set", "train.max_steps=1000", *flags)
    assert done.exit_code == 130, done.output


def test_a_resume_into_a_budget_the_interrupted_run_passed_is_refused(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupted_after_step_10(spec, monkeypatch)
    run = Path("run")
    before = {name: (run / name).read_bytes() for name in ("result.json", "config.yaml", "metrics.jsonl")}
    assert json.loads(before["result.json"])["status"] == "interrupted"
    out = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=5")
    assert out.exit_code == 2, out.output
    said = " ".join(out.stderr.split())
    assert "stopped at step 10, which uses up its budget of 5 steps (train.max_steps)" in said
    assert "raise train.max_steps to go on" in said
    assert {name: (run / name).read_bytes() for name in before} == before  # nothing written
    # A budget the run has just reached: nothing to train, and the run's end is written.
    out = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=10")
    assert out.exit_code == 0, out.output
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    assert steps(run) == list(range(1, 11))
    more = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=15")
    assert more.exit_code == 0 and json.loads((run / "result.json").read_text())["status"] == "completed"
    assert steps(run) == list(range(1, 16))


def test_a_resume_that_only_writes_the_end_keeps_the_loss_and_the_new_budget(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging = ("--set", "logging.every_steps=4")  # step 10's loss is in no metrics line
    interrupted_after_step_10(spec, monkeypatch, *logging)
    stopped = json.loads((Path("run") / "result.json").read_text())
    assert (stopped["status"], stopped["steps"]) == ("interrupted", 10)
    out = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=10", *logging)
    assert out.exit_code == 0, out.output
    result = json.loads((Path("run") / "result.json").read_text())
    # The loss at step 10, as the session that stopped there said it (it was "nan").
    assert (result["status"], result["steps"]) == ("completed", 10)
    assert isinstance(result["final_loss"], float) and result["final_loss"] == stopped["final_loss"]
    assert "max_steps: 10" in (Path("run") / "config.yaml").read_text()  # the budget it completed


def test_resuming_a_converged_minimize_changes_nothing(spec: Path) -> None:
    more = ("--set", "minimize.options.maxiter=500")
    assert cli("minimize", str(spec), "-q", "--out", "min", *more).exit_code == 0
    files = {
        name: (Path("min") / name).read_bytes() for name in ("result.json", "metrics.jsonl", "config.yaml")
    }
    nit = json.loads(files["result.json"])["nit"]
    assert json.loads(files["result.json"])["status"] == "converged"
    again = cli(
        "minimize", str(spec), "--out", "min", "--resume", *more, "--set", "minimize.options.ftol=1e-3"
    )
    assert again.exit_code == 0, again.output
    assert f"already converged at iteration {nit}" in " ".join(again.output.split()), again.output
    assert {name: (Path("min") / name).read_bytes() for name in files} == files


@pytest.mark.parametrize("command", ["train", "minimize"])
def test_an_interrupt_before_the_run_started_leaves_no_directory(
    spec: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # Ctrl-C after the directory was claimed, before the run wrote anything of its own: the same
    # command must simply run again (no "already exists", no resume without a checkpoint).
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(f"optrun.runner.{command}.record_config", interrupted)
        assert cli(command, str(spec), "-q", "--out", "run").exit_code == 130
    assert not Path("run").exists()
    assert cli(command, str(spec), "-q", "--out", "run").exit_code == 0


@pytest.mark.parametrize("damage", [b"\xff\xfe", b": : [\n", None])
def test_a_resume_names_a_damaged_config_yaml(spec: Path, damage: bytes | None) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0
    config = Path("run") / "config.yaml"
    config.write_bytes(damage) if damage is not None else config.unlink()
    again = cli("train", str(spec), "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert again.exit_code == 2, again.output
    said = " ".join(again.output.split())  # one line, however the console wrapped it
    assert "config.yaml is missing or damaged" in said and "--force" in said, said
    assert "Traceback" not in again.output


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0  # checkpoints at 10 and 20
    ckpts = Path("run") / "checkpoints"
    next(ckpts.glob("ckpt-20.data-*")).write_bytes(b"cut short")
    again = cli("train", str(spec), "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert "skipped damaged checkpoint(s) ckpt-20" in said and "resuming from ckpt-10" in said, said
    assert steps(Path("run")) == list(range(1, 31))  # cut back to step 10, then on to 30


def test_a_garbled_checkpoint_state_file_still_finds_the_checkpoints(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0
    (Path("run") / "checkpoints" / "checkpoint").write_text("garbage")
    again = cli("train", str(spec), "-q", "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert again.exit_code == 0, again.output
    assert steps(Path("run")) == list(range(1, 31))


def test_an_empty_checkpoint_state_file_is_set_aside(spec: Path) -> None:
    assert cli("train", str(spec), "-q", "--out", "run").exit_code == 0
    (Path("run") / "checkpoints" / "checkpoint").write_text("")  # TF's manager refuses to start on it
    again = cli("train", str(spec), "--out", "run", "--resume", "--set", "train.max_steps=30")
    assert again.exit_code == 0, again.output
    assert "set it aside as checkpoint.damaged" in " ".join(again.output.split())
    assert steps(Path("run")) == list(range(1, 31))


def test_a_checkpoint_the_state_file_never_listed_is_still_the_newest(tmp_path: Path) -> None:
    # A kill between writing a checkpoint and recording it in the state file: it is the newest.
    from optrun.runner.restore import restore_latest

    step = tf.Variable(0)
    checkpoint = tf.train.Checkpoint(step=step)
    manager = tf.train.CheckpointManager(checkpoint, str(tmp_path / "checkpoints"), max_to_keep=5)
    for n in (1, 2, 3):
        step.assign(n)
        manager.save(checkpoint_number=n)
    step.assign(4)
    checkpoint.write(str(tmp_path / "checkpoints" / "ckpt-4"))
    step.assign(0)
    said: list[str] = []
    assert restore_latest(checkpoint, manager, tmp_path, said.append).endswith("ckpt-4")
    assert int(step.numpy()) == 4 and not said


def test_a_finished_run_over_data_of_unknown_length_changes_nothing(spec: Path) -> None:
    # A generator's length is unknown to TensorFlow: the resume learns the run is finished only
    # when no batch is left, and must still leave every file as it was.
    (Path("g.py")).write_text(
        MODULE
        + "\ndef gen():\n"
        + "    return tf.data.Dataset.from_generator(lambda: iter([0.0] * 6),\n"
        + "        output_signature=tf.TensorSpec([], tf.float32))\n"
    )
    text = SPEC.replace("m.py", "g.py").replace("g.py:data", "g.py:gen")
    text = text.replace("max_steps: 20", "epochs: 2").replace("logging: {every_steps: 1}", "")
    Path("u.yaml").write_text(text + "logging: {every_steps: 1, tensorboard: true}\n")
    assert cli("train", "u.yaml", "-q", "--out", "run").exit_code == 0
    run = Path("run")
    assert json.loads((run / "result.json").read_text())["steps"] == 12  # 2 epochs of 6
    shutil.rmtree(run / "tensorboard")  # so that a new events file would show
    before = _files(run)
    again = cli("train", "u.yaml", "--out", "run", "--resume")
    assert again.exit_code == 0 and "already finished at step 12" in again.output, again.output
    after = _files(run)
    assert sorted(after) == sorted(before) and not (run / "tensorboard").exists()
    assert [k for k in before if after[k] != before[k] and not k.startswith(".")] == []


@pytest.mark.parametrize("command", ["train", "minimize"])
def test_a_failure_writing_the_finished_run_is_recorded_and_a_resume_writes_it(
    spec: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # The steps (iterations) are done when the disk fills up at the end: exit 1 with result.json
    # saying so, and --resume writes the run's end without training again.
    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    checkpoints = ("--set", "checkpoint.every_steps=1") if command == "minimize" else ()
    with monkeypatch.context() as patch:
        patch.setattr(
            f"optrun.runner.{command}.write_result"
            if command == "minimize"
            else "optrun.runner.train.write_train_result",
            full_disk,
        )
        out = cli(command, str(spec), "-q", "--out", "run", *checkpoints)
    assert out.exit_code == 1, out.output
    said = " ".join(out.output.split())
    assert "No space left on device" in said and "--resume" in said, said
    assert "Traceback" not in out.output and not (Path("run") / "result.json").exists()  # the disk refused it
    logged = steps(Path("run"))
    # Both write their end, from the last checkpoint, without another step or iteration.
    again = cli(command, str(spec), "-q", "--out", "run", "--resume", *checkpoints)
    assert again.exit_code == 0, again.output
    result = json.loads((Path("run") / "result.json").read_text())
    assert steps(Path("run")) == logged  # trained once, not again; no line twice
    if command == "train":
        assert result["status"] == "completed" and logged == list(range(1, 21)), result
    else:  # maxiter 5, the Rosenbrock start (3, -1): not converged in 5 iterations
        assert (result["status"], result["nit"], result["success"]) == ("budget_reached", 5, True), result
        assert "iteration limit reached" in result["message"] and logged[-1] == 5
    assert cli(command, str(spec), "-q", "--out", "run", "--resume", *checkpoints).exit_code == 0
    assert json.loads((Path("run") / "result.json").read_text()) == result  # nothing left to do


def test_a_generator_exit_from_user_code_is_a_failed_run_not_a_traceback(spec: Path) -> None:
    Path("m.py").write_text(
        MODULE + "\ndef data():\n    def gen():\n        for i in range(1000):\n"
        "            if i == 5:\n                raise GeneratorExit\n            yield 0.0\n"
        "    return tf.data.Dataset.from_generator(gen, output_signature=tf.TensorSpec([], tf.float32))\n"
    )
    out = cli("train", str(spec), "--out", "run", "--json")
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert json.loads(out.stdout)["success"] is False
    assert json.loads((Path("run") / "result.json").read_text())["status"] == "error"


def test_a_diverged_run_at_its_budget_is_not_finished_again_by_a_resume(spec: Path) -> None:
    # Every update non-finite and skipped: the run ends "diverged" at its budget, export withheld.
    Path("m.py").write_text(
        MODULE + "\ndef loss(w, batch=None):\n    return tf.reduce_sum(w) * float('nan')\n"
    )
    text = SPEC.replace("max_steps: 20", "max_steps: 4, on_nonfinite: skip")
    Path("d.yaml").write_text(text)
    assert cli("train", "d.yaml", "-q", "--out", "run").exit_code == 1
    before = _files(Path("run"))
    assert json.loads((Path("run") / "result.json").read_text())["status"] == "diverged"
    again = cli("train", "d.yaml", "--out", "run", "--resume")
    assert again.exit_code == 2 and "uses up its budget of 4 steps" in " ".join(again.stderr.split())
    after = _files(Path("run"))
    assert [k for k in before if after[k] != before[k] and not k.startswith(".")] == []  # nothing written


def test_a_resumed_minimize_with_nothing_to_do_exits_as_its_result_says(spec: Path) -> None:
    assert cli("minimize", str(spec), "-q", "--out", "min").exit_code == 0
    path = Path("min") / "result.json"
    result = json.loads(path.read_text())
    assert result["status"] == "budget_reached"
    path.write_text(json.dumps({**result, "status": "stalled", "success": False}))  # a stalled end
    again = cli("minimize", str(spec), "-q", "--out", "min", "--resume")
    assert again.exit_code == 1, again.output  # not 0: the run on disk did not succeed
    assert json.loads(path.read_text())["status"] == "stalled"  # and it is not written again


@pytest.mark.parametrize(
    ("resumed", "done", "budget", "status", "want"),
    [
        (True, 5, 5, "budget_reached!", "end"),  # ! its result older than its checkpoint
        (True, 5, 5, "converged!", "end"),
        (True, 3, 5, "budget_reached!", "run"),
        (False, 0, 5, None, "run"),  # a new run
        (True, 3, 5, "interrupted", "run"),  # budget left
        (True, 3, 5, "budget_reached", "run"),  # a larger budget given since
        (True, 3, None, None, "run"),  # no budget: the solver decides
        (True, 3, 5, "converged", "nothing"),
        (True, 5, 5, "budget_reached", "nothing"),
        (True, 5, 5, "stalled", "nothing"),
        (True, 5, 5, None, "end"),  # killed after its last iteration's checkpoint
        (True, 5, 5, "interrupted", "end"),
        (True, 5, 5, "error", "end"),  # a full disk while its end was written
        (True, 6, 4, "error", "nothing"),  # past a smaller budget: no end made up
        (True, 6, 4, "interrupted", "nothing"),  # (refused before, by resume_budget)
    ],
)
def test_what_a_resumed_minimize_has_left_to_do(
    resumed: bool, done: int, budget: int | None, status: str | None, want: str
) -> None:
    from optrun.runner.left_to_do import left_to_do

    stale = status is not None and status.endswith("!")
    before = None if status is None else {"status": status.rstrip("!")}
    assert left_to_do(resumed, done, budget, before, stale) == want


@pytest.mark.parametrize("command", ["train", "minimize"])
def test_a_resume_whose_own_end_failed_writes_it_over_the_earlier_result(
    spec: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    # Finished once; resumed with a larger budget, whose end the disk refuses: result.json is the
    # first session's. Resumed again, the run writes its own end, not "nothing to do".
    larger = "train.max_steps=30" if command == "train" else "minimize.options.maxiter=8"
    checkpoints = ("--set", "checkpoint.every_steps=1") if command == "minimize" else ()
    assert cli(command, str(spec), "-q", "--out", "run", *checkpoints).exit_code == 0

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        target = (
            "optrun.runner.minimize.write_result"
            if command == "minimize"
            else "optrun.runner.train.write_train_result"
        )
        patch.setattr(target, full_disk)
        assert (
            cli(command, str(spec), "-q", "--out", "run", "--resume", "--set", larger, *checkpoints).exit_code
            == 1
        )
    again = cli(command, str(spec), "-q", "--out", "run", "--resume", "--set", larger, *checkpoints)
    assert again.exit_code == 0, again.output
    result = json.loads((Path("run") / "result.json").read_text())
    assert (result.get("steps"), result.get("nit")) == ((30, None) if command == "train" else (None, 8)), (
        result
    )


def test_a_resumed_minimize_writes_the_final_metrics_line_its_end_left(spec: Path) -> None:
    # Logged every 2 iterations: the final line (iteration 5) is the end's. Killed before it.
    text = SPEC.replace("logging: {every_steps: 1}", "logging: {every_steps: 2}")
    Path("e.yaml").write_text(text)
    assert cli("minimize", "e.yaml", "-q", "--out", "m", "--set", "checkpoint.every_steps=1").exit_code == 0
    run = Path("m")
    assert steps(run) == [0, 2, 4, 5]
    (run / "result.json").unlink()
    (run / "metrics.jsonl").write_text(
        "".join(line + "\n" for line in (run / "metrics.jsonl").read_text().splitlines()[:-1])
    )
    again = cli("minimize", "e.yaml", "-q", "--out", "m", "--resume")
    assert again.exit_code == 0, again.output
    assert steps(run) == [0, 2, 4, 5]  # written once more, once
    assert json.loads((run / "result.json").read_text())["nit"] == 5


def test_a_failed_minimize_writes_its_result_through_a_signal(
    spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its loss is NaN at the start: the run fails (nonfinite); Ctrl-C comes while its checkpoint is saved.
    Path("n.py").write_text(
        MODULE.replace(
            "def loss(w, batch=None):",
            "def loss(w, batch=None):\n    return tf.reduce_sum(tf.math.log(w))\n\ndef old(w, batch=None):",
        )
    )
    Path("n.yaml").write_text(SPEC.replace("m.py", "n.py"))
    save = tf.train.CheckpointManager.save

    def interrupted_save(self: tf.train.CheckpointManager, *args: object, **kwargs: object) -> object:
        os.kill(os.getpid(), signal.SIGINT)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", interrupted_save)
    out = cli("minimize", "n.yaml", "-q", "--out", "run")
    assert out.exit_code == 1, out.output  # the run's failure, not the signal's
    assert json.loads((Path("run") / "result.json").read_text())["status"] == "nonfinite"


def test_a_resume_compares_the_method_the_run_used_and_its_full_batch_data(spec: Path) -> None:
    unnamed = ("--set", "minimize.method=null")
    assert cli("minimize", str(spec), "-q", "--out", "min", *unnamed).exit_code == 0
    # No method named: the run used L-BFGS-B (no constraints), so naming it is the same spec.
    more = ("--set", "minimize.options.maxiter=7")
    named = cli("minimize", str(spec), "-q", "--out", "min", "--resume", *more)
    assert named.exit_code == 0, named.output
    assert json.loads((Path("min") / "result.json").read_text())["nit"] == 7
    other = cli("minimize", str(spec), "--out", "min", "--resume", "--set", "minimize.method=CG")
    said = " ".join(other.output.split())
    assert other.exit_code == 2 and "at minimize.method (the run's: l-bfgs-b)" in said, said
    # minimize.data makes the loss a sum over the data: a resume under another one is another problem.
    (spec.parent / "finite.py").write_text(
        "import numpy as np, tensorflow as tf\n"
        "def data():\n    return tf.data.Dataset.from_tensor_slices(np.zeros(4, 'float32')).batch(2)\n"
    )
    finite = ("--set", "data.builder=finite.py:data")
    first = cli("minimize", str(spec), "-q", "--out", "fb", *finite, "--set", "minimize.data={}")
    assert first.exit_code == 0, first.output
    resume = ("minimize", str(spec), "--out", "fb", "--resume", "--set", "minimize.options.maxiter=8")
    moved = cli(*resume, *finite, "--set", "minimize.data={reduction: mean}")
    said = " ".join(moved.output.split())
    assert moved.exit_code == 2 and "at minimize.data" in said, said


def test_a_resume_of_a_run_whose_spec_had_no_minimize_section_names_the_method(spec: Path) -> None:
    (spec.parent / "bare.yaml").write_text("name: b\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    bare = str(spec.parent / "bare.yaml")
    assert cli("minimize", bare, "-q", "--out", "b", "--set", "checkpoint.every_steps=1").exit_code == 0
    other = cli("minimize", bare, "--out", "b", "--resume", "--set", "minimize.method=SLSQP")
    said = " ".join(other.output.split())
    assert other.exit_code == 2 and "at minimize.method (the run's: l-bfgs-b)" in said, said

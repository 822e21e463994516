"""More spec problems as data: every place optrun names is an attribute, never text read back.

1. The places that used to hand ``ConfigError`` / ``LoadError`` "path: message" text carry their
   path as data: a mirrored strategy's devices, an export the model cannot do, the strategy of a
   minimize spec, a data builder that gives no dataset, the compile cache, every reference that
   cannot be loaded or run. ``Problem.parse`` is made to fail here, so nothing leans on it.
2. A ``minimize.data`` per-batch constraint (or loss) that raises is named by its place.
3. ``optrun validate --json`` says whether each problem came from ``--set``, and a spec checked
   in a process of its own keeps that mark.
4. An interrupted worker that is not the chief says where the run's files are, not that it wrote them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from optrun.errors import ConfigError, LoadError, Problem, RunError
from optrun.spec.load import RawSpec, load_spec, read_spec
from optrun.spec.user_code import call_user, load_callable
from optrun_cli.main import app
from tests.conftest import findings, problem_lines

runner = CliRunner()

MODULE = """
import sys

import keras
import numpy as np
import tensorflow as tf

def build():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])

def variable():
    return tf.Variable([1.0, 2.0], name="v")

def data(n=32, batch=16):
    x = np.ones((n, 3), "float32")
    return tf.data.Dataset.from_tensor_slices((x, np.ones((n, 1), "float32"))).batch(batch)

def as_list():
    return [1, 2]

def loss(model, batch):
    x, y = batch
    return tf.reduce_mean((model(x) - y) ** 2)

def fine(model, batch):
    x, y = batch
    return tf.reduce_mean(model(x) - y)

def raises(model, batch):
    raise ValueError("no such column")

def bad_loss(model, batch):
    raise KeyError("label")

def own(model):
    return tf.reduce_sum(model.trainable_variables[0]) * 0.0

def fails(width):
    raise ValueError(f"bad width {width}")

def exits():
    sys.exit(3)
"""

TRAIN = (
    "name: t\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\nloss: mse\ntrain: {max_steps: 2}\n"
)
TYPO = "train.optimizer.args.learning_rat"
SAID = "SGD takes no argument 'learning_rat'; did you mean 'learning_rate'?"
FULL_BATCH = (
    "name: f\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\nloss: m.py:loss\n"
    "minimize:\n  constraints: {inequalities: [m.py:own]}\n"
    "  data: {reduction: mean, inequalities: [m.py:fine, m.py:raises]}\n"
)


@pytest.fixture(autouse=True)
def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """optrun's own errors never read a place back out of their text."""

    def refuse(cls: type[Problem], text: str) -> Problem:
        raise AssertionError(f"Problem.parse({text!r}): a place read back from text")

    monkeypatch.setattr(Problem, "parse", classmethod(refuse))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "m.py").write_text(MODULE)
    return tmp_path


def _spec(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    (folder / name).write_text(text)
    return folder / name


# 1. Each place is data.


def test_a_string_given_to_config_error_is_a_problem_of_the_whole_spec() -> None:
    error = ConfigError("s.yaml", ["a.b: looks placed (line 3)"])
    assert error.problems == [Problem("", "a.b: looks placed (line 3)")]
    assert str(error) == "s.yaml: 1 problem\n  - a.b: looks placed (line 3)"


def test_a_device_that_is_not_visible_is_a_problem_at_strategy_devices() -> None:
    from optrun.scale.strategy import mirrored_devices
    from optrun.spec.strategy import MirroredStrategySpec

    with pytest.raises(ConfigError) as caught:
        mirrored_devices(MirroredStrategySpec(kind="mirrored", devices=["GPU:7"]), "s.yaml")
    [problem] = caught.value.problems
    assert problem.path == "strategy.devices"
    assert problem.message.startswith("['GPU:7'] is not visible to TensorFlow; visible devices: CPU:0")
    assert str(caught.value).startswith("s.yaml: 1 problem\n  - strategy.devices: ['GPU:7'] is not visible")


def test_logical_cpus_too_late_is_placed_at_strategy_logical_cpus() -> None:
    import tensorflow as tf

    from optrun.scale.strategy import configure_logical_cpus

    tf.config.list_logical_devices()  # TensorFlow's devices are set up in this process now
    with pytest.raises(RunError) as caught:
        configure_logical_cpus(len(tf.config.list_logical_devices("CPU")) + 2)
    [problem] = caught.value.problems
    assert problem.path == "strategy.logical_cpus"
    assert str(caught.value) == f"strategy.logical_cpus: {problem.message}"


def test_an_export_the_model_cannot_do_is_a_problem_at_checkpoint_export() -> None:
    import tensorflow as tf

    from optrun.runner.common import check_export

    with pytest.raises(ConfigError) as caught:
        check_export(tf.Variable(1.0), "weights_h5", "s.yaml")
    assert caught.value.problems == [
        Problem(
            "checkpoint.export",
            "weights_h5 needs a Keras model; the builder returned ResourceVariable. "
            "Use 'saved_model' or 'none'.",
        )
    ]


def test_the_minimize_objective_places_its_problems(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.runner.objective import check_strategy, compile_cache_for, full_batch_data

    plain = load_spec(_spec(folder, "name: p\nmodel: {builder: m.py:variable}\nloss: m.py:own\n"))
    with pytest.raises(ConfigError) as caught:
        check_strategy(plain, "mirrored")
    [problem] = caught.value.problems
    assert problem.path == "strategy" and problem.message.startswith("minimize spreads work over replicas")
    listed = load_spec(_spec(folder, FULL_BATCH.replace("m.py:data", "m.py:as_list"), "list.yaml"))
    with pytest.raises(ConfigError) as caught:
        full_batch_data(listed)
    [problem] = caught.value.problems
    assert problem.path == "data.builder"
    assert problem.message.startswith("minimize.data needs a tf.data.Dataset")
    assert problem.message.endswith("m.py:as_list returned list")
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)  # no cache chosen yet in this process
    spaced = load_spec(_spec(folder, FULL_BATCH + "  compile_cache: my cache\n", "cache.yaml"))
    with pytest.raises(ConfigError) as caught:
        compile_cache_for(spaced)
    [problem] = caught.value.problems
    assert problem.path == "minimize.compile_cache" and "holds a space" in problem.message


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope.py:build", "nope.py:build: no such file "),
        ("m.py:missing", "m.py:missing: m.py has no function 'missing'; it defines: "),
        ("m.py:TRAIN", "m.py:TRAIN: m.py has no function 'TRAIN'"),
        ("no_such_pkg.mod:build", "no_such_pkg.mod:build: no module named 'no_such_pkg'"),
    ],
)
def test_a_reference_that_cannot_be_loaded_is_placed_at_its_key(folder: Path, ref: str, message: str) -> None:
    with pytest.raises(LoadError) as caught:
        load_callable(ref, folder, "minimize.data.inequalities[1]")
    [problem] = caught.value.problems
    assert problem.path == "minimize.data.inequalities[1]" and problem.message.startswith(message)
    assert str(caught.value) == f"minimize.data.inequalities[1]: {problem.message}"


def test_user_code_that_raises_or_exits_is_placed_at_its_key(folder: Path) -> None:
    with pytest.raises(LoadError) as caught:
        call_user(load_callable("m.py:fails", folder, "model.builder"), "m.py:fails", "model.builder", 3)
    assert caught.value.problems == [Problem("model.builder", "m.py:fails raised ValueError: bad width 3")]
    with pytest.raises(LoadError) as caught:
        call_user(load_callable("m.py:exits", folder, "data.builder"), "m.py:exits", "data.builder")
    assert caught.value.problems == [
        Problem("data.builder", "m.py:exits called sys.exit(3); user code must return or raise, not exit")
    ]


# 2. A per-batch constraint or loss that raises is named by its place.


def test_validate_names_the_per_batch_constraint_that_raised(folder: Path) -> None:
    spec = _spec(folder, FULL_BATCH)
    result = runner.invoke(app, ["validate", str(spec), "--json"])
    assert result.exit_code == 2, result.output
    [entry] = findings(result.stdout)
    assert entry == {
        "file": str(spec),
        "path": "minimize.data.inequalities[1]",
        "line": 7,
        "from_set": False,
        "severity": "error",
        "message": "m.py:raises raised on the start point: ValueError: no such column",
    }
    shown = runner.invoke(app, ["validate", str(spec)])
    assert problem_lines(shown.stderr)[1:] == [
        "  - minimize.data.inequalities[1]: m.py:raises raised on the start point: "
        "ValueError: no such column (line 7)"
    ]


def test_minimize_names_the_per_batch_constraint_and_loss_that_raised(folder: Path) -> None:
    run = runner.invoke(app, ["minimize", str(_spec(folder, FULL_BATCH)), "-q", "--out", str(folder / "a")])
    assert run.exit_code == 2, run.output
    assert run.stderr.strip() == (
        "error: minimize.data.inequalities[1] (m.py:raises) raised on the start point: "
        "ValueError: no such column"
    )
    text = FULL_BATCH.replace("loss: m.py:loss", "loss: m.py:bad_loss").replace(", m.py:raises", "")
    loss = _spec(folder, text, "loss.yaml")
    run = runner.invoke(app, ["minimize", str(loss), "-q", "--out", str(folder / "b")])
    assert run.exit_code == 2, run.output
    assert run.stderr.strip() == "error: loss (m.py:bad_loss) raised on the start point: KeyError: 'label'"
    assert not (folder / "a").exists() and not (folder / "b").exists()


# 3. --json says where a value came from.


def test_json_entries_say_whether_a_problem_came_from_set(folder: Path) -> None:
    spec = _spec(folder, TRAIN)
    given = runner.invoke(app, ["validate", str(spec), "--json", "--set", f"{TYPO}=0.1"])
    assert given.exit_code == 2, given.output
    [entry] = findings(given.stdout)
    assert (entry["path"], entry["line"], entry["from_set"]) == (TYPO, None, True)
    assert entry["message"] == f"{SAID} (from --set)"
    optimizer = "\n  max_steps: 2\n  optimizer: {args: {learning_rat: 1}}"
    typed = _spec(folder, TRAIN.replace("{max_steps: 2}", optimizer), "typo.yaml")
    in_file = runner.invoke(app, ["validate", str(typed), "--json"])
    [entry] = findings(in_file.stdout)
    assert (entry["path"], entry["line"], entry["from_set"], entry["message"]) == (TYPO, 7, False, SAID)
    fine = runner.invoke(app, ["validate", str(_spec(folder, TRAIN, "fine.yaml")), "--json"])
    assert fine.exit_code == 0, fine.output
    assert all(e["from_set"] is False for e in findings(fine.stdout))


def test_a_spec_checked_in_its_own_process_keeps_the_from_set_mark(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optrun_cli import isolated

    raw: RawSpec = read_spec(_spec(folder, TRAIN))
    said = [
        {"path": TYPO, "line": None, "from_set": True, "severity": "error", "message": "x"},
        {"path": "loss", "line": 4, "from_set": False, "severity": "error", "message": "y"},
        {"path": "name", "line": 1, "severity": "error", "message": "z"},  # an optrun from before the mark
    ]

    def child(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 2, json.dumps(said), "")

    monkeypatch.setattr(isolated.subprocess, "run", child)
    source, problems, reports = isolated.validate_elsewhere(raw, [f"{TYPO}=0.1"])
    assert (source, reports) == (raw.source, [])
    assert problems == [Problem(TYPO, "x", None, True), Problem("loss", "y", 4), Problem("name", "z", 1)]


# 4. An interrupted worker that is not the chief.


def _plan(chief: bool, task: str, chief_task: str = "worker:0") -> Any:
    from optrun.scale.strategy import Plan

    return Plan("multi_worker", None, chief, task, chief_task)


def test_the_chief_and_a_single_process_say_what_they_wrote() -> None:
    from optrun.runner.common import Interrupted

    for plan in (None, _plan(True, "worker:0"), _plan(True, "chief:0", "chief:0")):
        error = Interrupted(130, Path("runs/x"), plan)
        assert str(error) == "interrupted; checkpoint and result.json written to runs/x"


def test_a_worker_that_is_not_the_chief_points_at_the_chiefs_run_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from optrun.runner.common import Interrupted
    from optrun_cli.errors import error_boundary

    error = Interrupted(143, Path("runs/x"), _plan(False, "worker:1"))
    assert (error.exit_code, error.out_dir) == (143, Path("runs/x"))
    assert str(error) == (
        "interrupted; worker:1 keeps no files (a worker other than the chief writes into a temporary "
        "directory, removed on exit); the chief (worker:0) writes the run's checkpoints and result.json "
        "to runs/x"
    )
    assert "written to" not in str(error)
    with pytest.raises(typer.Exit) as stopped, error_boundary():
        raise error
    assert stopped.value.exit_code == 143
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("interrupted: worker:1 keeps no files")
    assert "the chief (worker:0) writes the run's checkpoints and result.json to runs/x" in err


def test_the_chief_is_named_as_tf_config_names_it() -> None:
    from optrun.scale.strategy import chief_task

    workers = {"worker": ["a:1", "b:1"]}
    assert chief_task({"cluster": workers, "task": {"type": "worker", "index": 1}}) == "worker:0"
    with_chief = {"cluster": {"chief": ["c:1"], **workers}, "task": {"type": "worker", "index": 0}}
    assert chief_task(with_chief) == "chief:0"


def test_a_following_worker_interrupted_mid_run_says_so(tmp_path: Path) -> None:
    from optrun.runner.common import Interrupted
    from optrun.runner.follower import follow
    from optrun.runner.warning_log import WarningLog
    from optrun.runner.workers import Place

    class Channel:
        def follow(self) -> Any:
            raise KeyboardInterrupt

    place = Place(tmp_path / "scratch", tmp_path / "run")
    with pytest.raises(Interrupted) as caught:
        follow(Channel(), None, None, place, _plan(False, "worker:2"), "none", WarningLog())  # type: ignore[arg-type]
    assert caught.value.exit_code == 130
    assert str(caught.value).startswith("interrupted; worker:2 keeps no files")
    assert str(caught.value).endswith(f"writes the run's checkpoints and result.json to {tmp_path / 'run'}")

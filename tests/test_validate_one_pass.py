"""``optrun validate`` finds every problem in one pass: schema, references, arguments, names, shapes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import Problem
from optrun.spec.load import dotted
from optrun_cli.main import app
from tests.conftest import findings, problem_lines

runner = CliRunner()

MODULE = """
import keras
import numpy as np
import tensorflow as tf

def build(units=4):
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(units, name="hidden"), keras.layers.Dense(1, name="out")]
    )

def data(n=8, batch=4):
    x = np.ones((n, 3), "float32")
    return tf.data.Dataset.from_tensor_slices((x, np.ones((n, 1), "float32"))).batch(batch)

def loss(model, batch):
    x, y = batch
    return tf.reduce_mean((model(x) - y) ** 2)

def vars3(n=3):
    return [tf.Variable(tf.ones([n], tf.float64), name="w")]

def sq(model):
    return tf.reduce_sum(model[0] ** 2)

def vec(model):
    return model[0] - 0.5

def boom(model):
    raise RuntimeError("no such column")

def two(model, extra):
    return model[0][0]
"""

# Mistakes of every stage, each on its own line.
TRAIN = """\
name: bad name
seed: -1
model:
  builder: m.py:build
  params: {units: 4}
data:
  builder: m.py:data
  params: {n: 8, batchsize: 4}
loss: m.py:loss
train:
  epoch: 3
  optimizer:
    name: Adamm
    args: {learning_rate: 0.1}
    wrappers:
      - {kind: variable_clipping, vars: [out/kernel], dims: [0], max_norm: 1.0}
      - {kind: variable_clipping, vars: [hiden/kernel], dims: [0], max_norm: 1.0}
      - {kind: moving_avg}
checkpoint: {every_steps: 0}
"""

MINIMIZE = """\
name: p
model: {builder: m.py:vars3}
loss: m.py:sq
minimize:
  method: SLSQP
  constraints:
    equalities: [m.py:boom]
    inequalities:
      - m.py:vec
      - m.py:two
      - m.py:missing
    bounds: {ww: [0, 1], w: [0, 1]}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("one_pass")
    (root / "m.py").write_text(MODULE)
    (root / "train.yaml").write_text(TRAIN)
    (root / "minimize.yaml").write_text(MINIMIZE)
    (root / "good.yaml").write_text(
        "name: good\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\nloss: m.py:loss\n"
        "train: {max_steps: 2}\n"
    )
    return root


def test_dotted_paths_and_problem_text_round_trip() -> None:
    assert dotted(("minimize", "constraints", "inequalities", 2)) == "minimize.constraints.inequalities[2]"
    problem = Problem("train.optimizer.wrappers[1].vars", "names 'x'", 17)
    assert str(problem) == "train.optimizer.wrappers[1].vars: names 'x' (line 17)"
    assert Problem.parse(str(problem)) == problem
    assert Problem.parse("no such file: /a.yaml") == Problem("", "no such file: /a.yaml")


def test_every_stage_in_one_run_sorted_by_line(folder: Path) -> None:
    result = runner.invoke(app, ["validate", str(folder / "train.yaml"), "--json"])
    assert result.exit_code == 2
    got = [(p["line"], p["path"], p["message"]) for p in findings(result.stdout)]
    assert [line for line, _, _ in got] == sorted(line for line, _, _ in got)
    assert got == [
        (
            1,
            "name",
            "'bad name' is not a run name: use letters, digits, '_', '.' and '-', starting with a "
            "letter or digit",
        ),
        (2, "seed", "Input should be greater than or equal to 0; got -1"),
        (8, "data.params.batchsize", "m.py:data takes no argument 'batchsize'; did you mean 'batch'?"),
        (11, "train.epoch", "unknown key; did you mean 'epochs'?"),
        (13, "train.optimizer.name", "not a Keras optimizer: 'Adamm'; did you mean 'Adam'?"),
        (
            17,
            "train.optimizer.wrappers[1].vars",
            "names 'hiden/kernel', which matches no variable; known names: 'sequential/hidden/kernel', "
            "'sequential/hidden/bias', 'sequential/out/kernel', 'sequential/out/bias'",
        ),
        (18, "train.optimizer.wrappers[2].kind", "unknown kind 'moving_avg'; did you mean 'moving_average'?"),
        (19, "checkpoint.every_steps", "Input should be greater than 0; got 0"),
    ]
    assert all(
        p["file"] == str(folder / "train.yaml") and p["severity"] == "error" for p in findings(result.stdout)
    )


def test_minimize_names_each_constraint_by_its_place(folder: Path) -> None:
    result = runner.invoke(app, ["validate", str(folder / "minimize.yaml")])
    assert result.exit_code == 2
    assert problem_lines(result.stderr)[1:] == [
        "  - minimize.constraints.equalities[0]: m.py:boom raised RuntimeError: no such column (line 7)",
        "  - minimize.constraints.inequalities[0]: inequalities[0] must return a scalar; got shape [3]. "
        "Write one constraint per element (for v[0] - 1. and v[1] - 1., two constraints). (line 9)",
        "  - minimize.constraints.inequalities[1]: m.py:two cannot be called as two(model): "
        "missing a required argument: 'extra' (line 10)",
        "  - minimize.constraints.inequalities[2]: m.py:missing: m.py has no function 'missing'; "
        "it defines: boom, build, data, loss, sq, two, vars3, vec (line 11)",
        "  - minimize.constraints.bounds.ww: names 'ww', which matches no variable; "
        "known names: 'w' (line 12)",
    ]
    assert problem_lines(result.stderr)[0] == f"error: {folder / 'minimize.yaml'}: 5 problems"


def test_several_files_and_quiet(folder: Path) -> None:
    both = runner.invoke(app, ["validate", str(folder / "good.yaml"), str(folder / "minimize.yaml")])
    assert both.exit_code == 2
    assert "good.yaml: train checks" in both.stdout  # the summary table's title
    assert "5 problems" in both.stderr and "good.yaml" not in both.stderr
    quiet = runner.invoke(app, ["validate", str(folder / "minimize.yaml"), "-q"])
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (2, "", "")
    unknown = runner.invoke(app, ["validate", str(folder / "good.yaml"), "--set", "model.params.width=2"])
    assert problem_lines(unknown.stderr)[1] == (
        "  - model.params.width: m.py:build takes no argument 'width'; known arguments: units (from --set)"
    )
    fine = runner.invoke(app, ["validate", str(folder / "good.yaml"), "-q"])
    assert (fine.exit_code, fine.stdout, fine.stderr) == (0, "", "")
    missing = runner.invoke(app, ["validate", str(folder / "nope.yaml"), str(folder / "good.yaml"), "--json"])
    assert missing.exit_code == 2
    first, passed = findings(missing.stdout)
    assert first["file"] == str(folder / "nope.yaml") and first["message"].startswith("no such file")
    assert (passed["file"], passed["severity"]) == (str(folder / "good.yaml"), "info")


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        # An unknown key beside the optimizer's name: the name is still checked.
        (
            "{max_steps: 2, optimizer: {name: Adamm, learning_rate: 0.1}}",
            [
                ("train.optimizer.learning_rate", "unknown key; learning_rate goes in train.optimizer.args"),
                ("train.optimizer.name", "not a Keras optimizer: 'Adamm'; did you mean 'Adam'?"),
            ],
        ),
        # A field's problem beside a missing length: both, as each alone is said.
        (
            "{optimizer: {name: SGD, args: {learning_rate: 0}}}",
            [
                ("train", "set train.max_steps or train.epochs"),
                ("train.optimizer.args", "learning_rate must be > 0; got 0"),
            ],
        ),
    ],
    ids=["name-beside-unknown-key", "length-beside-bad-rate"],
)
def test_a_problem_does_not_hide_another_in_the_same_section(
    folder: Path, train: str, expected: list[tuple[str, str]]
) -> None:
    spec = folder / "hidden.yaml"
    spec.write_text(
        "name: h\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\nloss: m.py:loss\n"
        f"train: {train}\n"
    )
    result = runner.invoke(app, ["validate", str(spec), "--json"])
    assert result.exit_code == 2, result.output
    assert sorted((p["path"], p["message"]) for p in findings(result.stdout)) == expected


def test_no_file_checks_both_built_in_defaults() -> None:
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    entries = findings(result.stdout)
    assert [(e["file"], e["message"]) for e in entries] == [
        ("built-in train experiment", "train checks passed"),
        ("built-in minimize experiment", "minimize checks passed"),
    ]
    # The seed's example: loss (v0 - 3)^2 + (v1 - 3)^2 at v = (10, 10) ... per optrun/defaults/minimize.yaml.
    assert entries[1]["report"]["loss"] == pytest.approx(98.0)


def test_subprocess_several_files_json(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "optrun", "validate", "good.yaml", "minimize.yaml", "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    entries = findings(done.stdout)
    assert [e["severity"] for e in entries] == ["info"] + ["error"] * 5
    keys = ("file", "from_set", "line", "message", "path", "severity")
    assert {tuple(sorted(e)) for e in entries[1:]} == {keys}
    assert "Traceback" not in done.stderr


def test_every_sample_config_in_one_command_whatever_cpus_they_split(tmp_path: Path) -> None:
    # configs/*.yaml as the README runs it, plus a copy of the mirrored sample asking for
    # 3 logical CPUs where another asks for 2: one process can split its CPU only once.
    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "configs", tmp_path / "configs")
    shutil.copytree(root / "examples", tmp_path / "examples")
    configs = tmp_path / "configs"
    mirrored = (configs / "pinn_ode_mirrored.yaml").read_text()
    assert "logical_cpus: 2" in mirrored and "global_batch_size: 1024" in mirrored
    files = sorted(str(p) for p in configs.glob("*.yaml"))
    three = configs / "three_cpus.yaml"
    three.write_text(
        mirrored.replace("logical_cpus: 2", "logical_cpus: 3").replace(
            "global_batch_size: 1024", "global_batch_size: 1023"
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "optrun", "validate", *files, str(three), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    entries = findings(done.stdout)
    assert {e["file"] for e in entries} == {*files, str(three)}, done.stderr
    passed = [e for e in entries if e["severity"] == "info"]
    assert len(passed) == len(files), [e for e in entries if e["severity"] == "error"]
    assert [e["report"]["replicas"] for e in passed if e["file"].endswith("mirrored.yaml")] == [2]
    # The 3-CPU copy was checked in a process of its own: 1,023 rows are not its batch.
    errors = [e for e in entries if e["severity"] == "error"]
    assert [(e["file"], e["path"]) for e in errors] == [(str(three), "data.global_batch_size")], errors
    assert done.returncode == 2

"""A spec's problems travel as data: path, line and --set mark are attributes, never read back from text.

1. An error about a place in the spec carries it (``OptrunError.problems``); a message that merely
   looks like "a.b: ... (line 3)" is reported as it is, at the place it came from.
2. ``optrun train`` says a spec's problem as ``optrun validate`` does: at its key, with its line
   or "(from --set)".
3. A strategy without ``data.global_batch_size`` takes the dataset's static batch dimension, and
   says so; a dataset without one is refused with both ways to state it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import ConfigError, LoadError, Problem, UnknownVariableError, naming
from optrun.runner.collector import Collector
from optrun.spec.load import read_spec
from optrun_cli.main import app
from tests.conftest import findings, problem_lines

runner = CliRunner()
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

MODULE = """
import keras
import numpy as np
import tensorflow as tf

def build():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])

def data(n=256, batch=64, drop=False):
    x = np.ones((n, 3), "float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.ones((n, 1), "float32")))
    return dataset.batch(batch, drop_remainder=drop)

def looks_placed():
    raise ValueError("a.b: looks like a path (line 3)")
"""

SPEC = "name: t\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\nloss: mse\ntrain: {max_steps: 2}\n"
TYPO = "train.optimizer.args.learning_rat"
SAID = f"  - {TYPO}: SGD takes no argument 'learning_rat'; did you mean 'learning_rate'?"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "m.py").write_text(MODULE)
    return tmp_path


def _spec(folder: Path, text: str = SPEC, name: str = "spec.yaml") -> str:
    (folder / name).write_text(text)
    return str(folder / name)


# 1. Places are data.


def test_a_foreign_message_that_looks_placed_stays_at_its_own_place(folder: Path) -> None:
    collector = Collector(read_spec(_spec(folder)))
    collector.add_error(ValueError("a.b: looks like a path (line 3)"), ("loss",))
    assert collector.problems == [Problem("loss", "ValueError: a.b: looks like a path (line 3)", 4)]


def test_an_optrun_error_carries_its_place(folder: Path) -> None:
    error = LoadError.at("model.builder", "m.py:x raised KeyError: c.d: odd (line 9)")
    assert str(error) == "model.builder: m.py:x raised KeyError: c.d: odd (line 9)"
    assert error.problems == [Problem("model.builder", "m.py:x raised KeyError: c.d: odd (line 9)")]
    collector = Collector(read_spec(_spec(folder)))
    collector.add_error(error, ())  # the error's place wins over where it was caught
    assert collector.problems == [Problem("model.builder", "m.py:x raised KeyError: c.d: odd (line 9)", 2)]


def test_a_problem_in_a_config_error_keeps_its_text(folder: Path) -> None:
    collector = Collector(read_spec(_spec(folder), [f"{TYPO}=0.1"]))
    collector.add_error(ConfigError("x", [Problem(TYPO, "e.f: g (line 3)")]), ("train",))
    assert collector.problems == [Problem(TYPO, "e.f: g (line 3) (from --set)", None, from_set=True)]


def test_naming_places_an_error_at_the_name_it_was_given() -> None:
    error = naming(UnknownVariableError("w.vars names 'x', which matches no variable"), "w.vars")
    assert error.problems == [Problem("w.vars", "names 'x', which matches no variable")]
    other = naming(UnknownVariableError("something else"), "w.vars")
    assert other.problems == ()


def test_validate_reports_a_user_message_as_it_is(folder: Path) -> None:
    spec = _spec(folder, SPEC.replace("m.py:build", "m.py:looks_placed"))
    result = runner.invoke(app, ["validate", spec])
    assert result.exit_code == 2, result.output
    assert problem_lines(result.stderr)[1:] == [
        "  - model.builder: m.py:looks_placed raised ValueError: a.b: looks like a path (line 3) (line 2)"
    ]


# 2. optrun train says it as validate does.


def test_train_reports_an_optimizer_typo_from_set_as_validate_does(folder: Path) -> None:
    spec = _spec(folder)
    said = [f"error: {spec}: 1 problem", f"{SAID} (from --set)"]
    checked = runner.invoke(app, ["validate", spec, "--set", f"{TYPO}=0.1"])
    assert problem_lines(checked.stderr) == said
    run = runner.invoke(app, ["train", spec, "-q", "--out", str(folder / "run"), "--set", f"{TYPO}=0.1"])
    assert run.exit_code == 2, run.output
    assert problem_lines(run.stderr) == said
    assert not (folder / "run").exists()


def test_train_reports_an_optimizer_typo_in_the_file_with_its_line(folder: Path) -> None:
    spec = _spec(
        folder, SPEC.replace("{max_steps: 2}", "\n  max_steps: 2\n  optimizer: {args: {learning_rat: 1}}")
    )
    run = runner.invoke(app, ["train", spec, "-q", "--out", str(folder / "run")])
    assert run.exit_code == 2, run.output
    assert problem_lines(run.stderr) == [f"error: {spec}: 1 problem", f"{SAID} (line 7)"]


# 3. The global batch from the dataset's static batch dimension.


def test_mirrored_train_takes_the_global_batch_from_the_dataset(folder: Path) -> None:
    text = SPEC.replace("m.py:data}", "m.py:data, params: {drop: true}}") + (
        "strategy: {kind: mirrored, logical_cpus: 2}\n"
    )
    spec, out = _spec(folder, text), folder / "run"
    proc = subprocess.run(  # logical CPUs are set once per process: a process of its own
        [sys.executable, "-m", "optrun", "train", spec, "--out", str(out), "--json", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    written = json.loads((out / "result.json").read_text())
    for found in (result, written):
        assert (found["status"], found["replicas"], found["global_batch"]) == ("completed", 2, 64)
        assert found["global_batch_from"] == "dataset"


def test_validate_with_the_strategy_flag_says_where_the_global_batch_came_from(folder: Path) -> None:
    spec = _spec(folder)
    done = runner.invoke(
        app, ["validate", spec, "--strategy", "mirrored", "--set", "data.params.drop=true", "--json"]
    )
    assert done.exit_code == 0, done.output
    [info] = [e for e in findings(done.stdout) if e["severity"] == "info"]
    assert (info["report"]["global_batch"], info["report"]["global_batch_from"]) == (64, "dataset")
    stated = runner.invoke(
        app, ["validate", spec, "--strategy", "mirrored", "--set", "data.global_batch_size=64", "--json"]
    )
    [info] = [e for e in findings(stated.stdout) if e["severity"] == "info"]
    assert info["report"]["global_batch_from"] == "data.global_batch_size"


def test_a_dataset_without_a_static_batch_is_refused_with_both_fixes(folder: Path) -> None:
    spec = _spec(folder)
    run = runner.invoke(app, ["train", spec, "-q", "--strategy", "mirrored", "--out", str(folder / "run")])
    assert run.exit_code == 2, run.output
    said = run.stderr.replace("\n", " ")
    assert "data.global_batch_size: required with strategy.kind mirrored" in said
    assert "batch dimension is not static" in said
    assert "set data.global_batch_size: 64, or batch with drop_remainder=True" in said
    assert not (folder / "run").exists()
    checked = runner.invoke(app, ["validate", spec, "--strategy", "mirrored"])
    assert checked.exit_code == 2 and "set data.global_batch_size: 64" in checked.stderr.replace("\n", " ")

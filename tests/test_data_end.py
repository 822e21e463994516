"""Training data that runs out: one-shot iterators are rebuilt per epoch; running out is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun_cli.main import app

MODULE = """
import numpy as np
import tensorflow as tf

CALLS = []

def build():
    return tf.Variable([0.0], name='w')

def loss(w, batch):
    return tf.reduce_sum(tf.square(w - batch))

def generator():
    CALLS.append(1)
    return (np.float32(1.0) for _ in range(10))     # a one-shot iterator: 10 batches

def once():
    CALLS.append(1)
    n = 10 if len(CALLS) == 1 else 0                 # a source that is spent after one pass
    return (np.float32(1.0) for _ in range(n))
"""


def run(tmp: Path, builder: str, train: str, name: str) -> tuple[int, dict]:
    src = tmp / f"{name}-src"  # a module file of its own: optrun imports each file once per process
    src.mkdir()
    (src / "m.py").write_text(MODULE)
    spec = src / "spec.yaml"
    optimizer = "{name: SGD, args: {learning_rate: 0.1}}"
    spec.write_text(
        f"name: {name}\nmodel: {{builder: m.py:build}}\nloss: m.py:loss\n"
        f"data: {{builder: m.py:{builder}}}\ntrain: {{{train}, optimizer: {optimizer}}}\n"
    )
    result = CliRunner().invoke(app, ["train", str(spec), "-q", "--out", str(tmp / name)])
    return result.exit_code, json.loads((tmp / name / "result.json").read_text())


@pytest.mark.parametrize(("train", "steps"), [("epochs: 3", 30), ("max_steps: 25", 25)])
def test_one_shot_iterators_are_rebuilt_each_pass(tmp_path: Path, train: str, steps: int) -> None:
    code, result = run(tmp_path, "generator", train, "gen")
    assert code == 0 and result["status"] == "completed" and result["steps"] == steps


def test_data_that_runs_out_is_an_error_unless_the_spec_says_stop(tmp_path: Path) -> None:
    code, result = run(tmp_path, "once", "epochs: 3", "out")
    assert code == 1 and result["status"] == "data_exhausted" and result["steps"] == 10
    code, result = run(tmp_path, "once", "epochs: 3, on_data_end: stop", "stop")
    assert code == 0 and result["status"] == "completed" and result["steps"] == 10

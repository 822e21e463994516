"""What ``optrun validate`` still checks while a part is broken, and one message from validate
and the run for a loss or constraint that is not a scalar.

Each test is a user report: a Keras loss name unchecked because another key was wrong, a
``--set loss=...`` typo placed at a line that holds another value, a data builder unchecked
because the model builder failed, a note that blamed loading for a wrong ``model.params`` key,
a non-scalar loss said three ways (TensorFlow's reshape text under ``minimize.data``), a train
spec's ``(model, batch)`` loss given to ``optrun minimize`` without a hint, and a mirrored
spec's replicas changed by another file's ``logical_cpus``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import Problem, placed
from optrun_cli.main import app
from tests.conftest import findings, module_folder, problem_lines, write_spec

runner = CliRunner()

MODULE = """
import keras
import numpy as np
import tensorflow as tf

def build(units=4):
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(units), keras.layers.Dense(1)])

def broken(units=4):
    raise RuntimeError("cannot build")

def data(n=32, batch=16):
    x = np.ones((n, 3), "float32")
    return tf.data.Dataset.from_tensor_slices((x, np.ones((n, 1), "float32"))).batch(batch)

def no_table(n=32):
    raise ValueError("no such table")

def loss(model, batch):
    x, y = batch
    return tf.reduce_mean((model(x) - y) ** 2)

def vector_loss(model, batch):
    x, y = batch
    return (model(x) - y) ** 2

def row_eq(model, batch):  # one value per row: not one number per batch
    x, y = batch
    return model(x)[:, 0] - y[:, 0]

def three():
    return [tf.Variable(tf.ones([3], tf.float64), name="w")]

def squares(model):  # not reduced
    return model[0] ** 2
"""

TRAIN = "name: t\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\n"
SCALAR = "Reduce it, e.g. with tf.reduce_mean or tf.reduce_sum."
BATCH = "(None: a size known only when it runs, e.g. the batch's)"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return module_folder(tmp_path, monkeypatch, MODULE)


_spec = write_spec


def _errors(result: object) -> list[tuple[str, int | None, str]]:
    entries = findings(result.stdout)  # type: ignore[attr-defined]
    return [(e["path"], e["line"], e["message"]) for e in entries if e["severity"] == "error"]


def _skipped(result: object) -> list[str]:
    entries = json.loads(result.stdout)  # type: ignore[attr-defined]
    return [e["message"] for e in entries if e["severity"] == "skipped"]


def _run(folder: Path, command: str, spec: str, *extra: str) -> list[str]:
    """The problem lines ``optrun train`` or ``minimize`` prints for a spec it refuses (exit 2)."""
    result = runner.invoke(app, [command, spec, "-q", "--out", str(folder / "run"), *extra])
    assert result.exit_code == 2, result.output
    assert not (folder / "run").exists()
    return problem_lines(result.stderr)


# 1. One pass: a Keras loss's name needs neither a valid schema elsewhere nor a model.


def test_keras_loss_name_checked_while_other_keys_are_wrong(folder: Path) -> None:
    spec = _spec(
        folder,
        "name: t\nmodel:\n  builder: m.py:build\n  params: {unitz: 4}\ndata: {builder: m.py:data}\n"
        "loss: mean_sqared_error\ntrain: {max_steps: 2}\ncheckpoint: {export: weights_h5x}\n",
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    assert _errors(result) == [
        ("model.params.unitz", 4, "m.py:build takes no argument 'unitz'; did you mean 'units'?"),
        # `loss: <name>` is the key the user wrote: not loss.name, which the file does not hold.
        ("loss", 6, "not a Keras loss: 'mean_sqared_error'; did you mean 'mean_squared_error'?"),
        (
            "checkpoint.export",
            8,
            "Input should be 'auto', 'none', 'weights_h5' or 'saved_model'; got 'weights_h5x'",
        ),
    ]
    # The builder loads: what keeps it from being called is model.params.
    assert _skipped(result) == [
        "not checked: the variables' names and bounds, the loss, gradients and constraints at the start "
        "point, and the dry run: they need the model, and model.builder cannot be called with the "
        "arguments model.params gives"
    ]


def test_a_loss_name_mapping_keeps_its_name_key(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: {name: hubr}\ntrain: {max_steps: 2}\n")
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert _errors(result) == [("loss.name", 4, "not a Keras loss: 'hubr'; did you mean 'huber'?")]


def test_loss_name_typo_from_set_is_marked_from_set_not_placed_at_the_files_line(folder: Path) -> None:
    # Line 4 of the file says `loss: mse`, which is fine: the typo came from --set.
    spec = _spec(folder, TRAIN + "loss: mse\ntrain: {max_steps: 2}\n")
    expected = (
        "  - loss: not a Keras loss: 'mean_sqared_error'; did you mean 'mean_squared_error'? (from --set)"
    )
    checked = runner.invoke(app, ["validate", spec, "--set", "loss=mean_sqared_error"])
    assert checked.exit_code == 2
    assert problem_lines(checked.stderr)[1:] == [expected]
    assert _run(folder, "train", spec, "--set", "loss=mean_sqared_error")[1:] == [expected]
    # A mapping in the file replaced by --set: its loss.name is the override's too.
    mapped = _spec(folder, TRAIN + "loss:\n  name: mse\ntrain: {max_steps: 2}\n")
    checked = runner.invoke(app, ["validate", mapped, "--set", "loss={name: hubr}"])
    assert problem_lines(checked.stderr)[1:] == [
        "  - loss: not a Keras loss: 'hubr'; did you mean 'huber'? (from --set)"
    ]


def test_a_key_under_a_section_set_by_set_is_from_set() -> None:
    lines = {("loss",): 4, ("loss", "name"): 5}
    assert placed(("loss", "name"), "bad", lines, {"loss": "--set"}) == Problem(
        "loss.name", "bad (from --set)", None, True
    )
    assert placed(("loss", "name"), "bad", lines, {"seed": "--seed"}) == Problem("loss.name", "bad", 5)
    assert placed(("lossy",), "bad", {("lossy",): 2}, {"loss": "--set"}) == Problem("lossy", "bad", 2)
    # A flag that stands for an override is named as given.
    flags = {"strategy.kind": "--strategy", "seed": "--seed"}
    assert placed(("strategy", "kind"), "bad", {("strategy",): 3}, flags) == Problem(
        "strategy.kind", "bad (from --strategy)", None, True
    )
    assert placed(("strategy",), "bad", {}, flags) == Problem("strategy", "bad (from --strategy)", None, True)


@pytest.mark.parametrize("section", ["train: {max_steps: 2}", "minimize: {data: {reduction: mean}}"])
def test_data_builder_checked_while_the_model_builder_fails(folder: Path, section: str) -> None:
    spec = _spec(
        folder,
        "name: t\nmodel: {builder: m.py:broken}\ndata: {builder: m.py:no_table}\nloss: m.py:loss\n"
        f"{section}\n",
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert _errors(result) == [
        ("model.builder", 2, "m.py:broken raised RuntimeError: cannot build"),
        ("data.builder", 3, "m.py:no_table raised ValueError: no such table"),
    ]
    assert _skipped(result)[0].endswith("they need the model, and model.builder failed")


# 2. A loss or constraint that is not one number: one message, at its key, from validate and the run.


def test_vector_train_loss_one_message_from_validate_and_train(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:vector_loss\ntrain: {max_steps: 2}\n")
    expected = f"  - loss: the loss must return a scalar; got shape [16, 1]. {SCALAR} (line 4)"
    assert problem_lines(runner.invoke(app, ["validate", spec]).stderr)[1:] == [expected]
    assert _run(folder, "train", spec)[1:] == [expected]


@pytest.mark.parametrize("jit", ["", ", jit_compile: true"])
def test_vector_full_batch_loss_one_message_from_validate_and_minimize(folder: Path, jit: str) -> None:
    # minimize.data sums the loss over batches of (the dataset's) unknown length: shape [None, 1].
    spec = _spec(folder, TRAIN + f"loss: m.py:vector_loss\nminimize: {{data: {{reduction: mean}}{jit}}}\n")
    expected = f"  - loss: the loss must return a scalar; got shape [None, 1] {BATCH}. {SCALAR} (line 4)"
    checked = runner.invoke(app, ["validate", spec])
    assert problem_lines(checked.stderr)[1:] == [expected]
    assert "reshape" not in checked.stderr
    assert _run(folder, "minimize", spec)[1:] == [expected]


def test_vector_full_batch_constraint_at_its_place(folder: Path) -> None:
    spec = _spec(
        folder,
        TRAIN + "loss: m.py:loss\nminimize:\n  method: SLSQP\n  data: {equalities: [m.py:row_eq]}\n",
    )
    expected = (
        f"  - minimize.data.equalities[0]: m.py:row_eq must return a scalar; got shape [None] {BATCH}. "
        "Write one constraint per element (for v[0] - 1. and v[1] - 1., two constraints). (line 7)"
    )
    assert problem_lines(runner.invoke(app, ["validate", spec]).stderr)[1:] == [expected]
    assert _run(folder, "minimize", spec)[1:] == [expected]


def test_vector_loss_of_the_model_at_loss_in_validate_and_minimize(folder: Path) -> None:
    spec = _spec(folder, "name: p\nmodel: {builder: m.py:three}\nloss: m.py:squares\nminimize: {}\n")
    expected = f"  - loss: the loss must return a scalar; got shape [3]. {SCALAR} (line 3)"
    assert problem_lines(runner.invoke(app, ["validate", spec]).stderr)[1:] == [expected]
    assert _run(folder, "minimize", spec)[1:] == [expected]  # not at minimize (line 4)


# 3. A train spec whose loss takes (model, batch), given to optrun minimize.


def test_batch_loss_given_to_minimize_says_what_to_change(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:loss\ntrain: {max_steps: 2}\n")
    assert _run(folder, "minimize", spec)[1:] == [
        "  - loss: m.py:loss takes (model, batch), but minimize calls the loss with the model alone "
        "unless the spec gives minimize.data. Add minimize.data (e.g. minimize: {data: {reduction: "
        "mean}}, or --set 'minimize.data={reduction: mean}') to average the loss over every batch at "
        "each point, or train on the batches with optrun train (line 4)"
    ]
    fixed = runner.invoke(
        app,
        ["minimize", spec, "-q", "--maxiter", "2", "--out", "ok", "--set", "minimize.data={reduction: mean}"],
    )
    assert fixed.exit_code == 0, fixed.output  # the advice works as written


# 4. Several files: each checked with the devices a run of it would see.


def test_a_mirrored_spec_without_logical_cpus_is_not_split_by_another_file(folder: Path) -> None:
    mirrored = (
        "name: p\nmodel: {builder: m.py:build}\n"
        "data: {builder: m.py:data, params: {batch: 32}, global_batch_size: 32}\n"
        "loss: m.py:loss\nminimize: {data: {reduction: sum}}\nstrategy: {kind: mirrored%s}\n"
    )
    (folder / "split.yaml").write_text(mirrored % ", logical_cpus: 2")
    (folder / "plain.yaml").write_text(mirrored % "")
    replicas = {}
    for order in (["split.yaml", "plain.yaml"], ["plain.yaml", "split.yaml", "plain.yaml"]):
        done = subprocess.run(
            [sys.executable, "-m", "optrun", "validate", *order, "--json"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        replicas[len(order)] = [(e["file"], e["report"]["replicas"]) for e in json.loads(done.stdout)]
    # TensorFlow sees one physical CPU: a run of plain.yaml mirrors over 1 device, split.yaml over 2.
    assert replicas == {
        2: [("split.yaml", 2), ("plain.yaml", 1)],
        3: [("plain.yaml", 1), ("split.yaml", 2), ("plain.yaml", 1)],
    }

"""A run that fails mid-way says why: the op's own message, the user's file and line, and -v.

TensorFlow's runtime errors start with "Graph execution error:"; the message that
matters (an assertion's, a py_function's exception) and where the op was made come after.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from typer.testing import CliRunner

from optrun.causes import TRACE_HINT, Frame, user_frame
from optrun.errors import cause_of, describe
from optrun_cli.main import app

runner = CliRunner()
ASSERTION = 'message="loss blew up"'

MODEL = """\
import keras
import tensorflow as tf


def model():
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="d")])


def data():
    return [(tf.constant([[1.0]]), tf.constant([[5.0]]))] * 40


def guarded(m, batch):
    x, y = batch
    value = tf.reduce_mean(tf.square(m(x) - y))
    tf.debugging.assert_less(value, 2.4, message="loss blew up")
    return value


calls = [0]


def fetch(value):
    calls[0] += 1
    if calls[0] == 31:
        raise ValueError("database connection lost")
    return value


def remote(m, batch):
    x, y = batch
    value = tf.py_function(fetch, [tf.reduce_mean(tf.square(m(x) - y))], tf.float32)
    value.set_shape([])
    return value


def vector():
    return tf.Variable([0.0, 0.0], name="v")


def drifting(v):
    tf.debugging.assert_less(v[0], 2.4, message="loss blew up")  # the minimum is at v = 5
    return tf.reduce_sum(tf.square(v - 5.0))
"""


def line_of(text: str, occurrence: int = 0) -> int:
    """The 1-based line of MODEL holding ``text`` (its ``occurrence``-th such line)."""
    return [n for n, line in enumerate(MODEL.splitlines(), start=1) if text in line][occurrence]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "culprit.py").write_text(MODEL)
    return tmp_path


def train_spec(project: Path, loss: str) -> Path:
    spec = project / f"{loss}.yaml"
    spec.write_text(
        f"name: {loss}\nmodel: {{builder: culprit.py:model}}\ndata: {{builder: culprit.py:data}}\n"
        f"loss: culprit.py:{loss}\ntrain: {{max_steps: 40}}\ncheckpoint: {{export: none}}\n"
    )
    return spec


def failed_run(*args: str) -> tuple[str, str, str]:
    """``(stderr, the --json error, result.json's error)`` of a run that must fail with exit code 1."""
    out = "run"
    result = runner.invoke(app, [*args, "--out", out, "--json"])
    assert result.exit_code == 1, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    recorded: dict[str, Any] = json.loads((Path(out) / "result.json").read_text())
    assert shown["success"] is False and recorded["status"] == "error"
    return result.stderr, shown["error"], recorded["error"]


def test_a_failed_assert_in_train_names_its_message_file_and_line(project: Path) -> None:
    where = f"culprit.py:{line_of(ASSERTION)} in guarded"
    for text in failed_run("train", str(train_spec(project, "guarded"))):
        assert "step 1: InvalidArgumentError: assertion failed: [loss blew up]" in text
        assert f"(at {where})" in text and TRACE_HINT in text
        assert "Graph execution error" not in text


def test_a_py_function_raising_later_names_the_python_exception(project: Path) -> None:
    where = f"culprit.py:{line_of('raise ValueError')} in fetch"  # where it raised, not where it was called
    for text in failed_run("train", str(train_spec(project, "remote"))):
        assert f"step 31: ValueError: database connection lost (at {where}); {TRACE_HINT}" in text


def test_a_failed_assert_in_minimize_names_its_message_file_and_line(project: Path) -> None:
    spec = project / "m.yaml"
    spec.write_text(
        "name: m\nmodel: {builder: culprit.py:vector}\nloss: culprit.py:drifting\n"
        "minimize: {options: {maxiter: 20}}\ncheckpoint: {export: none}\n"
    )
    where = f"culprit.py:{line_of(ASSERTION, 1)} in drifting"
    for text in failed_run("minimize", str(spec)):
        assert "InvalidArgumentError: assertion failed: [loss blew up]" in text
        assert f"(at {where})" in text and TRACE_HINT in text
    # The record says which method ran (the unconstrained default) and for how long.
    recorded = json.loads(Path("run/result.json").read_text())
    assert recorded["method"] == "L-BFGS-B" and recorded["time_s"] > 0


def test_verbose_prints_the_trace_and_drops_the_hint(project: Path) -> None:
    result = runner.invoke(app, ["train", str(train_spec(project, "guarded")), "--out", "v", "-q", "-v"])
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("failed: step 1:") and "loss blew up" in last and TRACE_HINT not in last
    assert TRACE_HINT in json.loads((project / "v" / "result.json").read_text())["error"]


# Captured from a train step under strategy {kind: mirrored, logical_cpus: 2}: one error per replica.
MIRRORED = (
    "Graph execution error:\n\n"
    "Detected at node assert_less/Assert/AssertGuard/Assert defined at (most recent call last):\n"
    '  File "/usr/lib/python3.11/threading.py", line 1002, in _bootstrap\n\n'
    '  File "/home/me/optrun/runner/distribute.py", line 80, in replica_step\n\n'
    '  File "/home/me/project/model.py", line 17, in loss\n\n'
    "Detected at node assert_less/Assert/AssertGuard/Assert defined at (most recent call last):\n"
    '  File "/home/me/project/model.py", line 17, in loss\n\n'
    "2 root error(s) found.\n"
    "  (0) INVALID_ARGUMENT:  assertion failed: [loss blew up] [x (Mean:0) = ] [33.42]\n"
    "\t [[{{node assert_less/Assert/AssertGuard/Assert}}]]\n\t [[Identity_1/_16]]\n"
    "  (1) INVALID_ARGUMENT:  assertion failed: [loss blew up] [x (Mean:0) = ] [33.42]\n"
    "\t [[{{node assert_less/Assert/AssertGuard/Assert}}]]\n"
    "0 successful operations.\n0 derived errors ignored. [Op:__inference_step_137]"
)


def test_one_replica_error_of_several_is_named_with_its_frame() -> None:
    cause = cause_of(tf.errors.InvalidArgumentError(None, None, MIRRORED))
    assert cause.message == "InvalidArgumentError: assertion failed: [loss blew up] [x (Mean:0) = ] [33.42]"
    assert (cause.file, cause.line) == ("/home/me/project/model.py", 17)
    assert str(cause).endswith("(at model.py:17 in loss)")


def test_eager_op_errors_lose_tensorflows_node_names() -> None:
    error = tf.errors.InvalidArgumentError(
        None,
        None,
        "{{function_node __wrapped__MatMul_device_/job:localhost}} Matrix size-incompatible "
        "[Op:MatMul] name: ",
    )
    assert describe(error) == "InvalidArgumentError: Matrix size-incompatible"


def test_code_that_calls_optrun_is_not_the_culprit() -> None:
    import optrun

    ours = str(Path(optrun.__file__).parent / "runner" / "train.py")
    script = Frame("/home/me/script.py", 3, "<module>")
    assert user_frame([script, Frame(ours, 1, "run")]) is None  # the failure is inside optrun (or TF)
    loss = Frame("/home/me/model.py", 9, "loss")
    assert user_frame([script, Frame(ours, 1, "run"), loss]) == loss
    assert user_frame([Frame("/x/site-packages/tensorflow/ops.py", 1, "f"), loss]) == loss


# TensorFlow's staged error when a Keras layer refuses a batch (a retrace mid-run), colours and all.
STAGED = (
    "in user code:\n\n"
    '    File "/home/me/project/train_loss.py", line 7, in loss  *\n'
    "        return tf.reduce_mean(model(x))\n"
    '    File "/venv/lib/python3.11/site-packages/keras/src/layers/input_spec.py", line 239, in check\n'
    "        raise ValueError(\n\n"
    "    ValueError: Exception encountered when calling Sequential.call().\n    \n"
    "    \x1b[1mInput 0 of layer 'dense' is incompatible with the layer: expected axis -1 of input shape "
    "to have value 2, but received input with shape (4, 3)\x1b[0m\n    \n"
    "    Arguments received by Sequential.call():\n"
    "      • inputs=tf.Tensor(shape=(4, 3), dtype=float32)\n"
    "      • kwargs=<class 'inspect._empty'>\n"
)


def test_a_staged_keras_error_names_the_layers_complaint_not_its_arguments() -> None:
    cause = cause_of(ValueError(STAGED))
    assert cause.message == (
        "ValueError: Input 0 of layer 'dense' is incompatible with the layer: expected axis -1 of "
        "input shape to have value 2, but received input with shape (4, 3)"
    )
    assert str(cause.at) == "train_loss.py:7 in loss"


def test_a_python_error_in_a_data_generator_names_its_line(project: Path) -> None:
    (project / "feed.py").write_text(
        "import tensorflow as tf\n"
        "def rows():\n"
        "    for i in range(10):\n"
        "        if i == 4:\n"
        "            raise RuntimeError('sensor offline')\n"
        "        yield tf.ones([1, 1]), tf.ones([1, 1])\n"
    )
    spec = project / "g.yaml"
    spec.write_text(
        "name: g\nmodel: {builder: culprit.py:model}\ndata: {builder: feed.py:rows}\nloss: mse\n"
        "train: {max_steps: 10}\ncheckpoint: {export: none}\n"
    )
    for text in failed_run("train", str(spec)):
        assert f"step 5: RuntimeError: sensor offline (at feed.py:5 in rows); {TRACE_HINT}" in text

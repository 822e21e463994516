"""Bad input gets a placed, actionable refusal before anything is written: a train spec without
data under validate, YAML left open, scipy options scipy would only refuse mid-run, a spec read
from a pipe, and ``--json`` carrying each problem as data."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

import pytest
import tensorflow as tf
from typer.testing import CliRunner

from optrun.runner.outcome import CONVERGED, INFEASIBLE, classify
from optrun.runner.reporting import MetricsWriter
from optrun_cli.main import app

MODULE = """
import tensorflow as tf

def vector():
    return tf.Variable([3.0, -1.0], dtype=tf.float64, name="vector")

def sum_of_squares(v):
    return tf.reduce_sum(tf.square(v - 1.0))
"""
SPEC = """name: s
model: {builder: m.py:vector}
loss: m.py:sum_of_squares
minimize:
  method: L-BFGS-B
  options: {maxiter: 5, ftol: -1}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(MODULE)
    return tmp_path


def cli(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin)


def test_validate_names_the_missing_data_of_a_train_spec(folder: Path) -> None:
    (folder / "t.yaml").write_text(
        "name: t\nmodel: {builder: m.py:vector}\nloss: mse\ntrain: {max_steps: 2}\n"
    )
    out = cli("validate", "t.yaml")
    assert out.exit_code == 2 and "data: required here" in out.output and "AssertionError" not in out.output


def test_an_open_quote_is_placed_where_it_opens(folder: Path) -> None:
    (folder / "q.yaml").write_text("name: q\nmodel:\n  builder: 'm.py:vector\nloss: mse\n\n")
    out = cli("validate", "q.yaml", "--json")
    (problem,) = json.loads(out.stdout)["problems"] if "problems" in out.stdout else [None]
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "while scanning a quoted scalar that starts here (line 3)" in said, said
    assert problem is None or problem["line"] == 3


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        ((), "do not work with L-BFGS-B: ERROR: FACTR < 0 (line 6)"),
        (("--set", "minimize.options.ftol=abc"), "options['ftol'] must be a number; got 'abc' (from --set)"),
        (
            ("--set", "minimize.options.ftol=1e-9", "--maxiter", "100000000000000000000"),
            "from 1 to 2147483647",
        ),
    ],
)
def test_options_scipy_takes_only_mid_run_are_refused_up_front(
    folder: Path, flags: tuple[str, ...], said: str
) -> None:
    (folder / "s.yaml").write_text(SPEC)
    out = cli("minimize", "s.yaml", "--out", "run", *flags)
    assert out.exit_code == 2 and said in " ".join(out.output.split()), out.output
    assert not (folder / "run").exists()  # nothing written


def test_json_failures_carry_each_problem_as_data(folder: Path) -> None:
    (folder / "s.yaml").write_text(SPEC)
    out = cli("minimize", "s.yaml", "--out", "run", "--json")
    answer = json.loads(out.stdout)
    assert answer["exit_code"] == 2 and answer["success"] is False
    (problem,) = answer["problems"]
    assert (problem["path"], problem["line"], problem["from_set"]) == ("minimize.options.ftol", 6, False)
    assert problem["message"].endswith("do not work with L-BFGS-B: ERROR: FACTR < 0")


def test_a_null_count_option_is_a_problem_at_its_key(folder: Path) -> None:
    (folder / "s.yaml").write_text(SPEC.replace("ftol: -1", "ftol: 1e-9"))
    out = cli("minimize", "s.yaml", "--out", "run", "--json", "--set", "minimize.options.maxfun=")
    assert out.exit_code == 2, out.output
    (problem,) = json.loads(out.stdout)["problems"]
    assert (problem["path"], problem["from_set"]) == ("minimize.options.maxfun", True)
    assert problem["message"].startswith("options {'maxfun': None} do not work with L-BFGS-B")
    assert not (folder / "run").exists()


def test_a_spec_read_from_a_pipe(folder: Path) -> None:
    # As `optrun validate <(envsubst < spec.yaml)` gives it: a named pipe, written as it is read.
    os.mkfifo(folder / "pipe")
    text = SPEC.replace("ftol: -1", "ftol: 1e-9")
    writer = threading.Thread(target=lambda: (folder / "pipe").write_text(text))
    writer.start()
    out = cli("validate", str(folder / "pipe"))
    writer.join()
    assert out.exit_code == 0, out.output


def test_a_run_name_too_long_for_a_folder_is_refused(folder: Path) -> None:
    (folder / "s.yaml").write_text(SPEC.replace("ftol: -1", "ftol: 1e-9"))
    out = cli("validate", "s.yaml", "--set", f"name={'a' * 300}")
    assert out.exit_code == 2 and "name" in out.output and "100" in out.output


def test_trust_constr_within_the_feasibility_tolerance_converged() -> None:
    message = "Constraint violation exceeds 'gtol'"
    assert classify("trust-constr", 4, False, message, fun=1.0, violation=2.4e-7) == CONVERGED
    assert classify("trust-constr", 4, False, message, fun=1.0, violation=1e-3) == INFEASIBLE


def test_tensorboard_takes_a_loss_beyond_float32(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "metrics.jsonl", tmp_path / "tb")
    writer.write(1, loss=1e40)  # float64 holds it; TensorBoard's float32 shows it as inf
    writer.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["loss"] == 1e40
    (path,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    values = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        event = tf.compat.v1.Event.FromString(record)
        values += [float(tf.make_ndarray(v.tensor)) for v in event.summary.value]
    assert values == [math.inf]


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--set", "loss={name: mse, arg: {}}"), "loss.arg: unknown key; did you mean 'args'? (from --set)"),
        (
            ("--set", "minimize.constraints.bounds={vector: {low: 0, hihg: 1}}"),
            "bounds.vector.hihg: unknown key; did you mean 'high'?",
        ),
        (("--set", "minimize.options.maxiter=0"), "(from --set)"),
    ],
)
def test_misspelt_keys_in_short_forms_and_values_set_below_a_section(
    folder: Path, flags: tuple[str, ...], said: str
) -> None:
    (folder / "s.yaml").write_text(SPEC.replace("ftol: -1", "ftol: 1e-9"))
    out = cli("validate", "s.yaml", *flags)
    assert out.exit_code == 2 and said in " ".join(out.output.split()), out.output


def test_a_bad_value_set_below_a_checked_section_is_blamed_on_the_flag(folder: Path) -> None:
    (folder / "t.yaml").write_text(
        "name: t\nmodel: {builder: m.py:vector}\nloss: mse\ndata: {builder: m.py:vector}\n"
        "train:\n  max_steps: 2\n  optimizer: {name: SGD, args: {learning_rate: 0.1}}\n"
    )
    out = cli("validate", "t.yaml", "--set", "train.optimizer.args.learning_rate=-1")
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "learning_rate must be > 0; got -1 (from --set)" in said, said


def test_a_misspelt_kind_gets_the_one_meant_at_its_line(folder: Path) -> None:
    (folder / "t.yaml").write_text(
        "name: t\nmodel: {builder: m.py:vector}\nloss: mse\ntrain:\n  max_steps: 2\n  optimizer:\n"
        "    wrappers:\n      - kind: moving_averages\n        average_decay: 0.9\n"
    )
    out = cli("validate", "t.yaml")
    said = " ".join(out.output.split())
    expected = "wrappers[0].kind: unknown kind 'moving_averages'; did you mean 'moving_average'? (line 8)"
    assert out.exit_code == 2 and expected in said, said


@pytest.mark.parametrize("value", ["true", "yes", "on"])
def test_a_boolean_where_a_number_goes_is_refused(folder: Path, value: str) -> None:
    (folder / "s.yaml").write_text(SPEC.replace("ftol: -1", "ftol: 1e-9"))
    out = cli("validate", "s.yaml", "--set", f"checkpoint.keep={value}")
    said = " ".join(out.output.split())
    assert out.exit_code == 2 and "checkpoint.keep: True is a boolean, not a number (from --set)" in said, (
        said
    )


TRAIN_MODULE = """
import numpy as np
import tensorflow as tf
import keras

def vector():
    return tf.Variable([3.0, -1.0], name="vector")

def of_the_model_alone(v):
    return tf.reduce_sum(tf.square(v - 1.0))

def dense():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

def inputs_only():
    return tf.data.Dataset.from_tensor_slices(np.ones((8, 2), np.float32)).batch(4).repeat()

def ones():
    return tf.data.Dataset.from_tensors(np.float32(0.0)).repeat()
"""


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            "model: {builder: t.py:vector}\nloss: t.py:of_the_model_alone\ndata: {builder: t.py:ones}\n",
            "loss: t.py:of_the_model_alone cannot be called as of_the_model_alone(model, batch): too many "
            "positional arguments (line 3)",
        ),
        (
            "model: {builder: t.py:dense}\nloss: mse\ndata: {builder: t.py:inputs_only}\n",
            "data.builder: the Keras loss 'mse' takes (x, y) batches, and data.builder gives single tensors "
            "of shape (4, 2): return (x, y) pairs, or give loss as a function of (model, batch) (line 4)",
        ),
    ],
    ids=["one-argument loss", "batches without targets"],
)
def test_train_says_what_validate_says_before_writing_anything(folder: Path, spec: str, said: str) -> None:
    (folder / "t.py").write_text(TRAIN_MODULE)
    (folder / "t.yaml").write_text(f"name: t\n{spec}train: {{max_steps: 2, optimizer: {{name: SGD}}}}\n")
    for command in ("validate", "train"):
        out = cli(command, "t.yaml", "--out", "run") if command == "train" else cli(command, "t.yaml")
        text = " ".join(out.output.split())
        assert out.exit_code == 2 and said in text and "Traceback" not in text, (command, text)
    assert not Path("run").exists()


@pytest.mark.parametrize(
    ("spec", "extra", "said"),
    [
        (
            "name: 123\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n",
            (),
            "name: YAML reads 123 here as a number; put it in quotes to make it text (line 1)",
        ),
        (
            "name: 2024-01-01\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n",
            (),
            "name: YAML reads '2024-01-01' here as a date; put it in quotes to make it text (line 1)",
        ),
        (
            "name: s\nmodel: {builder: m.py}\nloss: m.py:sum_of_squares\n",
            (),
            "model.builder: 'm.py' names no function; write 'path/to/file.py:function' (relative to "
            "the spec file) or 'package.module:function' (line 2)",
        ),
        (
            "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\nminimize: {method: SLSQP}\n",
            ("--set", "minimize.constraints.equalities.0=m.py:sum_of_squares"),
            "minimize.constraints.equalities: takes a list, and the spec has none here for --set to index "
            "into; set the whole list: --set \"minimize.constraints.equalities=['m.py:sum_of_squares']\" "
            "(from --set)",
        ),
        (
            "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n"
            "minimize:\n  compile_cache: ~\n",
            (),
            "minimize.compile_cache: takes a directory, 'auto' or 'none'; got null (YAML's ~): write none to "
            "turn it off (line 5)",
        ),
        (
            "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\ncheckpoint: {export: no}\n",
            (),
            "checkpoint.export: Input should be 'auto', 'none', 'weights_h5' or 'saved_model'; YAML read the "
            "value given here as a boolean (as it reads on, off, yes, no, true and false) (line 4)",
        ),
        (
            "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n"
            "checkpoint: {keep: 2001-12-14}\n",
            (),
            "checkpoint.keep: Input should be a valid integer; got 2001-12-14, which YAML reads as a date "
            "(line 4)",
        ),
        (
            "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n"
            "checkpoint: {every_seconds: 1:30:00}\n",
            (),
            "checkpoint.every_seconds: Input should be a valid number, unable to parse string as a number; "
            "got '1:30:00': give a plain number (seconds, for a time) (line 4)",
        ),
    ],
    ids=[
        "a number for text",
        "a date for text",
        "a reference without a function",
        "an index into no list",
        "null for the compile cache",
        "a boolean for a choice",
        "a date for a number",
        "a time for seconds",
    ],
)
def test_schema_refusals_say_what_to_write(
    folder: Path, spec: str, extra: tuple[str, ...], said: str
) -> None:
    (folder / "s.yaml").write_text(spec)
    out = cli("validate", "s.yaml", *extra, "--json")
    problems = [p for p in json.loads(out.stdout) if p["severity"] == "error"]
    assert out.exit_code == 2 and len(problems) == 1, problems  # no second problem from the same value
    text = " ".join(cli("minimize", "s.yaml", *extra, "--out", "run").output.split())
    assert said in text and not Path("run").exists(), text


def test_overrides_given_as_one_string_are_refused_not_split_into_characters() -> None:
    from optrun.errors import InvalidTypeError
    from optrun.spec.load import load_spec

    with pytest.raises(InvalidTypeError, match=r"not one string: pass \['seed=3'\]"):
        load_spec(None, overrides="seed=3")  # type: ignore[arg-type]
    assert load_spec(None, overrides=["seed=3"]).spec.seed == 3


BOUNDED = """
import tensorflow as tf

def pair():
    return {"a": tf.Variable([3.0, -1.0], name="a"), "b": tf.Variable(2.0, name="b")}

def loss(m):
    return tf.reduce_sum(tf.square(m["a"] - 1.0)) + m["b"] ** 2
"""


@pytest.mark.parametrize(
    ("bounds", "said"),
    [
        (
            "a: {low: [0, 1, 2]}",
            "minimize.constraints.bounds.a: lower bound of 'a' has shape (3,), which does not broadcast "
            "to the variable's shape (2,); give a scalar or an array of shape (2,). (line 8)",
        ),
        (
            "a: [2, 1]",
            "minimize.constraints.bounds.a: bounds of 'a' are empty at index (0,): low 2.0 > high 1.0; "
            "swap or widen them. (line 8)",
        ),
        (
            "a: {low: .inf}",
            "minimize.constraints.bounds.a: lower bound of 'a' is inf at index (0,); no value "
            "satisfies it. Use None for no lower bound. (line 8)",
        ),
    ],
    ids=["wrong shape", "empty", "infinite lower bound"],
)
def test_a_bound_that_does_not_fit_is_placed_at_its_key(folder: Path, bounds: str, said: str) -> None:
    (folder / "g.py").write_text(BOUNDED)
    (folder / "g.yaml").write_text(
        "name: g\nmodel: {builder: g.py:pair}\nloss: g.py:loss\nminimize:\n  method: SLSQP\n"
        f"  constraints:\n    bounds:\n      {bounds}\n      b: [0, 5]\n"
    )
    for command in ("validate", "minimize"):
        out = cli(command, "g.yaml", *(("--out", "run") if command == "minimize" else ()))
        text = " ".join(out.output.split())
        assert out.exit_code == 2 and said in text, (command, text)
    assert not Path("run").exists()


def test_quote_advice_only_where_any_text_goes(folder: Path) -> None:
    (folder / "s.yaml").write_text(
        "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n"
        "strategy: {kind: mirrored, devices: [0, 1]}\nminimize: {method: L-BFGS-B}\n"
    )
    out = " ".join(cli("validate", "s.yaml", "--set", "name=123").output.split())
    assert "name: YAML reads 123 as a number; quote it inside the value: --set \"name='123'\"" in out, out
    assert "strategy.devices[0]: Input should be a valid string; got 0" in out and "quotes" not in out, out


def test_an_index_mapping_written_in_the_file_gets_no_set_advice(folder: Path) -> None:
    (folder / "s.yaml").write_text(
        "name: s\nmodel: {builder: m.py:vector}\nloss: m.py:sum_of_squares\n"
        "minimize:\n  method: SLSQP\n  constraints:\n    equalities: {0: m.py:sum_of_squares}\n"
    )
    out = " ".join(cli("validate", "s.yaml").output.split())
    assert "minimize.constraints.equalities: Input should be a valid list (line 7)" in out, out


LOSSES = """
import numpy as np
import tensorflow as tf

def vector():
    return tf.Variable([3.0, -1.0], name="vector")

def per_batch(v, batch):
    return tf.reduce_sum(tf.square(v - 1.0))

def of_the_model(v):
    return tf.reduce_sum(tf.square(v - 1.0))

def zeros():
    return tf.data.Dataset.from_tensors(np.float32(0.0)).repeat()
"""


@pytest.mark.parametrize(("command", "loss"), [("train", "per_batch"), ("minimize", "of_the_model")])
def test_a_spec_with_both_sections_runs_the_loss_its_command_calls(
    folder: Path, command: str, loss: str
) -> None:
    (folder / "l.py").write_text(LOSSES)
    (folder / "l.yaml").write_text(
        f"name: l\nmodel: {{builder: l.py:vector}}\nloss: l.py:{loss}\ndata: {{builder: l.py:zeros}}\n"
        "train: {max_steps: 2, optimizer: {name: SGD}}\nminimize: {method: L-BFGS-B, options: {maxiter: 2}}\n"
    )
    out = cli(command, "l.yaml", "-q", "--out", "run")
    assert out.exit_code == 0, out.output
    other = "minimize" if command == "train" else "train"
    refused = " ".join(cli(other, "l.yaml", "-q", "--out", "run2").output.split())
    said = {
        "minimize": f"loss: l.py:{loss} takes (model, batch), but minimize calls the loss with the model",
        "train": f"loss: l.py:{loss} cannot be called as {loss}(model, batch)",
    }
    assert said[other] in refused, refused  # the other command's form


def test_batches_of_unknown_shape_without_targets_are_named(folder: Path) -> None:
    (folder / "g.py").write_text(
        "import numpy as np, tensorflow as tf, keras\n"
        "def dense():\n    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "def unknown():\n"
        "    return tf.data.Dataset.from_generator(lambda: iter([np.ones((4, 2), np.float32)] * 3),\n"
        "        output_signature=tf.TensorSpec(None, tf.float32))\n"
    )
    (folder / "g.yaml").write_text(
        "name: g\nmodel: {builder: g.py:dense}\nloss: mse\ndata: {builder: g.py:unknown}\n"
        "minimize: {data: {}, options: {maxiter: 2}}\n"
    )
    out = " ".join(cli("minimize", "g.yaml", "-q", "--out", "run").output.split())
    assert "takes (x, y) batches, and data.builder gives single tensors: return (x, y) pairs" in out, out

"""``optrun validate`` finds what a run would stop on, in one pass, and says it in the spec's words.

Each test is a user report: a non-finite start value, a vector loss, a train spec given to
minimize, the data builder called once, an optimizer argument misspelt (in the file or with
--set), and problems the spec alone decides reported even while the model builder is broken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun_cli.main import app
from tests.conftest import findings, module_folder, problem_lines, write_spec

runner = CliRunner()

MODULE = """
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

def build():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="out")])

def data(n=32, batch=16):
    # Each call leaves a line: the tests count the calls.
    with open(Path(__file__).with_name("calls.txt"), "a") as out:
        out.write("data\\n")
    x = np.ones((n, 3), "float32")
    return tf.data.Dataset.from_tensor_slices((x, np.ones((n, 1), "float32"))).batch(batch)

def loss(model, batch):
    x, y = batch
    return tf.reduce_mean((model(x) - y) ** 2)

def nan_loss(model, batch):
    return loss(model, batch) * float("nan")

def sqrt_loss(model, batch):  # finite, but d sqrt(u)/du at u = 0 is inf
    return tf.sqrt(tf.reduce_sum(model.trainable_variables[0] * 0.0))

def vector_loss(model, batch):
    x, y = batch
    return (model(x) - y) ** 2

def batch_eq(model, batch):
    x, y = batch
    return tf.reduce_mean(model(x) - y)

def vector():
    return tf.Variable([1.0, 2.0], name="v")

def sq(v):
    return tf.reduce_sum(v * v)

def nan_sq(v):
    return sq(v) + float("nan")

def norm(v):  # d|v|/dv = v/|v|: nan at v = 0
    return tf.norm(v * 0.0)

def inf_cons(v):
    return v[0] + float("inf")

def fine_cons(v):
    return v[0]

def flat_cons(v):  # no gradient through NumPy: a zero Jacobian row
    return tf.numpy_function(lambda a: a[0] - 1.0, [v], tf.float32)

def log_walk(v):  # the minimum is at v = -2, but log(v) is nan below 0: the search walks into it
    return tf.reduce_sum(tf.square(v + 2.0)) + 0.0 * tf.reduce_sum(tf.math.log(v))
"""

TRAIN = "name: t\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data}\n"
FULL_BATCH = ["--set", "minimize.data={reduction: mean}"]  # the advice given to a train spec


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return module_folder(tmp_path, monkeypatch, MODULE)


_spec = write_spec


def _problems(result: object) -> list[dict[str, object]]:
    """The --json entries that are errors."""
    return [e for e in findings(result.stdout) if e["severity"] == "error"]  # type: ignore[attr-defined]


def _calls(folder: Path) -> int:
    return len((folder / "calls.txt").read_text().splitlines()) if (folder / "calls.txt").exists() else 0


# 1. A loss (or constraint, or gradient) that is not finite where the run starts.


def test_nan_first_batch_loss_is_an_error_at_loss(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:nan_loss\ntrain: {max_steps: 2}\n")
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    [problem] = _problems(result)
    assert (problem["path"], problem["line"]) == ("loss", 4)
    message = str(problem["message"])
    assert message.startswith("the loss is nan on the first batch; the run would stop at step 1")
    assert "train.on_nonfinite: skip" in message


def test_nan_first_batch_loss_with_skip_is_a_warning(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:nan_loss\ntrain: {max_steps: 2, on_nonfinite: skip}\n")
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 0, result.output
    warnings = [e for e in findings(result.stdout) if e["severity"] == "warning"]
    assert [(w["path"], w["message"]) for w in warnings] == [
        ("loss", "the loss is nan on the first batch; train.on_nonfinite: skip drops such updates")
    ]


def test_a_nonfinite_gradient_on_the_first_batch_is_named(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:sqrt_loss\ntrain: {max_steps: 2}\n")
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    [problem] = _problems(result)
    assert problem["path"] == "loss"
    assert "the loss's gradient for 'sequential/out/kernel' is" in str(problem["message"])


def test_nan_loss_at_the_start_point(folder: Path) -> None:
    spec = _spec(folder, "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:nan_sq\n")
    result = runner.invoke(app, ["validate", spec])
    assert result.exit_code == 2, result.output
    assert problem_lines(result.stderr)[1].startswith(
        "  - loss: the loss is nan at the start point; minimize would stop at its first evaluation."
    )
    assert problem_lines(result.stderr)[-1].endswith("(line 3)")


def test_nonfinite_constraints_each_at_their_place(folder: Path) -> None:
    spec = _spec(
        folder,
        "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:sq\nminimize:\n  method: SLSQP\n"
        "  constraints:\n    equalities: [m.py:inf_cons]\n"
        "    inequalities: [m.py:fine_cons, m.py:inf_cons]\n",
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    assert [(p["path"], p["line"], str(p["message"]).split(";")[0]) for p in _problems(result)] == [
        ("minimize.constraints.equalities[0]", 7, "m.py:inf_cons is inf at the start point"),
        ("minimize.constraints.inequalities[1]", 8, "m.py:inf_cons is inf at the start point"),
    ]


def test_a_constraint_without_a_gradient_is_a_warning_at_its_place(folder: Path) -> None:
    spec = _spec(
        folder,
        "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:sq\nminimize:\n  method: SLSQP\n"
        "  constraints:\n    inequalities: [m.py:fine_cons, m.py:flat_cons]\n",
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 0, result.output
    warnings = [e for e in findings(result.stdout) if e["severity"] == "warning"]
    assert [(w["path"], w["message"].split(":")[0]) for w in warnings] == [
        ("minimize.constraints.inequalities[1]", "gets no gradient from any variable (zero Jacobian)")
    ]


def test_nan_gradient_at_the_start_point(folder: Path) -> None:
    spec = _spec(folder, "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:norm\n")
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    [problem] = _problems(result)
    assert (problem["path"], problem["line"]) == ("loss", 3)
    assert str(problem["message"]).startswith("the loss's gradient for 'v' is nan at the start point")


def test_nan_full_batch_loss_at_the_start_point(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:nan_loss\nminimize: {data: {reduction: mean}}\n")
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    [problem] = _problems(result)
    assert (problem["path"], problem["line"]) == ("loss", 4)
    assert str(problem["message"]).startswith("the loss is nan at the start point")


# 2. A non-finite stop in a minimize run: advice a spec can follow.


def test_minimize_nonfinite_stop_suggests_no_python_argument(folder: Path) -> None:
    spec = _spec(folder, "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:log_walk\n")
    result = runner.invoke(app, ["minimize", spec, "-q", "--out", str(folder / "run")])
    assert result.exit_code == 1, result.output
    assert "the loss is nan at evaluation" in result.stderr
    assert "check_finite" not in result.stderr
    assert "minimize.constraints.bounds" in result.stderr


# 3. A loss that returns a vector: the run's words, at the loss's line.


def test_vector_loss_is_named_at_loss(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: m.py:vector_loss\ntrain: {max_steps: 2}\n")
    result = runner.invoke(app, ["validate", spec])
    assert result.exit_code == 2, result.output
    assert problem_lines(result.stderr)[1] == (
        "  - loss: the loss must return a scalar; got shape [16, 1]. "
        "Reduce it, e.g. with tf.reduce_mean or tf.reduce_sum. (line 4)"
    )
    assert "reshape" not in result.stderr


# 4. A train spec given to minimize.


def test_train_spec_given_to_minimize_says_what_to_change(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: mse\ntrain: {max_steps: 2}\n")
    result = runner.invoke(app, ["minimize", spec, "-q", "--out", str(folder / "run")])
    assert result.exit_code == 2, result.output
    assert "data: minimize with a Keras loss needs the data as one full batch; m.py:data gave 2 batches" in (
        result.stderr
    )
    assert "minimize.data" in result.stderr and "optrun train" in result.stderr
    assert "(line 3)" in result.stderr
    fixed = runner.invoke(
        app,
        ["minimize", spec, "-q", "--maxiter", "2", "--out", str(folder / "run2"), *FULL_BATCH],
    )
    assert fixed.exit_code == 0, fixed.output  # the advice works as written


# 5. The data builder, called once by validate's full-batch dry run.


@pytest.mark.parametrize(
    "minimize",
    [
        "{data: {reduction: mean}}",
        # A per-batch constraint takes (model, batch): it is not run on the model alone.
        "{method: SLSQP, data: {reduction: mean, equalities: [m.py:batch_eq]}}",
    ],
)
def test_full_batch_dry_run_builds_the_data_once(folder: Path, minimize: str) -> None:
    spec = _spec(folder, TRAIN + f"loss: m.py:loss\nminimize: {minimize}\n")
    result = runner.invoke(app, ["validate", spec, "-q"])
    assert result.exit_code == 0, result.output
    assert _calls(folder) == 1


def test_train_and_full_batch_minimize_build_the_data_once(folder: Path) -> None:
    spec = _spec(
        folder, TRAIN + "loss: m.py:loss\ntrain: {max_steps: 2}\nminimize: {data: {reduction: sum}}\n"
    )
    result = runner.invoke(app, ["validate", spec, "-q"])
    assert result.exit_code == 0, result.output
    assert _calls(folder) == 1


# 6. A misspelt optimizer argument: the same problem from the file and from --set.


def test_optimizer_argument_typo_in_the_file(folder: Path) -> None:
    spec = _spec(
        folder,
        TRAIN + "loss: mse\ntrain:\n  max_steps: 2\n  optimizer: {name: SGD, args: {learning_rat: 0.1}}\n",
    )
    result = runner.invoke(app, ["validate", spec])
    assert result.exit_code == 2, result.output
    assert problem_lines(result.stderr)[1:] == [
        "  - train.optimizer.args.learning_rat: SGD takes no argument 'learning_rat'; "
        "did you mean 'learning_rate'? (line 7)"
    ]


def test_optimizer_argument_typo_from_set(folder: Path) -> None:
    spec = _spec(folder, TRAIN + "loss: mse\ntrain: {max_steps: 2}\n")
    result = runner.invoke(app, ["validate", spec, "--set", "train.optimizer.args.learning_rat=0.1"])
    assert result.exit_code == 2, result.output
    assert problem_lines(result.stderr)[1:] == [
        "  - train.optimizer.args.learning_rat: SGD takes no argument 'learning_rat'; "
        "did you mean 'learning_rate'? (from --set)"
    ]
    run = runner.invoke(
        app,
        ["train", spec, "-q", "--out", str(folder / "run"), "--set", "train.optimizer.args.learning_rat=0.1"],
    )
    assert run.exit_code == 2
    assert (
        "train.optimizer.args.learning_rat: SGD takes no argument 'learning_rat'; did you mean" in run.stderr
    )


def test_optimizer_arguments_keras_takes_still_pass(folder: Path) -> None:
    spec = _spec(
        folder,
        TRAIN + "loss: mse\ntrain:\n  max_steps: 2\n"
        "  optimizer: {name: SGD, args: {learning_rate: 0.1, momentum: 0.9, clipnorm: 1.0}}\n",
    )
    assert runner.invoke(app, ["validate", spec, "-q"]).exit_code == 0


# 7. One pass: everything the spec alone decides, whatever else is wrong.


def test_three_misspelt_names_in_one_pass(folder: Path) -> None:
    spec = _spec(
        folder,
        TRAIN + "loss: mean_sqared_error\ntrain:\n  max_steps: 2\n"
        "  optimizer:\n    name: Adamm\n    args: {momentun: 0.9}\n",
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    assert [(p["path"], p["line"], p["message"]) for p in _problems(result)] == [
        ("loss", 4, "not a Keras loss: 'mean_sqared_error'; did you mean 'mean_squared_error'?"),
        ("train.optimizer.name", 8, "not a Keras optimizer: 'Adamm'; did you mean 'Adam'?"),
        ("train.optimizer.args.momentun", 9, "no Keras optimizer takes 'momentun'; did you mean 'momentum'?"),
    ]


def test_method_options_checked_while_the_model_builder_is_broken(folder: Path) -> None:
    spec = _spec(
        folder, "name: m\nmodel: {builder: m.py:missing}\nloss: m.py:sq\nminimize: {options: {maxitr: 3}}\n"
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    found = {p["path"]: (p["line"], p["message"]) for p in _problems(result)}
    assert set(found) == {"model.builder", "minimize.options.maxitr"}
    assert found["minimize.options.maxitr"] == (4, "L-BFGS-B has no option 'maxitr'; did you mean 'maxiter'?")


def test_the_checks_a_broken_part_kept_from_running_are_named_with_why(folder: Path) -> None:
    spec = _spec(
        folder, "name: m\nmodel: {builder: m.py:missing}\nloss: m.py:sq\nminimize: {options: {maxitr: 3}}\n"
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    skipped = [e for e in json.loads(result.stdout) if e["severity"] == "skipped"]
    assert [e["message"] for e in skipped] == [
        "not checked: the variables' names and bounds, the loss, gradients and constraints at the start "
        "point, and the dry run: they need the model, and model.builder cannot be loaded"
    ]
    text = runner.invoke(app, ["validate", spec])
    assert text.stderr.splitlines()[-1] == f"note: {skipped[0]['message']}"
    # The model builds, but a problem elsewhere stops only the dry run.
    built = _spec(
        folder, "name: m\nmodel: {builder: m.py:build}\nloss: m.py:sq\nminimize: {options: {maxitr: 3}}\n"
    )
    result = runner.invoke(app, ["validate", built, "--json"])
    assert [e["message"] for e in json.loads(result.stdout) if e["severity"] == "skipped"] == [
        "not checked: the dry run (a first training step, or minimize's first evaluation): it runs only "
        "on a spec with no problems"
    ]


def test_method_name_checked_while_the_model_builder_is_broken(folder: Path) -> None:
    spec = _spec(
        folder, "name: m\nmodel: {builder: m.py:missing}\nloss: m.py:sq\nminimize: {method: L-BFGS}\n"
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    found = {p["path"]: p["message"] for p in _problems(result)}
    assert "did you mean 'l-bfgs-b'?" in str(found["minimize.method"])


def test_tnc_takes_maxiter_as_tf1_did(folder: Path) -> None:
    spec = _spec(
        folder,
        "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:sq\n"
        "minimize: {method: TNC, options: {maxiter: 3}}\n",
    )
    assert runner.invoke(app, ["validate", spec, "-q"]).exit_code == 0


def test_a_seed_numpy_refuses_is_one_problem_and_the_other_specs_are_still_checked(folder: Path) -> None:
    (folder / "big.yaml").write_text(
        "name: b\nseed: 4294967296\nmodel: {builder: m.py:vector}\nloss: m.py:sq\n"
    )
    (folder / "ok.yaml").write_text("name: o\nmodel: {builder: m.py:vector}\nloss: m.py:sq\n")
    result = runner.invoke(app, ["validate", str(folder / "big.yaml"), str(folder / "ok.yaml"), "--json"])
    assert result.exit_code == 2, result.output
    entries = json.loads(result.stdout)
    [problem] = [e for e in entries if e["severity"] == "error"]
    assert (Path(problem["file"]).name, problem["path"], problem["line"]) == ("big.yaml", "seed", 2)
    # sum(v^2) at v = (1, 2): 5, checked in the same pass.
    [passed] = [e for e in entries if Path(e["file"]).name == "ok.yaml" and e["severity"] == "info"]
    assert passed["report"]["loss"] == pytest.approx(5.0)


def test_a_compile_cache_the_run_could_not_create_is_found_and_nothing_is_made(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)  # a cache an earlier test in this process turned on
    (folder / "afile").write_text("x")
    spec = _spec(
        folder,
        "name: m\nmodel: {builder: m.py:vector}\nloss: m.py:sq\nminimize:\n  compile_cache: afile/xla\n",
    )
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    [problem] = [e for e in json.loads(result.stdout) if e["severity"] == "error"]
    assert (problem["path"], problem["line"]) == ("minimize.compile_cache", 5), problem
    assert "(Not a directory)" in problem["message"], problem
    # A cache that can be made is not made by validate: it writes nothing.
    ok = runner.invoke(app, ["validate", spec, "-q", "--set", "minimize.compile_cache=fresh/xla"])
    assert ok.exit_code == 0, ok.output
    assert not (folder / "fresh").exists()

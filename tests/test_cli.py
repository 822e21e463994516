"""The CLI in-process (Typer's CliRunner): every command, exit code and run-directory promise."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from typer.testing import CliRunner

from optrun_cli.main import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_minimize_builtin_default(in_tmp: Path) -> None:
    result = invoke("minimize", "--method", "SLSQP", "--json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["success"] is True
    assert outcome["solution"]["v"] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert outcome["fun"] == pytest.approx(2.0, abs=1e-6)
    assert outcome["constraint_residuals"]["violation"] == pytest.approx(0.0, abs=1e-8)
    tiers = outcome["tiers"]  # the default evaluation is tiered: plain first, XLA once it pays
    assert (tiers["first"], tiers["second"]) == ("plain", "xla") and tiers["evaluations"]["plain"] >= 1
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def sentinel(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    signal.signal(signal.SIGINT, sentinel)
    try:
        shown = invoke("minimize", "--method", "SLSQP", "--out", "again")  # the summary table says it too
        # Called from Python, the command gives the caller's signal handlers back when it is done.
        assert signal.getsignal(signal.SIGINT) is sentinel
        assert signal.getsignal(signal.SIGTERM) == before[1]
    finally:
        signal.signal(signal.SIGINT, before[0])
    assert shown.exit_code == 0, shown.output
    assert "tiers" in shown.output and "plain " in shown.output.split("tiers", 1)[1]
    run = in_tmp / "runs" / "constrained-example"
    assert {"config.yaml", "metrics.jsonl", "result.json", "checkpoints", "tensorboard"} <= {
        p.name for p in run.iterdir()
    }
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines and {"step", "loss", "wall_time", "constraint_violation"} <= set(lines[-1])


def test_train_builtin_default_writes_everything(in_tmp: Path) -> None:
    result = invoke("train", "--set", "train.max_steps=30", "--set", "checkpoint.every_steps=10", "-q")
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "default-train"
    outcome = json.loads((run / "result.json").read_text())
    assert outcome["status"] == "completed" and outcome["steps"] == 30
    assert (run / "export" / "model.weights.h5").is_file()
    assert (run / "averaged" / "ckpt.index").is_file()
    assert any((run / "tensorboard").iterdir())
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-20.index", "ckpt-30.index"]
    config = (run / "config.yaml").read_text()
    assert "max_steps: 30" in config and "seed: 0" in config


def _weights(path: Path) -> list[np.ndarray]:
    from optrun.spec.defaults.problems import mlp

    model = mlp(hidden=32)
    model.load_weights(str(path))
    return [w.numpy() for w in model.weights]


def test_resume_matches_uninterrupted_run(in_tmp: Path) -> None:
    common = ["--set", "checkpoint.every_steps=10", "-q"]
    assert invoke("train", "--out", "straight", "--set", "train.max_steps=40", *common).exit_code == 0
    assert invoke("train", "--out", "split", "--set", "train.max_steps=20", *common).exit_code == 0
    result = invoke("train", "--out", "split", "--resume", "--set", "train.max_steps=40", *common)
    assert result.exit_code == 0, result.output
    straight = json.loads((in_tmp / "straight" / "result.json").read_text())
    split = json.loads((in_tmp / "split" / "result.json").read_text())
    assert split["steps"] == 40
    assert split["final_loss"] == straight["final_loss"]
    for a, b in zip(
        _weights(in_tmp / "straight" / "export" / "model.weights.h5"),
        _weights(in_tmp / "split" / "export" / "model.weights.h5"),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    steps = [
        json.loads(line)["step"] for line in (in_tmp / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [20, 40]  # logging.every_steps is 20; the resumed run appends


def test_same_config_twice_gives_same_numbers(in_tmp: Path) -> None:
    for out in ("a", "b"):
        assert (
            invoke("train", "--out", out, "--set", "train.max_steps=25", "--seed", "5", "-q").exit_code == 0
        )
    a = (in_tmp / "a" / "metrics.jsonl").read_text().splitlines()
    b = (in_tmp / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss"] for x in a] == [json.loads(x)["loss"] for x in b]
    assert "seed: 5" in (in_tmp / "a" / "config.yaml").read_text()


def test_swapped_checkpoint_and_export_hold_the_averages(in_tmp: Path) -> None:
    from optrun.runner.build import build_optimizer
    from optrun.spec.defaults.problems import mlp
    from optrun.spec.load import load_spec

    assert invoke("train", "--out", "run", "--set", "train.max_steps=30", "-q").exit_code == 0
    run = in_tmp / "run"
    # The averages, read from the full training checkpoint into the spec's own optimizer.
    spec = load_spec(run / "config.yaml").spec
    trained = mlp(hidden=32)
    opt, averaging = build_optimizer(spec.train.optimizer, trained.trainable_weights)  # type: ignore[union-attr]
    opt.build(trained.trainable_weights)
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    tf.train.Checkpoint(model=trained, optimizer=opt).restore(latest).expect_partial()
    assert averaging is not None
    averages = [averaging.average(v).numpy() for v in trained.trainable_weights]
    # A plain model, no wrappers: the swapped checkpoint gives it the averages...
    plain = mlp(hidden=32)
    tf.train.Checkpoint(model=plain).restore(str(run / "averaged" / "ckpt")).expect_partial()
    # ... and so does the exported .weights.h5.
    exported = mlp(hidden=32)
    exported.load_weights(str(run / "export" / "model.weights.h5"))
    for want, a, b in zip(averages, plain.trainable_weights, exported.trainable_weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), want)
        np.testing.assert_array_equal(b.numpy(), want)
    raw = [v.numpy() for v in trained.trainable_weights]
    assert any(not np.array_equal(r, a) for r, a in zip(raw, averages, strict=True))


def test_refused_overwrite_and_force(in_tmp: Path) -> None:
    assert invoke("minimize", "-q").exit_code == 0
    again = invoke("minimize", "-q")
    assert again.exit_code == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert invoke("minimize", "-q", "--force").exit_code == 0
    nothing = invoke("minimize", "-q", "--out", "fresh", "--resume")
    assert nothing.exit_code == 2 and "no checkpoints to resume" in nothing.stderr


def test_config_error_exit_2_no_run_dir_no_traceback(in_tmp: Path) -> None:
    bad = in_tmp / "bad.yaml"
    bad.write_text("name: bad\nmodel: {builder: m.py:build}\nloss: mse\ntrain: {max_steps: 0, bogus: 1}\n")
    result = invoke("train", str(bad))
    assert result.exit_code == 2
    assert "train.max_steps" in result.stderr and "train.bogus: unknown key" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (in_tmp / "runs").exists()


def test_five_mistakes_all_reported_by_the_cli(in_tmp: Path) -> None:
    from tests.test_spec import FIVE_MISTAKES

    spec = in_tmp / "five.yaml"
    spec.write_text(FIVE_MISTAKES)
    result = invoke("train", str(spec))
    assert result.exit_code == 2
    for expected in (
        "6 problems",
        "name:",
        "seed:",
        "model.builder:",
        "loss.name:",
        "train.optimizer.wrappers[0].kind: unknown kind 'moving_avg'; did you mean 'moving_average'?",
        "train.learning_rate: unknown key; learning_rate goes in train.optimizer.args",
    ):
        assert expected in result.stderr, expected
    assert not (in_tmp / "runs").exists()


def test_budget_reached_exit_0_result_written(in_tmp: Path) -> None:
    # Stopped by --maxiter before it converged: status budget_reached, a success (exit 0), as
    # train at max_steps; a failed optimization (exit 1) is in test_outcomes.py.
    result = invoke("minimize", "--maxiter", "1", "--json", "--out", "short")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "budget_reached"
    record = json.loads((in_tmp / "short" / "result.json").read_text())
    assert (record["status"], record["success"]) == ("budget_reached", True)


def test_divergence_stops_exit_1(in_tmp: Path) -> None:
    result = invoke(
        "train",
        "--out",
        "nan",
        "-q",
        "--set",
        "train.max_steps=50",
        "--set",
        "train.optimizer.args.learning_rate=1e30",
        "--json",
    )
    assert result.exit_code == 1
    outcome = json.loads((in_tmp / "nan" / "result.json").read_text())
    assert outcome["status"] == "diverged" and outcome["steps"] < 50
    answer = json.loads(result.stdout)  # the record, and the exit code, as for any failure
    assert (answer["status"], answer["success"], answer["exit_code"]) == ("diverged", False, 1)
    # The step whose loss or gradient was non-finite is not counted: its update was never applied,
    # and the checkpoint holds the steps before it, so a resume runs that batch again.
    step = outcome["steps"] + 1
    assert answer["error"] == f"non-finite loss or gradient at step {step} (train.on_nonfinite: stop)"
    assert (in_tmp / "nan" / "checkpoints" / f"ckpt-{step - 1}.index").is_file()


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        # Interleaved NaN targets (steps 2 and 6 of 8): bad batches, skipped, and the run goes on.
        ("(1.0, float('nan'), 2.0, 3.0)", (0, "completed", 2)),
        # Steps 3-8 all non-finite, the last 6 of 8 updates: it stopped learning, as when a huge
        # learning rate blows the weights up.
        ("[1.0, 2.0] + [float('nan')] * 6", (1, "diverged", 6)),
    ],
    ids=["bad-batches", "stopped-learning"],
)
def test_nonfinite_skip(in_tmp: Path, targets: str, expected: tuple[int, str, int]) -> None:
    (in_tmp / "nanmod.py").write_text(
        "import tensorflow as tf\nimport keras\n"
        "def model():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name='d')])\n"
        "def data():\n"
        f"    return [(tf.constant([[1.0]]), tf.constant([[v]])) for v in {targets}]\n"
    )
    spec = in_tmp / "skip.yaml"
    spec.write_text(
        "name: skip\nmodel: {builder: nanmod.py:model}\ndata: {builder: nanmod.py:data}\nloss: mse\n"
        "train: {max_steps: 8, on_nonfinite: skip}\ncheckpoint: {export: none}\n"
    )
    result = invoke("train", str(spec), "--json")
    outcome = json.loads(result.stdout)
    assert (result.exit_code, outcome["status"], outcome["skipped_nonfinite"]) == expected, result.output
    assert outcome["steps"] == 8


def test_train_ignores_the_sweep_section(in_tmp: Path) -> None:
    # Values only `optrun sweep` would refuse (no trials, an empty range) stop neither train nor
    # its config.yaml, which holds a plain spec.
    bad = ["--set", "sweep.trials=0", "--set", "sweep.params.model.params.hidden=int:64..8"]
    result = invoke("train", "--out", "s", "-q", "--set", "train.max_steps=2", *bad)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((in_tmp / "s" / "config.yaml").read_text()).get("sweep") is None


def test_a_stop_at_a_nonfinite_step_leaves_that_batch_to_the_resume(in_tmp: Path) -> None:
    # The 3rd of 6 batches is NaN: `stop` ends the run after 2 steps; a resume with `skip` runs that
    # batch again (skipped: 1) and the last 3, so 6 steps in all and the weights of 5 updates.
    (in_tmp / "nan3.py").write_text(
        "import tensorflow as tf\nimport keras\n"
        "def model():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name='d')])\n"
        "def data():\n"
        "    return [(tf.constant([[1.0]]), tf.constant([[v]])) for v in (1, 2, float('nan'), 3, 4, 5)]\n"
    )
    spec = in_tmp / "nan3.yaml"
    spec.write_text(
        "name: nan3\nmodel: {builder: nan3.py:model}\ndata: {builder: nan3.py:data}\nloss: mse\n"
        "train: {max_steps: 6}\ncheckpoint: {export: none}\n"
    )
    stopped = invoke("train", str(spec), "--out", "r", "--json")
    first = json.loads(stopped.stdout)
    assert (stopped.exit_code, first["status"], first["steps"]) == (1, "diverged", 2), stopped.output
    skip = ["--set", "train.on_nonfinite=skip"]
    resumed = invoke("train", str(spec), "--out", "r", "--resume", "--json", *skip)
    second = json.loads(resumed.stdout)
    assert (resumed.exit_code, second["status"], second["steps"], second["skipped_nonfinite"]) == (
        0, "completed", 6, 1,
    ), resumed.output  # fmt: skip


def test_validate_reports_and_writes_nothing(in_tmp: Path) -> None:
    module = in_tmp / "two.py"
    module.write_text(
        "import tensorflow as tf\n"
        "def build():\n"
        "    return {'a': tf.Variable([3.0, -1.0], name='a'), 'b': tf.Variable(2.0, name='b')}\n"
        "def loss(m):\n    return tf.reduce_sum(tf.square(m['a']))\n"
        "def a0_le_1(m):\n    return 1.0 - m['a'][0]\n"
    )
    spec = in_tmp / "v.yaml"
    spec.write_text(
        "name: v\nmodel: {builder: two.py:build}\nloss: two.py:loss\n"
        "minimize:\n  method: SLSQP\n  constraints:\n    inequalities: [two.py:a0_le_1]\n"
        "    bounds: {a: [0.0, null]}\n"
    )
    before = sorted(p.name for p in in_tmp.iterdir())
    result = invoke("validate", str(spec), "--json")
    assert result.exit_code == 0, result.output
    unused, outside, passed = json.loads(result.stdout)
    assert unused == {
        "file": str(spec),
        "path": "model",
        "line": None,
        "from_set": False,
        "severity": "warning",
        "message": "the loss does not depend on 'b' (zero gradient)",
    }
    assert outside["severity"] == "warning" and outside["path"] == "minimize.constraints.bounds"
    assert outside["message"] == "a: 1 of 2 start values outside bounds"
    report = passed["report"]
    assert passed["severity"] == "info" and report["mode"] == "minimize"
    assert report["loss"] == pytest.approx(10.0)
    assert report["gradient_norm"] == pytest.approx(np.hypot(6.0, -2.0))
    assert report["unused_variables"] == ["b"]
    assert report["bounds_violated_at_start"] == ["a: 1 of 2 start values outside bounds"]
    assert report["constraint_residuals"]["inequalities"] == pytest.approx([-2.0])
    assert report["constraint_residuals"]["violation"] == pytest.approx(2.0)
    assert sorted(p.name for p in in_tmp.iterdir() if p.name != "__pycache__") == before
    text = invoke("validate", str(spec))
    assert text.exit_code == 0 and "does not depend on 'b'" in text.stdout


@pytest.mark.parametrize(
    ("source", "ref", "message"),
    [
        (None, "nowhere.py:build", "model.builder: nowhere.py:build: no such file"),
        ("def other():\n    pass\n", "mod.py:build", "mod.py has no function 'build'; it defines: other"),
        (
            "def build():\n    raise ValueError('bad width')\n",
            "mod.py:build",
            "mod.py:build raised ValueError: bad width",
        ),
        ("import nonexistent_pkg\n", "mod.py:build", "importing mod.py failed: ModuleNotFoundError"),
        (None, "no_such_pkg.mod:build", "no module named 'no_such_pkg'"),
    ],
)
def test_loading_errors(in_tmp: Path, source: str | None, ref: str, message: str) -> None:
    if source is not None:
        (in_tmp / "mod.py").write_text(source)
    spec = in_tmp / "s.yaml"
    spec.write_text(f"name: s\nmodel: {{builder: '{ref}'}}\nloss: mse\n")
    result = invoke("minimize", str(spec))
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (in_tmp / "runs").exists()


def test_unknown_wrapper_variable_lists_names(in_tmp: Path) -> None:
    result = invoke("train", "--set", "train.optimizer.wrappers.0.vars=[hiden/kernel]", "-q")
    assert result.exit_code == 2
    assert "'hiden/kernel'" in result.stderr and "'sequential" in result.stderr


def test_schema_command() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "ExperimentSpec"


def test_sample_configs_validate() -> None:
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        if "logical_cpus" in config.read_text():
            continue  # logical CPUs are set before TensorFlow starts: validated in a fresh process below
        result = invoke("validate", str(config), "--json")
        assert result.exit_code == 0, (config.name, result.stderr)
        keras.backend.clear_session()


def test_the_mirrored_sample_config_validates_in_a_fresh_process() -> None:
    import subprocess
    import sys

    config = ROOT / "configs" / "pinn_ode_mirrored.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "optrun", "validate", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)[-1]["report"]
    assert (report["strategy"], report["replicas"], report["global_batch"]) == ("mirrored", 2, 1024)
    assert report["per_replica_batch"] == 512


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_epochs_with_unknown_data_length(in_tmp: Path) -> None:
    _write(
        in_tmp / "filtered.py",
        "import tensorflow as tf\nimport keras\n"
        "def model():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])\n"
        "def data():\n"
        "    x = tf.reshape(tf.range(12, dtype=tf.float32), [12, 1])\n"
        "    ds = tf.data.Dataset.from_tensor_slices((x, 2 * x)).filter(lambda a, b: a[0] < 8.0)\n"
        "    return ds.batch(2)\n",
    )  # 8 rows pass the filter: 4 batches, unknown cardinality
    spec = _write(
        in_tmp / "e.yaml",
        "name: e\nmodel: {builder: filtered.py:model}\n"
        "data: {builder: filtered.py:data}\nloss: mse\ntrain: {epochs: 3}\n",
    )
    result = invoke("train", str(spec), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 12


def test_user_code_failing_mid_run_exits_1_with_result(in_tmp: Path) -> None:
    _write(
        in_tmp / "shapes.py",
        "import tensorflow as tf\nimport keras\n"
        "def model():\n    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "def data():\n"
        "    good = [(tf.ones([4, 2]), tf.ones([4, 1]))] * 3\n"
        "    return good + [(tf.ones([4, 3]), tf.ones([4, 1]))]\n",
    )
    spec = _write(
        in_tmp / "f.yaml",
        "name: f\nmodel: {builder: shapes.py:model}\n"
        "data: {builder: shapes.py:data}\nloss: mse\ntrain: {max_steps: 10}\n",
    )
    result = invoke("train", str(spec), "--out", "f")
    assert result.exit_code == 1
    assert "step 4" in result.stderr and "Traceback" not in result.stderr
    outcome = json.loads((in_tmp / "f" / "result.json").read_text())
    assert outcome["status"] == "error" and outcome["steps"] == 3 and "step 4" in outcome["error"]


def test_nan_result_is_strict_json(in_tmp: Path) -> None:
    _write(
        in_tmp / "nanloss.py",
        "import tensorflow as tf\n"
        "def var():\n    return tf.Variable([-1.0, 2.0], dtype=tf.float64, name='v')\n"
        "def loss(v):\n    return tf.reduce_sum(tf.sqrt(v))\n",
    )
    spec = _write(
        in_tmp / "n.yaml",
        "name: n\nmodel: {builder: nanloss.py:var}\nloss: nanloss.py:loss\nminimize: {method: L-BFGS-B}\n",
    )
    result = invoke("minimize", str(spec), "--json", "--out", "n")
    assert result.exit_code == 1
    parsed = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert parsed["success"] is False and "the loss is nan" in parsed["error"]
    record = json.loads((in_tmp / "n" / "result.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert record["status"] == "nonfinite" and record["fun"] == "nan"
    # stdout carries the run's record, as for a run that ends without raising, plus the exit code.
    assert (parsed["status"], parsed["fun"], parsed["exit_code"]) == ("nonfinite", "nan", 1)


def test_messages_are_printed_literally(in_tmp: Path) -> None:
    _write(
        in_tmp / "brackets.py",
        "def build():\n    raise ValueError('expected x of shape [batch, features], got [/x]')\n",
    )
    spec = _write(in_tmp / "b.yaml", "name: b\nmodel: {builder: brackets.py:build}\nloss: mse\n")
    result = invoke("minimize", str(spec))
    assert result.exit_code == 2
    assert "[batch, features], got [/x]" in result.stderr


def test_duplicate_keys_and_all_missing_references(in_tmp: Path) -> None:
    dup = _write(in_tmp / "dup.yaml", "name: d\nmodel: {builder: m.py:f}\nloss: mse\nname: e\n")
    result = invoke("validate", str(dup))
    assert result.exit_code == 2 and "key 'name' appears twice (lines 1 and 4)" in result.stderr
    _write(in_tmp / "refs.py", "def build():\n    return None\n")
    spec = _write(
        in_tmp / "r.yaml",
        "name: r\nmodel: {builder: refs.py:bild}\nloss: refs.py:los\n"
        "minimize: {constraints: {equalities: [refs.py:eq]}}\n",
    )
    result = invoke("minimize", str(spec))
    assert result.exit_code == 2
    for missing in ("'bild'", "'los'", "'eq'"):
        assert missing in result.stderr


def test_resume_refuses_another_spec_and_changes_nothing(in_tmp: Path) -> None:
    assert invoke("train", "--out", "run", "--set", "train.max_steps=10", "-q").exit_code == 0
    before = (in_tmp / "run" / "config.yaml").read_text()
    other = invoke("minimize", "--out", "run", "--resume", "-q")
    assert other.exit_code == 2 and "holds a train run, not a minimize run" in other.stderr
    changed = invoke("train", "--out", "run", "--resume", "--set", "model.params.hidden=8", "-q")
    assert changed.exit_code == 2 and "differs from the run" in changed.stderr and "model" in changed.stderr
    data = invoke("train", "--out", "run", "--resume", "--set", "data.params.n=256", "-q")
    assert data.exit_code == 2 and "differs from the run in run at data" in data.stderr
    assert (in_tmp / "run" / "config.yaml").read_text() == before
    # Stating the batches' size (as a strategy needs) changes no data: the run goes on.
    stated = invoke(
        "train",
        "--out",
        "run",
        "--resume",
        "--set",
        "data.global_batch_size=32",
        "--set",
        "train.max_steps=12",
    )
    assert stated.exit_code == 0, stated.stderr
    assert json.loads((in_tmp / "run" / "result.json").read_text())["steps"] == 12


def test_keras_loss_with_args_and_bad_args(in_tmp: Path) -> None:
    ok = invoke(
        "train",
        "--out",
        "ok",
        "-q",
        "--set",
        "train.max_steps=3",
        "--set",
        "loss={kind: keras, name: mse, args: {reduction: sum}}",
    )
    assert ok.exit_code == 0, ok.stderr
    bad = invoke(
        "train",
        "--out",
        "bad",
        "-q",
        "--set",
        "train.max_steps=3",
        "--set",
        "loss={kind: keras, name: MeanSquaredError, args: {bogus: 1}}",
    )
    assert bad.exit_code == 2 and "loss.args: MeanSquaredError" in bad.stderr and "bogus" in bad.stderr


def test_empty_data_and_bad_options_are_usage_errors(in_tmp: Path) -> None:
    _write(
        in_tmp / "empty.py",
        "import keras\n"
        "def model():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])\n"
        "def data():\n    return []\n",
    )
    spec = _write(
        in_tmp / "e.yaml",
        "name: e\nmodel: {builder: empty.py:model}\ndata: {builder: empty.py:data}\n"
        "loss: mse\ntrain: {max_steps: 3}\n",
    )
    empty = invoke("train", str(spec))
    assert empty.exit_code == 2 and "yielded no batches" in empty.stderr
    assert not (in_tmp / "runs").exists()
    options = invoke("minimize", "--set", "minimize.options={maxiterz: 5}")
    assert options.exit_code == 2
    assert "minimize.options.maxiterz: SLSQP has no option 'maxiterz'; did you mean" in options.stderr


def test_a_bad_optrun_switch_stops_minimize_before_the_run_directory(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTRUN_TIER2", "sometimes")
    result = invoke("minimize", "--method", "SLSQP")
    assert result.exit_code == 2
    assert "OPTRUN_TIER2 must be auto, now or never; got 'sometimes'" in result.stderr
    assert "Traceback" not in result.output and not (in_tmp / "runs").exists()
    checked = invoke("validate")  # validate says so too
    assert checked.exit_code == 2 and "OPTRUN_TIER2" in checked.stderr


def test_every_update_skipped_is_a_failure(in_tmp: Path) -> None:
    _write(
        in_tmp / "allnan.py",
        "import tensorflow as tf\nimport keras\n"
        "def model():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])\n"
        "def data():\n    return [(tf.constant([[1.0]]), tf.constant([[float('nan')]]))] * 3\n",
    )
    spec = _write(
        in_tmp / "n.yaml",
        "name: n\nmodel: {builder: allnan.py:model}\ndata: {builder: allnan.py:data}\n"
        "loss: mse\ntrain: {epochs: 1, on_nonfinite: skip}\n",
    )
    result = invoke("train", str(spec), "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    # 3 batches, every one skipped: all 3 updates of this session.
    assert answer["status"] == "diverged" and answer["skipped_nonfinite"] == 3
    assert answer["error"] == "the last 3 of 3 updates were all non-finite and skipped"


def test_more_usage_errors_are_caught_before_the_run(in_tmp: Path) -> None:
    _write(
        in_tmp / "vec.py",
        "import tensorflow as tf\n"
        "def loss(model, batch):\n    x, y = batch\n    return tf.square(model(x) - y)[:, 0]\n",
    )
    vector = invoke("train", "--set", "loss={ref: vec.py:loss}", "--set", "train.max_steps=3", "--out", "v")
    assert vector.exit_code == 2 and "must return a scalar" in vector.stderr
    assert not (in_tmp / "v").exists()
    nodata = _write(
        in_tmp / "nodata.yaml",
        "name: x\nmodel: {builder: optrun.spec.defaults.problems:mlp}\nloss: mse\ntrain: {max_steps: 3}\n",
    )
    missing = invoke("train", str(nodata))
    assert missing.exit_code == 2 and "data: required" in missing.stderr
    two = invoke(
        "train",
        "-q",
        "--set",
        "train.optimizer.wrappers.0.vars=[nosuch1]",
        "--set",
        "train.optimizer.wrappers.1={kind: variable_clipping, vars: [hidden/kernel], dims: [5], "
        "max_norm: 1.0}",
    )
    assert two.exit_code == 2
    assert "wrappers[0].vars" in two.stderr and "'nosuch1'" in two.stderr and "wrappers[1].dims" in two.stderr
    (in_tmp / "afile").write_text("x")
    under_file = invoke("minimize", "--out", "afile/sub", "-q")
    assert (
        under_file.exit_code == 2 and "--out afile/sub: cannot create the run directory" in under_file.stderr
    )


def test_keras_loss_kind_is_inferred(in_tmp: Path) -> None:
    result = invoke(
        "train",
        "--out",
        "h",
        "-q",
        "--set",
        "train.max_steps=3",
        "--set",
        "loss={name: huber, args: {delta: 2.0}}",
    )
    assert result.exit_code == 0, result.stderr
    assert "name: huber" in (in_tmp / "h" / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["minimize", "--maxiter", "0", "--json"], "--maxiter"),
        (["train", "--json", "--no-such-flag"], "--no-such-flag"),
    ],
)
def test_json_usage_errors_still_print_json(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str], in_tmp: Path
) -> None:
    from optrun_cli.main import main

    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    captured = capsys.readouterr()
    outcome = json.loads(captured.out)
    assert outcome["success"] is False and outcome["exit_code"] == 2
    assert fragment in outcome["error"] and fragment in captured.err
    assert list(in_tmp.iterdir()) == []  # nothing written


def test_blocked_paths_and_a_missing_kind_are_said_plainly(in_tmp: Path) -> None:
    (in_tmp / "afile").write_text("")
    blocked = invoke("minimize", "-q", "--out", "afile/run")
    assert blocked.exit_code == 2
    assert "cannot create the run directory: afile is a file, not a folder" in blocked.stderr
    spec = _write(
        in_tmp / "s.yaml", "name: s\nmodel: {builder: m.py:build}\nloss: mse\ntrain: {max_steps: 1}\n"
    )
    kindless = invoke("validate", str(spec), "--set", "strategy.logical_cpus=2")
    assert kindless.exit_code == 2
    assert "strategy: says no kind: set strategy.kind to one of default, mirrored, multi_worker" in " ".join(
        kindless.stderr.split()
    )
    assert not (in_tmp / "runs").exists()


def test_minimize_places_method_and_option_mistakes_as_validate_does(tmp_path: Path) -> None:
    spec = ROOT / "configs" / "sum_of_squares.yaml"
    runner = CliRunner()
    for flags, said in (
        (["--method", "slsq"], "- minimize.method: method must be one of"),
        (["--set", "minimize.options.maxitr=3"], "- minimize.options.maxitr: L-BFGS-B has no option"),
    ):
        out = runner.invoke(app, ["minimize", str(spec), "--out", str(tmp_path / "run"), *flags])
        text = " ".join(out.stderr.split())
        assert out.exit_code == 2 and said in text and f"(from {flags[0]})" in text, text
        assert not (tmp_path / "run").exists()
    bad = tmp_path / "s.yaml"
    text = spec.read_text().replace("../examples", str(ROOT / "examples"))
    bad.write_text(text.replace("options: {maxiter: 100}", "options: {maxitr: 3}"))
    out = runner.invoke(app, ["minimize", str(bad), "--out", str(tmp_path / "run")])
    line = bad.read_text().splitlines().index("  options: {maxitr: 3}") + 1
    assert out.exit_code == 2 and "minimize.options.maxitr: L-BFGS-B has no option 'maxitr'" in out.stderr
    assert f"(line {line})" in out.stderr
    # An option whose value is infinite is checked as given (BFGS's norm: inf is scipy's own default).
    norm = ["--method", "BFGS", "--set", "minimize.options.norm=.inf", "-q", "--out", str(tmp_path / "ok")]
    assert runner.invoke(app, ["minimize", str(spec), *norm]).exit_code == 0


def test_minimize_names_a_loss_that_cannot_take_the_model(in_tmp: Path) -> None:
    (in_tmp / "sig.py").write_text(
        "import tensorflow as tf\n"
        "def build():\n    return tf.Variable([1.0], name='w')\n"
        "def wrong_sig():\n    return tf.constant(0.0)\n"
    )
    (in_tmp / "sig.yaml").write_text("name: sig\nmodel: {builder: sig.py:build}\nloss: sig.py:wrong_sig\n")
    result = invoke("minimize", "sig.yaml", "--out", "run")
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "sig.py:wrong_sig cannot be called as wrong_sig(model)" in said and "(line 3)" in said, said
    assert "tf__" not in said and not (in_tmp / "run").exists()


def test_a_bad_cache_dir_in_the_environment_is_named(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (in_tmp / "afile").write_text("not a folder")
    monkeypatch.setenv("OPTRUN_CACHE_DIR", str(in_tmp / "afile"))
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)  # a cache an earlier test in this process turned on
    result = invoke("minimize", "--out", "run")
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "OPTRUN_CACHE_DIR=" in said and "minimize.compile_cache" not in said.split("or set")[0], said
    assert "'none' to compile every time" not in said, said  # the spec key's advice, not the variable's


@pytest.mark.parametrize(
    "name", ["result.json", "config.yaml", ".optrun-run", "checkpoints", "export", ".hidden"]
)
def test_a_metrics_file_named_as_a_runs_own_file_is_refused(tmp_path: Path, name: str) -> None:
    spec = ROOT / "configs" / "sum_of_squares.yaml"
    out = CliRunner().invoke(
        app, ["minimize", str(spec), "--out", str(tmp_path / "run"), "--set", f"logging.metrics_file={name}"]
    )
    said = " ".join(out.stderr.split())
    assert out.exit_code == 2 and "logging.metrics_file" in said and "(from --set)" in said, said
    assert not (tmp_path / "run").exists()


def test_schema_write_never_replaces_what_is_not_a_regular_file(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for target in (pipe, tmp_path):
        out = CliRunner().invoke(app, ["schema", "--write", str(target)])
        assert out.exit_code == 2 and "not a regular file" in out.stderr, out.output
    assert pipe.exists() and not pipe.is_file()  # still the pipe


def test_a_failed_runs_json_answer_stays_strict_json_whatever_its_record_holds(tmp_path: Path) -> None:
    from optrun_cli.errors import _record

    path = tmp_path / "result.json"
    path.write_text('{"status": "error", "fun": 1e999, "loss": NaN, "steps": 3}')
    record = _record(path)
    assert record == {"status": "error", "fun": "1e999", "loss": "NaN", "steps": 3}
    json.dumps(record, allow_nan=False)  # strict
    path.write_text("[1, 2]")
    assert _record(path) == {}
    assert _record(tmp_path / "missing.json") == {}


def test_a_spec_problem_found_mid_run_is_said_in_full(in_tmp: Path) -> None:
    # The second batch is not an (x, y) pair: found at step 2, said as validate would say it.
    _write(
        in_tmp / "rag.py",
        "import numpy as np\nimport keras\n"
        "def model():\n    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "def data():\n    x = np.ones((4, 2), 'float32')\n"
        "    return [(x, np.ones((4, 1), 'float32')), (x,)]\n",
    )
    spec = _write(
        in_tmp / "rag.yaml",
        "name: rag\nmodel: {builder: rag.py:model}\ndata: {builder: rag.py:data}\n"
        "loss: mse\ntrain: {epochs: 1}\n",
    )
    result = invoke("train", str(spec), "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error.startswith("step 2: data.builder: the Keras loss 'mse' takes (x, y) batches"), error
    assert "gives tuples of 1" in error and "1 problem" not in error


def test_two_variables_of_one_name_each_keep_their_solution(in_tmp: Path) -> None:
    _write(
        in_tmp / "dup.py",
        "import tensorflow as tf\n"
        "def build():\n    return [tf.Variable([1.0], name='v'), tf.Variable([2.0], name='v')]\n"
        "def loss(vs):\n    a, b = vs\n    return tf.reduce_sum((a - 3.0) ** 2 + (b + 1.0) ** 2)\n",
    )
    spec = _write(in_tmp / "dup.yaml", "name: dup\nmodel: {builder: dup.py:build}\nloss: dup.py:loss\n")
    result = invoke("minimize", str(spec), "--json", "-q")
    assert result.exit_code == 0, result.output
    solution = json.loads(result.stdout)["solution"]
    # By hand: a = 3 and b = -1 minimize (a - 3)^2 + (b + 1)^2; the second 'v' is numbered.
    assert list(solution) == ["v", "v#2"]
    assert solution["v"] == pytest.approx([3.0], abs=1e-5) and solution["v#2"] == pytest.approx(
        [-1.0], abs=1e-5
    )


def test_a_loss_that_returns_no_number_is_placed_at_loss(in_tmp: Path) -> None:
    _write(
        in_tmp / "none.py",
        "import tensorflow as tf\ndef build():\n    return tf.Variable([1.0], name='v')\n"
        "def loss(v):\n    return None\n",
    )
    spec = _write(in_tmp / "none.yaml", "name: n\nmodel: {builder: none.py:build}\nloss: none.py:loss\n")
    result = invoke("minimize", str(spec), "--json")
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["path"], problem["line"]) == ("loss", 3), problem  # as validate places it
    assert problem["message"].startswith("loss must return a scalar tensor; got NoneType")


@pytest.mark.parametrize(
    ("returned", "said"),
    [
        ("[v, v]", "m.py:build returned variable 'v' twice; return it once."),
        ("[v, tf.Variable([1], name='n')]", "m.py:build returned variable 'n' of dtype int32;"),
        ("[]", "m.py:build returned an empty list;"),
    ],
    ids=["twice", "integer", "empty"],
)
def test_variables_a_builder_cannot_give_are_said_at_the_builder(
    in_tmp: Path, returned: str, said: str
) -> None:
    _write(
        in_tmp / "m.py",
        "import tensorflow as tf\nv = tf.Variable([1.0], name='v')\n"
        f"def build():\n    return {returned}\ndef loss(vs):\n    return tf.reduce_sum(v ** 2)\n",
    )
    spec = _write(in_tmp / "b.yaml", "name: b\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    result = invoke("minimize", str(spec), "--json")
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["path"], problem["line"]) == ("model.builder", 2), problem
    assert problem["message"].startswith(said), problem["message"]


def test_variables_that_share_a_name_are_bounded_by_the_numbers_results_give_them(in_tmp: Path) -> None:
    (in_tmp / "m.py").write_text(
        "import tensorflow as tf\n"
        "def build():\n    return [tf.Variable([5.0], name='v'), tf.Variable([5.0], name='v')]\n"
        "def loss(vs):\n    return tf.reduce_sum(vs[0] ** 2) + tf.reduce_sum(vs[1] ** 2)\n"
    )
    (in_tmp / "s.yaml").write_text(
        "name: d\nmodel: {builder: m.py:build}\nloss: m.py:loss\n"
        "minimize: {constraints: {bounds: {'v#1': [1, 2], 'v#2': [3, 4]}}}\n"
    )
    result = invoke("minimize", "s.yaml", "--out", "run", "--json")
    assert result.exit_code == 0, result.output
    # v^2 on [1, 2] is least at 1, and on [3, 4] at 3.
    assert json.loads(result.stdout)["solution"] == {"v": [1.0], "v#2": [3.0]}
    plain = invoke("validate", "s.yaml", "--set", "minimize.constraints.bounds={v: [1, 2]}")
    said = " ".join(plain.output.split())
    assert plain.exit_code == 2 and "name them 'v#1', 'v#2'" in said, said

"""``optrun sweep``'s search space: the syntax, and every bad space refused at once, before any trial.

No trial runs here (and no TensorFlow is imported): a bad space is a usage error, exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from optrun.spec.load import load_spec
from optrun.spec.sweep import parse_space
from optrun.sweep.plan import SweepFlags, make_plan
from optrun_cli.main import app
from tests.sweep_support import write_spec

runner = CliRunner()


def test_the_syntax_reads_each_kind() -> None:
    assert parse_space("int:16..128:16").grid() == [16, 32, 48, 64, 80, 96, 112, 128]
    assert parse_space("int:1..4").grid() == [1, 2, 3, 4]
    assert parse_space("float:0..1:0.25").grid() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_space("choice:SGD,Adam").grid() == ["SGD", "Adam"]
    assert parse_space("choice:1,2.5,true,null").choices == (1, 2.5, True, None)  # each read as YAML
    assert parse_space(["L-BFGS-B", "SLSQP"]).choices == ("L-BFGS-B", "SLSQP")
    log = parse_space("log:1e-4..1e-1")
    assert (log.kind, log.low, log.high, log.log, log.grid()) == ("log", 1e-4, 0.1, True, None)
    assert parse_space("logint:1..64").integer and parse_space("logint:1..64").log


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("log:0..0.1", "a log range must stay above zero"),
        ("log:-1..1", "a log range must stay above zero"),
        ("float:1..1", "the range is empty or a single value"),
        ("int:5..2", "the range is empty or a single value"),
        ("int:1.5..3", "not a whole number"),
        ("int:1..10:4", "not a multiple of the step"),
        ("lgo:1..2", "did you mean 'log'?"),
        ("choice:a,a", "lists the value 'a' twice"),
        ("choice:SGD", "a choice of one value searches nothing"),
        ("log:1..10:2", "a log range takes no step"),
    ],
)
def test_bad_syntax_is_refused_with_the_value_echoed(text: str, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_space(text)
    assert said in str(caught.value)


def test_every_bad_space_is_one_error_each_all_at_once_exit_2(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    result = runner.invoke(
        app,
        [
            "sweep", str(spec), "--trials", "3", "--json",
            "--param", "train.optimizer.learning_rat=log:1e-4..1e-1",  # unknown field
            "--param", "train.max_steps=int:50..10",  # empty range
            "--param", "train.optimizer.args.learning_rate=log:0..0.1",  # log range through zero
            "--param", "train.epochs=float:1..10",  # a type the field does not take (int)
            "--param", "checkpoint.keep=choice:3,many",  # a choice the field does not take
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    lines = [line.strip() for line in error.splitlines()]
    assert lines[0].endswith("5 problems")
    by_place = {line.split(":", 1)[0].removeprefix("- "): line for line in lines[1:]}
    assert set(by_place) == {
        "--param train.optimizer.learning_rat",
        "--param train.max_steps",
        "--param train.optimizer.args.learning_rate",
        "--param train.epochs",
        "--param checkpoint.keep",
    }
    assert "unknown key" in by_place["--param train.optimizer.learning_rat"]
    assert (
        "'int:50..10'" in by_place["--param train.max_steps"]
        and "empty" in by_place["--param train.max_steps"]
    )
    assert "above zero" in by_place["--param train.optimizer.args.learning_rate"]
    assert "valid integer" in by_place["--param train.epochs"]  # 4.438, inside 1..10, is not whole
    assert (
        "'many'" in by_place["--param checkpoint.keep"]
        and "valid integer" in by_place["--param checkpoint.keep"]
    )
    assert not (tmp_path / "runs").exists()  # nothing written, no trial run


def test_the_spec_section_is_checked_with_its_lines(tmp_path: Path) -> None:
    extra = (
        "sweep:\n  params:\n    train.optimizer.args.learning_rate: log:0..1\n    seed: int:0..3\n"
        "  trials: 0\n"
    )
    spec = write_spec(tmp_path, extra=extra)
    result = runner.invoke(app, ["validate", str(spec), "--json"])
    assert result.exit_code == 2, result.output
    errors = {e["path"]: e for e in json.loads(result.stdout) if e["severity"] == "error"}
    assert set(errors) == {"sweep.params.train.optimizer.args.learning_rate", "sweep.trials"}
    assert errors["sweep.params.train.optimizer.args.learning_rate"]["line"] == 13
    assert errors["sweep.trials"]["line"] == 15


def test_a_spec_with_a_sweep_section_is_still_a_plain_spec(tmp_path: Path) -> None:
    extra = "sweep:\n  params:\n    model.params.hidden: [2, 8]\n  trials: 4\n  sampler: grid\n"
    loaded = load_spec(write_spec(tmp_path, extra=extra))
    assert loaded.spec.sweep is not None and loaded.spec.sweep.params == {"model.params.hidden": [2, 8]}
    assert loaded.spec.train is not None and loaded.spec.train.max_steps == 20


def test_the_sampler_must_fit_the_space_and_a_budget_is_needed(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    grid = runner.invoke(
        app,
        [
            "sweep",
            str(spec),
            "--sampler",
            "grid",
            "--param",
            "train.optimizer.args.learning_rate=log:1e-3..1",
        ],
    )
    assert grid.exit_code == 2 and "finitely many values" in grid.output
    cmaes = runner.invoke(
        app,
        [
            "sweep",
            str(spec),
            "--sampler",
            "cmaes",
            "--trials",
            "2",
            "--param",
            "model.params.hidden=choice:2,4",
        ],
    )
    assert cmaes.exit_code == 2 and "numeric ranges only" in cmaes.output
    none = runner.invoke(app, ["sweep", str(spec), "--param", "model.params.hidden=int:2..4"])
    assert none.exit_code == 2 and "needs a budget" in none.output
    wrong = runner.invoke(
        app,
        [
            "sweep",
            str(spec),
            "--trials",
            "2",
            "--objective",
            "fun",
            "--param",
            "model.params.hidden=int:2..4",
        ],
    )
    assert wrong.exit_code == 2 and "'fun' is what a minimize run reports" in wrong.output


def test_without_optuna_one_line_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    result = runner.invoke(
        app, ["sweep", str(write_spec(tmp_path)), "--trials", "2", "--param", "seed=int:0..3"]
    )
    assert result.exit_code == 2
    said = [line for line in result.output.splitlines() if line.strip()]
    assert len(said) == 1 and 'pip install "/path/to/optrun[sweep]"' in said[0], result.output


def _problems(result: Any) -> dict[str, str]:
    """The one error's problems, by place (the --json error's lines after the first)."""
    error = json.loads(result.stdout)["error"]
    lines = [line.strip().removeprefix("- ") for line in error.splitlines()[1:]]
    return dict(line.split(": ", 1) for line in lines)


def _grid_sweep(spec: str, *params: str) -> Any:
    """``optrun sweep SPEC --sampler grid --json`` with a ``--param`` per entry of ``params``."""
    flags = [part for param in params for part in ("--param", param)]
    return runner.invoke(app, ["sweep", spec, "--sampler", "grid", "--json", *flags])


def test_a_grid_that_cannot_be_enumerated_is_one_problem_not_a_missing_budget(tmp_path: Path) -> None:
    spec = str(write_spec(tmp_path))
    result = _grid_sweep(
        spec, "train.optimizer.args.learning_rate=log:1e-3..1", "model.params.hidden=int:1..20000"
    )
    assert result.exit_code == 2, result.output
    said = _problems(result)
    assert set(said) == {"--param train.optimizer.args.learning_rate", "--param model.params.hidden"}
    assert "continuous range" in said["--param train.optimizer.args.learning_rate"]
    assert "more than 10000 values" in said["--param model.params.hidden"]
    product = _grid_sweep(
        spec, "train.optimizer.args.learning_rate=float:0.001..0.1:0.001", "model.params.hidden=int:1..1000"
    )
    assert product.exit_code == 2, product.output
    assert "the grid has 100000 points" in _problems(product)["--sampler"]
    assert not (tmp_path / "runs").exists()


def test_a_path_is_refused_with_a_clean_message(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "sweep", str(write_spec(tmp_path)), "--trials", "2", "--json",
            "--param", "logg:train.optimizer.args.learning_rate=1e-3..1",  # the kind before the path
            "--param", "train.optimizer.name.x=float:1..2",  # through a scalar
            "--param", "model.params.hidden=int:2..4",
            "--param", "model.params.hidden=int:4..8",  # the same path twice
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    said = _problems(result)
    assert "is given twice" in said["--param model.params.hidden"]
    assert "a field path holds no ':'" in said["--param logg:train.optimizer.args.learning_rate"]
    assert said["--param train.optimizer.name.x"].startswith("train.optimizer.name is not a mapping")


def test_a_bad_out_leaves_no_study_in_the_storage_given(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    storage = tmp_path / "shared.journal"
    result = runner.invoke(
        app,
        [
            "sweep", str(write_spec(tmp_path)), "--trials", "2", "--out", str(tmp_path / "taken"),
            "--storage", str(storage), "--param", "model.params.hidden=int:2..4",
        ],
    )  # fmt: skip
    assert result.exit_code == 2 and "is not a sweep directory" in result.output
    assert not storage.exists() and not list(tmp_path.glob("shared.journal*"))


@pytest.mark.parametrize(
    ("module", "url", "said"),
    [
        ("psycopg2", "postgresql+psycopg2://me:secret@localhost/sweeps", "pip install psycopg2-binary"),
        ("redis", "redis://localhost:1", "pip install redis"),
    ],
)
def test_a_missing_database_driver_is_named_with_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, url: str, said: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import MODULE now raises ImportError
    result = runner.invoke(
        app,
        [
            "sweep", str(write_spec(tmp_path)), "--trials", "2", "--out", str(tmp_path / "sweep"),
            "--storage", url, "--param", "model.params.hidden=int:2..4",
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert (
        said in result.output and f"no module {module!r}" in result.output and "secret" not in result.output
    )
    assert not (tmp_path / "sweep").exists()


def test_a_pruner_that_cannot_prune_the_trials_is_off_and_said(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    steps = make_plan(
        spec, [], SweepFlags(params=["model.params.hidden=int:2..4"], trials=2, objective="steps")
    )
    assert (steps.pruner, steps.notes) == ("none", ())  # the default pruner, not asked for: nothing to say
    asked = make_plan(
        spec,
        [],
        SweepFlags(params=["model.params.hidden=int:2..4"], trials=2, objective="steps", pruner="median"),
    )
    assert asked.pruner == "none" and "does not stop trials scored by steps" in asked.notes[0]
    rosenbrock = Path(__file__).resolve().parents[1] / "configs" / "rosenbrock_bounds.yaml"
    minimize = make_plan(
        rosenbrock,
        [],
        SweepFlags(params=["minimize.options.maxiter=int:5..10"], trials=2, pruner="hyperband"),
    )
    assert minimize.pruner == "none" and "does not stop minimize trials" in minimize.notes[0]
    loss = make_plan(
        spec, [], SweepFlags(params=["model.params.hidden=int:2..4"], trials=2, pruner="hyperband")
    )
    assert (loss.pruner, loss.notes) == ("hyperband", ())


def test_a_bad_optrun_switch_stops_a_minimize_sweep_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTRUN_GRAPPLER", "twice")
    rosenbrock = Path(__file__).resolve().parents[1] / "configs" / "rosenbrock_bounds.yaml"
    out = tmp_path / "study"
    result = runner.invoke(
        app,
        [
            "sweep",
            str(rosenbrock),
            "--param",
            "minimize.options.maxiter=int:5..10",
            "--trials",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "OPTRUN_GRAPPLER must be once, tensorflow or off; got 'twice'" in result.output
    assert not out.exists()
    make_plan(
        write_spec(tmp_path), [], SweepFlags(params=["model.params.hidden=int:2..4"], trials=2)
    )  # train


def test_show_quiet_of_a_sweep_with_no_completed_trial_prints_nothing_and_fails(tmp_path: Path) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / ".optrun-sweep").write_text(json.dumps({"study": "tiny", "storage": None, "kind": "train"}))
    storage = JournalStorage(JournalFileBackend(str(sweep / "study.journal")))
    study = optuna.create_study(study_name="tiny", storage=storage)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    result = runner.invoke(app, ["show", str(sweep), "-q"])
    assert result.exit_code == 1
    assert result.stdout == "" and "no trial of" in result.stderr, result.output


def test_a_bad_sweep_field_is_its_own_problem_not_a_missing_budget(tmp_path: Path) -> None:
    spec = str(write_spec(tmp_path, extra="sweep:\n  trials: 3\n  params: {seed: 'int:0..3'}\n"))
    for override, place in (("sweep.sampler=bogus", "sweep.sampler"), ("sweep.trials=0", "sweep.trials")):
        result = runner.invoke(app, ["sweep", spec, "--json", "--set", override])
        assert result.exit_code == 2, result.output
        assert list(_problems(result)) == [place]  # no "--trials: the sweep needs a budget"
    # A grid needs no budget: the file's sampler counts while another section is wrong.
    grid = str(write_spec(tmp_path, extra="sweep:\n  sampler: grid\n  params: {seed: 'int:0..3'}\n"))
    result = runner.invoke(app, ["sweep", grid, "--json", "--set", "train.max_steps=0"])
    assert result.exit_code == 2 and list(_problems(result)) == ["train.max_steps"], result.output


def test_a_dotted_param_split_by_set_says_to_keep_the_path_whole(tmp_path: Path) -> None:
    spec = str(write_spec(tmp_path, extra="sweep:\n  trials: 3\n"))
    result = runner.invoke(
        app,
        ["sweep", spec, "--json", "--set", "sweep.params.train.optimizer.args.learning_rate=log:0.001..1"],
    )
    assert result.exit_code == 2, result.output
    assert _problems(result) == {
        "sweep.params": "'train' holds a mapping; params are keyed by the whole dotted path, as "
        "'train.optimizer.args.learning_rate: log:0.001..1' (on the command line: "
        "--param train.optimizer.args.learning_rate=log:0.001..1) (from --set)"
    }

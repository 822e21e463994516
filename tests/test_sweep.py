"""``optrun sweep`` end to end, in real processes: the grid, seeded TPE, failing and pruned trials,
two workers on one storage, and reading a sweep back with ``optrun runs`` / ``optrun show``.

Every trial is a 3-4-1 MLP trained for a few steps (tests/scripts/sweep_problem.py); what is
asserted is known without the code under test: the grid's product, the trial folders, each
trial's own config.yaml and result.json, the study as Optuna itself reads it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.sweep_support import (
    PROBLEM,
    config_of,
    result_of,
    run,
    start,
    study_trials,
    trial_dirs,
    write_spec,
)

pytest.importorskip("optuna")

RATES = [0.01, 0.1]
HIDDEN = [2, 8]


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("grid")
    spec = write_spec(folder)
    done = run(
        "sweep", str(spec), "--sampler", "grid", "--pruner", "none", "--out", "sweep", "--json",
        "--param", "train.optimizer.args.learning_rate=choice:0.01,0.1",
        "--param", "model.params.hidden=choice:2,8",
        cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return folder / "sweep", json.loads(done.stdout)


def test_a_grid_sweep_runs_exactly_the_grid(grid_sweep: tuple[Path, dict]) -> None:
    sweep, outcome = grid_sweep
    assert trial_dirs(sweep) == ["trial-0000", "trial-0001", "trial-0002", "trial-0003"]
    seen = []
    for name in trial_dirs(sweep):
        config = config_of(sweep / name)
        assert config.get("sweep") is None  # each trial's config.yaml is a plain spec
        seen.append(
            (config["train"]["optimizer"]["args"]["learning_rate"], config["model"]["params"]["hidden"])
        )
        result = result_of(sweep / name)
        assert (result["status"], result["steps"]) == ("completed", 20)
    assert sorted(seen) == sorted(itertools.product(RATES, HIDDEN))
    assert outcome["counts"] == {"complete": 4}
    assert len(study_trials(sweep / "study.journal")) == 4


def test_resuming_with_another_base_spec_is_refused(grid_sweep: tuple[Path, dict]) -> None:
    sweep, _ = grid_sweep
    marker = (sweep / ".optrun-sweep").read_text()
    refused = run(
        "sweep", "spec.yaml", "--sampler", "grid", "--pruner", "none", "--out", "sweep", "--resume",
        "--param", "train.optimizer.args.learning_rate=choice:0.01,0.1",
        "--param", "model.params.hidden=choice:2,8",
        "--set", "train.max_steps=10",
        cwd=sweep.parent,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "differs at base (the spec its trials start from" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (sweep / ".optrun-sweep").read_text() == marker
    assert trial_dirs(sweep) == ["trial-0000", "trial-0001", "trial-0002", "trial-0003"]


def test_runs_ranks_the_trials_and_show_names_the_best(grid_sweep: tuple[Path, dict]) -> None:
    sweep, outcome = grid_sweep
    listed = run("runs", str(sweep), "--json", cwd=sweep.parent)
    assert listed.returncode == 0, listed.stderr
    ranked = json.loads(listed.stdout)
    finals = [result_of(Path(t["run_dir"]))["final_loss"] for t in ranked]
    assert [t["value"] for t in ranked] == finals == sorted(finals)
    for trial in ranked:
        config = config_of(Path(trial["run_dir"]))
        assert trial["params"] == {
            "train.optimizer.args.learning_rate": config["train"]["optimizer"]["args"]["learning_rate"],
            "model.params.hidden": config["model"]["params"]["hidden"],
        }
    shown = run("show", str(sweep), "--json", cwd=sweep.parent)
    data = json.loads(shown.stdout)
    assert data["best"]["run_dir"] == ranked[0]["run_dir"] == outcome["best"]["run_dir"]
    assert set(data["importances"]) == {"train.optimizer.args.learning_rate", "model.params.hidden"}
    text = run("show", str(sweep), cwd=sweep.parent).stdout
    assert "best trial" in text and "parameter importances" in text and "final_loss by trial" in text
    one = run("show", ranked[0]["run_dir"], "--json", cwd=sweep.parent)  # a trial is an ordinary run
    assert json.loads(one.stdout)["status"] == "succeeded"
    every = json.loads(run("runs", str(sweep.parent), "--json", cwd=sweep.parent).stdout)
    assert sorted(Path(e["run_dir"]).name for e in every) == trial_dirs(sweep)


def test_tpe_with_a_seed_is_reproducible_and_prunes_cleanly(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, max_steps=30)
    args = (
        "sweep", str(spec), "--trials", "12", "--seed", "11", "-q",
        "--param", "train.optimizer.args.learning_rate=log:1e-3..1",
        "--param", "model.params.hidden=int:2..8",
    )  # fmt: skip
    sweeps = [start(*args, "--out", out, cwd=tmp_path) for out in ("a", "b")]  # side by side: jobs 1 each
    for sweep in sweeps:
        _, err = sweep.communicate(timeout=300)
        assert sweep.returncode == 0, err
    a, b = (study_trials(tmp_path / out / "study.journal") for out in ("a", "b"))
    assert len(a) == len(b) == 12
    assert [(t.params, t.state, t.value) for t in a] == [(t.params, t.state, t.value) for t in b]
    assert len({t.params["train.optimizer.args.learning_rate"] for t in a}) == 12
    pruned = [t for t in a if t.state.name == "PRUNED"]
    assert pruned, "the median pruner stopped no trial"
    for trial in pruned:
        result = result_of(tmp_path / "a" / f"trial-{trial.number:04d}")
        assert result["status"] == "pruned" and result["success"] is False
        assert result["steps"] < 30 and result["message"].startswith(f"pruned at step {result['steps']}")
        assert result["steps"] == max(trial.intermediate_values)


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    done = run(
        "sweep", str(spec), "--sampler", "grid", "--out", "sweep", "--json",
        "--param", "model.params.fail=choice:false,true",  # the builder raises
        "--param", "train.optimizer.args.learning_rate=choice:0.05,1e12",  # the loss blows up
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # one trial completed
    trials = {
        (t.params["model.params.fail"], t.params["train.optimizer.args.learning_rate"]): t
        for t in study_trials(tmp_path / "sweep" / "study.journal")
    }
    assert len(trials) == 4
    assert trials[(False, 0.05)].state.name == "COMPLETE"
    assert {k for k, t in trials.items() if t.state.name == "FAIL"} == {
        (True, 0.05),
        (True, 1e12),
        (False, 1e12),
    }
    assert "asked to fail" in trials[(True, 0.05)].user_attrs["message"]
    assert "non-finite loss or gradient" in trials[(False, 1e12)].user_attrs["message"]  # why it diverged
    # A trial that failed before its run could start has no run directory, but its log.
    started = {f"trial-{t.number:04d}" for k, t in trials.items() if not k[0]}
    assert set(trial_dirs(tmp_path / "sweep")) == started
    assert result_of(tmp_path / "sweep" / f"trial-{trials[(False, 1e12)].number:04d}")["status"] == "diverged"
    assert len(list((tmp_path / "sweep" / "logs").glob("trial-*.log"))) == 4


def test_two_workers_on_one_storage_share_the_study(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, max_steps=60)
    storage = tmp_path / "shared.journal"
    args = (
        "sweep", str(spec), "--trials", "8", "--storage", str(storage), "--study", "shared", "-q",
        "--pruner", "none", "--param", "train.optimizer.args.learning_rate=log:1e-3..1",
    )  # fmt: skip
    workers = [start(*args, "--out", name, cwd=tmp_path) for name in ("w1", "w2")]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = study_trials(storage, "shared")
    assert sorted(t.number for t in trials) == list(range(8))  # the budget is the study's, not each worker's
    assert all(t.state.name == "COMPLETE" for t in trials)
    ran = {name: set(trial_dirs(tmp_path / name)) for name in ("w1", "w2")}
    assert ran["w1"] and ran["w2"] and not ran["w1"] & ran["w2"]  # shared, none run twice
    assert ran["w1"] | ran["w2"] == {f"trial-{n:04d}" for n in range(8)}
    assert len({repr(t.params) for t in trials}) == 8
    best = [json.loads(run("show", name, "--json", cwd=tmp_path).stdout)["best"] for name in ("w1", "w2")]
    assert best[0] == best[1] and best[0]["value"] == min(t.value for t in trials)


def test_values_only_the_code_refuses_are_all_refused_before_anything_is_written(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    done = run(
        "sweep", str(spec), "--trials", "4", "--out", "sweep", "--json",
        "--set", "train.optimizer.args.momentum=0.9",
        "--param", "train.optimizer.args.learning_rat=log:1e-3..1",  # SGD takes no such argument
        "--param", "model.params.hiden=int:2..8",  # nor does the builder
        "--param", "train.optimizer.name=choice:SGD,Adam",  # Adam takes no momentum
        "--param", "loss=choice:mse,maee",  # no such Keras loss
        "--param", "model.params.hidden=int:2..8",  # fine
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stdout)["error"]
    lines = [line.strip().removeprefix("- ") for line in error.splitlines()[1:]]
    said = dict(line.split(": ", 1) for line in lines)
    assert error.splitlines()[0].endswith("4 problems")
    assert "did you mean 'learning_rate'?" in said["--param train.optimizer.args.learning_rat"]
    assert "did you mean 'hidden'?" in said["--param model.params.hiden"]
    assert "'Adam' does not fit train.optimizer.args.momentum" in said["--param train.optimizer.name"]
    assert "'maee'" in said["--param loss"] and "did you mean 'mae'?" in said["--param loss"]
    assert not (tmp_path / "sweep").exists()


def test_a_method_scipy_does_not_have_is_refused(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "rosenbrock_bounds.yaml"
    done = run(
        "sweep", str(config), "--sampler", "grid", "--out", "sweep",
        "--param", "minimize.method=choice:L-BFGS-B,FOO",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--param minimize.method: the value 'FOO' does not fit the field" in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_trial_whose_process_dies_quotes_its_own_log(tmp_path: Path) -> None:
    (tmp_path / "dying.py").write_text(
        "import os\n\n\ndef build_model(hidden=4):\n    print('dying now', flush=True)\n    os._exit(3)\n"
    )
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace(f"{PROBLEM}:build_model", "dying.py:build_model"))
    done = run(
        "sweep", str(spec), "--trials", "1", "--out", "sweep", "--json",
        "--param", "model.params.hidden=int:2..4",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # no trial completed
    message = json.loads(done.stdout)["finished"][0]["message"]
    assert "(exit code 3): dying now" in message and message.endswith("sweep/logs/trial-0000.log")


def test_validate_checks_the_sweep_sections_paths_and_values(tmp_path: Path) -> None:
    # Lines 13 and 14: each path against the spec's model, each value against its field.
    extra = (
        "sweep:\n  params:\n    train.optimizer.learning_rat: log:1e-3..1e-1\n"
        "    checkpoint.keep: int:-5..3\n    model.params.hidden: int:2..8\n  trials: 4\n"
    )
    spec = write_spec(tmp_path, extra=extra)
    done = run("validate", str(spec), "--json", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    errors = {e["path"]: e for e in json.loads(done.stdout) if e["severity"] == "error"}
    assert set(errors) == {"sweep.params.train.optimizer.learning_rat", "sweep.params.checkpoint.keep"}
    assert errors["sweep.params.train.optimizer.learning_rat"]["line"] == 13
    assert "unknown key" in errors["sweep.params.train.optimizer.learning_rat"]["message"]
    assert errors["sweep.params.checkpoint.keep"]["line"] == 14
    assert "-5" in errors["sweep.params.checkpoint.keep"]["message"]


def test_the_command_to_continue_keeps_every_flag_given() -> None:
    from optrun_cli.sweep import resume_command

    given = ["sweep", "s.yaml", "--trials", "6", "--pruner", "none", "--set", "train.epochs=200", "--force"]
    assert resume_command(given, Path("runs/x-sweep")) == (
        "optrun sweep s.yaml --trials 6 --pruner none --set train.epochs=200 --out runs/x-sweep --resume"
    )
    quoted = ["sweep", "my spec.yaml", "--out=/tmp/s", "--resume", "--set", "name=a b"]
    assert (
        resume_command(quoted, Path("/tmp/s"))
        == "optrun sweep 'my spec.yaml' --out=/tmp/s --set 'name=a b' --resume"
    )


def test_show_never_creates_the_database_a_foreign_marker_names(tmp_path: Path) -> None:
    sweep = tmp_path / "s"
    sweep.mkdir()
    database = tmp_path / "new.sqlite"
    marker = {"study": "x", "storage": f"sqlite:///{database}", "objective": ["not", "text"]}
    (sweep / ".optrun-sweep").write_text(json.dumps(marker))
    out = run("show", str(sweep), cwd=tmp_path)
    assert out.returncode == 2 and "objective of the wrong type" in out.stderr, out.stderr
    (sweep / ".optrun-sweep").write_text(json.dumps({**marker, "objective": "fun"}))
    out = run("show", str(sweep), cwd=tmp_path)
    assert out.returncode == 2 and "is missing" in out.stderr, out.stderr
    assert not database.exists()  # show only reads


def test_a_record_a_kill_cut_short_is_dropped_and_the_journal_goes_on(tmp_path: Path) -> None:
    import optuna

    from optrun.sweep.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = str(tmp_path / "study.journal")
    study = optuna.create_study(storage=open_storage(path), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)
    whole = Path(path).read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    Path(path).write_bytes(whole + last[:40])  # a kill while a record was written: no newline
    again = optuna.load_study(study_name="s", storage=open_storage(path))
    again.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert Path(path).read_bytes().startswith(whole)  # the whole records stay as they were
    trials = optuna.load_study(study_name="s", storage=open_storage(path)).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3


def test_a_sweep_copied_elsewhere_shows_and_resumes_its_own_trials(
    grid_sweep: tuple[Path, dict], tmp_path: Path
) -> None:
    import shutil

    sweep, _ = grid_sweep
    copy = tmp_path / "moved" / "sweep"
    shutil.copytree(sweep, copy)
    listed = run("runs", str(copy), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    dirs = [Path(t["run_dir"]) for t in json.loads(listed.stdout)]
    assert sorted(d.name for d in dirs) == trial_dirs(sweep)
    assert {d.parent for d in dirs} == {copy.resolve()}  # the copy's own trials, not the original's


def test_an_interrupted_trial_of_a_moved_sweep_is_found_where_it_is_now(tmp_path: Path) -> None:
    import optuna

    from optrun.sweep.resume import orphans
    from optrun.sweep.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    here = tmp_path / "here"
    here.mkdir()
    study = optuna.create_study(storage=open_storage(str(here / "study.journal")), study_name="s")
    trial = study.ask()
    trial.set_user_attr("run_dir", "/somewhere/else/sweep/trial-0000")  # where it ran before the move
    trial.set_user_attr("worker", "gone")
    found = orphans(study, here, lambda said: None, own_storage=True)
    assert [o.out for o in found] == [here.resolve() / "trial-0000"]
    assert orphans(study, here, lambda said: None, own_storage=False) == []  # a shared storage's
    # A trial of a folder that joined this journal (--storage) stays that folder's.
    joined = tmp_path / "joined"
    joined.mkdir()
    marker = {"study": "s", "storage": str(here / "study.journal")}
    (joined / ".optrun-sweep").write_text(json.dumps(marker))
    theirs = study.ask()
    theirs.set_user_attr("run_dir", str(joined / "trial-0001"))
    theirs.set_user_attr("worker", "gone")
    found = orphans(study, here, lambda said: None, own_storage=True)
    assert [o.out for o in found] == [here.resolve() / "trial-0000"]

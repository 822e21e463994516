"""XLA's persistent compilation cache, and the compile time reported apart from the solve time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import InvalidArgumentError
from optrun.evaluation.compile_cache import FLAG, default_cache_dir, enable_compile_cache
from optrun_cli.main import app


def test_default_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPTRUN_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "xla"
    monkeypatch.delenv("OPTRUN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "optrun" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "optrun" / "xla"


def test_enable_appends_the_flag_and_keeps_one_already_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    got = enable_compile_cache(tmp_path / "c")
    assert got == (tmp_path / "c").resolve() and got.is_dir()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {FLAG}={got}"
    assert enable_compile_cache(tmp_path / "other") == got  # the first one stays
    assert not (tmp_path / "other").exists()


def test_bad_directories_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"cannot create '.*file/c' \(Not a directory\)"):
        enable_compile_cache(tmp_path / "file" / "c")
    with pytest.raises(InvalidArgumentError, match="holds a space, which TF_XLA_FLAGS cannot carry"):
        enable_compile_cache(tmp_path / "with space")
    assert "TF_XLA_FLAGS" not in os.environ


RUN = """
import json, sys
import numpy as np, tensorflow as tf
import optrun
cache = optrun.enable_compile_cache(sys.argv[1])
v = tf.Variable(np.zeros(5))
opt = optrun.ScipyOptimizerInterface(
    lambda: tf.reduce_sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1.0 - v[:-1]) ** 2), jit_compile=True
)
r = opt.minimize()
print(json.dumps({"x": v.numpy().tolist(), "nfev": int(r.nfev)}))
"""


def test_a_second_process_reuses_the_compiled_program(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}

    def run() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(cache)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = run()
    entries = sorted(p.name for p in cache.iterdir())
    assert entries and all(name.startswith("xla_compile_cache") for name in entries)
    second = run()
    assert sorted(p.name for p in cache.iterdir()) == entries  # served from the cache: nothing new
    assert second == first
    assert first["x"] == pytest.approx([1.0] * 5, abs=1e-4)


def test_the_run_reports_compile_and_solve_time_and_the_start_point(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: cc\nmodel: {builder: 'optrun.spec.defaults.problems:constrained_vector'}\n"
        "loss: 'optrun.spec.defaults.problems:sum_of_squares'\n"
        "minimize:\n  method: SLSQP\n  compile_cache: mycache\n  constraints:\n"
        "    equalities: ['optrun.spec.defaults.problems:second_is_one']\n"
        "    inequalities: ['optrun.spec.defaults.problems:first_at_least_one']\n"
        "checkpoint: {export: none}\n"
    )
    runner = CliRunner()
    done = runner.invoke(app, ["minimize", str(spec), "--out", str(tmp_path / "run"), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    # In-process, an earlier test's XLA compile may have fixed the flags: the directory in use is
    # whatever TF_XLA_FLAGS names, and it is the one reported.
    assert result["compile_cache"] == os.environ["TF_XLA_FLAGS"].split(f"{FLAG}=")[1].split()[0]
    assert result["compile_s"] >= 0 and result["solve_s"] >= 0
    assert result["compile_s"] + result["solve_s"] == pytest.approx(result["time_s"], abs=2e-3)
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    # The start point v = (7, 7): loss 98, violation max(|7 - 1|, max(0, -(7 - 1))) = 6.
    assert (first["step"], first["loss"], first["constraint_violation"]) == (0, 98.0, 6.0)


def test_none_and_jit_off_leave_the_flags_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.runner.objective import compile_cache_for
    from optrun.spec.load import load_spec

    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    for setting in ("minimize.compile_cache=none", "minimize.jit_compile=false"):
        loaded = load_spec(None, [setting], default="minimize")
        assert compile_cache_for(loaded) is None
    assert "TF_XLA_FLAGS" not in os.environ
    (tmp_path / "f").write_text("x")
    loaded = load_spec(None, [f"minimize.compile_cache={tmp_path / 'f' / 'c'}"], default="minimize")
    with pytest.raises(Exception, match=r"minimize\.compile_cache: cannot create"):
        compile_cache_for(loaded)

"""XLA's persistent compilation cache, and the compile time reported apart from the solve time."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import InvalidArgumentError
from optrun.evaluation import compile_cache
from optrun.evaluation.compile_cache import (
    FLAG,
    CompileCacheWarning,
    cache_key,
    check_cache_dir,
    cpu_features,
    default_cache_dir,
    enable_compile_cache,
    entry_is_whole,
    remove_unreadable_entries,
)
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
    assert got == (tmp_path / "c" / cache_key()).resolve() and got.is_dir()
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


def test_the_check_refuses_what_enable_would_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"cannot create '.*file/c' \(Not a directory\)"):
        check_cache_dir(tmp_path / "file" / "c")
    with pytest.raises(InvalidArgumentError, match="holds a space"):
        check_cache_dir(tmp_path / "with space")
    # /proc takes no new directory, though its permission bits (and root) say it would.
    with pytest.raises(InvalidArgumentError, match=r"cannot create '/proc/optrun-x'"):
        check_cache_dir("/proc/optrun-x")
    check_cache_dir(tmp_path / "new" / "deep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing made, nothing left
    assert "TF_XLA_FLAGS" not in os.environ


def test_the_cache_is_keyed_by_tensorflow_version_and_cpu_features(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: sse2 fma avx2 sse2\n\nprocessor\t: 1\nflags\t\t: sse2\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve\n")
    assert cpu_features(x86) == "avx2 fma sse2"  # sorted, once each
    assert cpu_features(arm) == "asimd fp sve"
    monkeypatch.setattr(compile_cache, "cpu_features", lambda: "avx2 fma sse2")
    monkeypatch.setattr(compile_cache, "tensorflow_version", lambda: "2.99.0")
    monkeypatch.setattr(compile_cache.platform, "machine", lambda: "x86_64")
    digest = hashlib.sha256(b"avx2 fma sse2").hexdigest()[:12]
    assert cache_key() == f"tf2.99.0-x86_64-{digest}"
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    assert enable_compile_cache(tmp_path / "c") == (tmp_path / "c" / f"tf2.99.0-x86_64-{digest}").resolve()
    # Another CPU, or another TensorFlow, gets a directory of its own.
    monkeypatch.setattr(compile_cache, "cpu_features", lambda: "avx2 avx512f fma sse2")
    assert cache_key() != f"tf2.99.0-x86_64-{digest}"
    monkeypatch.setattr(compile_cache, "cpu_features", lambda: "avx2 fma sse2")
    monkeypatch.setattr(compile_cache, "tensorflow_version", lambda: "2.100.0")
    assert cache_key() == f"tf2.100.0-x86_64-{digest}"


# An XlaSerializedCacheEntry as TensorFlow writes it, in miniature: key (field 1), HLO module (2)
# and executable (3), each length-delimited: tag (field << 3 | 2), length, bytes.
WHOLE = b"\x0a\x03key" + b"\x12\x03hlo" + b"\x1a\x04exec"


def _aged(path: Path, data: bytes, seconds: float = 3600) -> Path:
    path.write_bytes(data)
    os.utime(path, (time.time() - seconds, time.time() - seconds))
    return path


def test_an_entry_is_whole_only_when_its_fields_end_at_the_end_of_the_file(tmp_path: Path) -> None:
    cases = {
        WHOLE: True,
        WHOLE[:-1]: False,  # the executable cut one byte short
        WHOLE[:10]: False,  # cut after the HLO module: no executable
        WHOLE + b"\x1a": False,  # a tag with nothing after it
        b"": False,
        b"\x0a\x03key\x12\x03hlo": False,  # no executable at all
        b"\x0f\x00": False,  # wire type 7 does not exist
    }
    for i, (data, whole) in enumerate(cases.items()):
        path = tmp_path / f"e{i}.pb"
        path.write_bytes(data)
        assert entry_is_whole(path) is whole, data


def test_unreadable_entries_are_removed_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keyed = tmp_path / "c" / cache_key()
    keyed.mkdir(parents=True)
    whole = _aged(keyed / "xla_compile_cache__1__2__XLA_CPU_JIT.pb", WHOLE)
    cut = _aged(keyed / "xla_compile_cache__3__4__XLA_CPU_JIT.pb", WHOLE[:7])
    empty = _aged(keyed / "xla_compile_cache__5__6__XLA_CPU_JIT.pb", b"")
    writing = _aged(keyed / "xla_compile_cache__7__8__XLA_CPU_JIT.pb", WHOLE[:7], seconds=1)
    other = _aged(keyed / "notes.txt", b"mine")
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    with pytest.warns(CompileCacheWarning) as caught:
        assert enable_compile_cache(tmp_path / "c") == keyed.resolve()
    assert len(caught) == 1
    assert f"removed 2 unreadable compiled programs from {keyed.resolve()}" in str(caught[0].message)
    assert not cut.exists() and not empty.exists()
    # A whole entry, one another process may be writing right now, and other files stay.
    assert whole.exists() and writing.exists() and other.exists()
    assert remove_unreadable_entries(keyed) == []


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
print(json.dumps({"x": v.numpy().tolist(), "nfev": int(r.nfev), "cache": str(cache)}))
"""


def test_a_second_process_reuses_the_compiled_program(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}

    def run() -> tuple[dict, str]:
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(cache)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr

    first, _ = run()
    keyed = Path(first["cache"])
    assert keyed.parent == cache.resolve()  # a subdirectory for this TensorFlow and this CPU
    entries = sorted(p.name for p in keyed.iterdir())
    assert entries and all(name.startswith("xla_compile_cache") for name in entries)
    second, _ = run()
    assert sorted(p.name for p in keyed.iterdir()) == entries  # served from the cache: nothing new
    assert second == first
    assert first["x"] == pytest.approx([1.0] * 5, abs=1e-4)
    # An entry cut short (its writer killed) would fail every later run: it is removed, said once,
    # and the program compiled anew.
    for name in entries:
        _aged(keyed / name, (keyed / name).read_bytes()[:1000])
    third, err = run()
    assert third == first
    assert f"CompileCacheWarning: removed {len(entries)} unreadable compiled program" in err
    assert sorted(p.name for p in keyed.iterdir()) == entries
    assert all(entry_is_whole(keyed / name) for name in entries)


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


def test_an_unusable_directory_is_refused_with_its_reason_as_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optrun.errors import InvalidArgumentError
    from optrun.evaluation.compile_cache import CompileCacheError, enable_compile_cache
    from optrun.runner.objective import compile_cache_for
    from optrun.spec.load import load_spec

    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    (tmp_path / "f").write_text("x")  # a file where a folder should be: mkdir fails with ENOTDIR
    base = tmp_path / "f" / "c"
    with pytest.raises(CompileCacheError) as caught:
        enable_compile_cache(base)
    error = caught.value
    assert error.directory == base and isinstance(error, InvalidArgumentError)
    assert error.reason == f"cannot create {str(base)!r} (Not a directory)"
    assert error.advice == "give a writable directory, or 'none' to compile every time"
    assert "TF_XLA_FLAGS" not in os.environ  # nothing turned on
    with pytest.raises(CompileCacheError, match="holds a space"):
        enable_compile_cache(tmp_path / "with space")
    # The environment's folder: the reason, with advice about the variable, not the spec key.
    monkeypatch.setenv("OPTRUN_CACHE_DIR", str(tmp_path / "f"))
    with pytest.raises(InvalidArgumentError) as env_caught:
        compile_cache_for(load_spec(None, [], default="minimize"))
    said = str(env_caught.value)
    xla = tmp_path / "f" / "xla"
    assert said == (
        f"OPTRUN_CACHE_DIR={str(tmp_path / 'f')!r}: cannot create {str(xla)!r} (Not a directory); "
        "point it at a writable folder, unset it, or set minimize.compile_cache: none"
    )

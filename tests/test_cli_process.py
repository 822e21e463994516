"""The installed ``optrun`` entry point in real subprocesses: exit codes, signals, start-up cost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def optrun() -> list[str]:
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "optrun"]


def run(*args: str, cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*optrun(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV, check=False
    )


def test_help_and_validate_help_do_not_import_tensorflow() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom optrun_cli.main import app\n"
        "for args in (['--help'], ['validate', '--help'], ['train', '--help'], ['schema']):\n"
        "    r = CliRunner().invoke(app, args)\n    assert r.exit_code == 0, r.output\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_exit_codes(tmp_path: Path) -> None:
    ok = run("minimize", "--method", "SLSQP", "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["solution"]["v"] == pytest.approx([1.0, 1.0], abs=1e-6)
    # With --json, progress goes to stderr; TensorFlow's native start-up log does not appear.
    assert "minimize iteration 2/100  nfev" in ok.stderr
    assert "oneDNN" not in ok.stderr and "cuda" not in ok.stderr.lower()
    budget = run("minimize", "--maxiter", "1", "--out", "f", "-q", cwd=tmp_path)
    assert budget.returncode == 0  # stopped by --maxiter: a budget reached, as train at max_steps
    assert json.loads((tmp_path / "f" / "result.json").read_text())["status"] == "budget_reached"
    usage = run("minimize", "--method", "bogus", "--out", "u", cwd=tmp_path)
    assert usage.returncode == 2
    assert "got 'bogus'" in usage.stderr and "Traceback" not in usage.stderr
    assert not (tmp_path / "u").exists()
    missing = run("train", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    schema = run("schema", cwd=tmp_path)
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "ExperimentSpec"
    config = Path(__file__).resolve().parents[1] / "configs" / "constrained_slsqp.yaml"
    checked = run("validate", str(config), "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    (entry,) = json.loads(checked.stdout)
    assert entry["severity"] == "info" and entry["message"] == "minimize checks passed"
    assert entry["report"]["constraint_residuals"]["equalities"] == [6.0]  # v[1] - 1 at v = 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmodel: {builder: m.py:build}\nloss: {kind: keras}\nseed: -3\nextra: 1\n")
    invalid = run("validate", str(bad), cwd=tmp_path)
    assert invalid.returncode == 2
    assert all(part in invalid.stderr for part in ("loss.name", "seed", "extra: unknown key", "(line 4)"))
    via_module = subprocess.run(
        [sys.executable, "-m", "optrun", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert via_module.returncode == 0 and via_module.stdout.strip()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_checkpoints_and_exits(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    proc = subprocess.Popen(
        [
            *optrun(),
            "train",
            "--out",
            "run",
            "--set",
            "train.max_steps=1000000",
            "--set",
            "logging.every_steps=5",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "interrupted" and result["steps"] > 0
    assert list((tmp_path / "run" / "checkpoints").glob(f"ckpt-{result['steps']}.index"))
    assert "Traceback" not in err


@pytest.mark.parametrize("after_s", [0.05, 0.4])
def test_sigterm_while_the_command_starts_is_said_and_leaves_nothing(tmp_path: Path, after_s: float) -> None:
    # Python's default for SIGTERM ends the process without a word (exit -15); optrun says it.
    proc = subprocess.Popen(
        [*optrun(), "train", "--out", "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=ENV,
    )  # fmt: skip
    time.sleep(after_s)  # importing the CLI, then parsing the command line
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_saved_model_export_serves_averaged_weights_without_optrun(tmp_path: Path) -> None:
    done = run(
        "train",
        "--out",
        "sm",
        "-q",
        "--set",
        "train.max_steps=30",
        "--set",
        "checkpoint.export=saved_model",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    code = (
        "import json, sys\nimport tensorflow as tf\n"
        f"m = tf.saved_model.load({str(tmp_path / 'sm' / 'export' / 'saved_model')!r})\n"
        "x = tf.reshape(tf.range(8, dtype=tf.float32), [2, 4]) / 8.0\n"
        "print(json.dumps(m.serve(x).numpy().tolist()))\n"
        "assert 'optrun' not in sys.modules\n"
    )
    served = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        check=False,
        cwd=tmp_path,
    )
    assert served.returncode == 0, served.stderr
    import numpy as np
    import tensorflow as tf

    from optrun.spec.defaults.problems import mlp

    plain = mlp(hidden=32)
    tf.train.Checkpoint(model=plain).restore(str(tmp_path / "sm" / "averaged" / "ckpt")).expect_partial()
    x = tf.reshape(tf.range(8, dtype=tf.float32), [2, 4]) / 8.0
    np.testing.assert_allclose(json.loads(served.stdout), plain(x).numpy(), atol=1e-6)


def test_a_closed_stdout_does_not_lose_the_run(tmp_path: Path) -> None:
    """``optrun train ... | head -2``: the reader leaves early; the run still finishes and writes."""
    cmd = " ".join(optrun()) + (
        " train --out run --set train.max_steps=60 --set logging.every_steps=1 | head -2; "
        'exit "${PIPESTATUS[0]}"'
    )
    proc = subprocess.run(
        ["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "completed" and result["steps"] == 60
    assert (tmp_path / "run" / "checkpoints" / "ckpt-60.index").is_file()


def test_interrupt_while_xla_builds_in_the_background(tmp_path: Path) -> None:
    """SIGINT while the XLA tier compiles in the background: exit 130, result.json and the
    checkpoint written as for any interrupt, no traceback, no hang."""
    config = Path(__file__).resolve().parents[1] / "configs" / "pinn_ode.yaml"
    proc = subprocess.Popen(
        [*optrun(), "minimize", str(config), "--out", "run", "--set", "logging.every_steps=1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "OPTRUN_TIER2": "now"},  # the build starts at the first point
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "interrupted"
    assert list((tmp_path / "run" / "checkpoints").glob("ckpt-*.index"))
    assert "Traceback" not in err


def test_a_first_run_shows_only_optrun_and_verbose_shows_tensorflow(tmp_path: Path) -> None:
    # As `make demo` runs it: no TF_CPP_MIN_LOG_LEVEL of the user's; XLA on, and the second
    # run loads the first one's programs from the compilation cache (whose loader logs errors).
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_XLA_FLAGS")}
    env["OPTRUN_CACHE_DIR"] = str(tmp_path / "cache")
    spec = Path(__file__).resolve().parents[1] / "configs" / "pinn_ode.yaml"
    args = [*optrun(), "minimize", str(spec), "--set", "minimize.jit_compile=true"]
    args += ["--set", "minimize.options.maxiter=3", "--out", "r", "--force"]

    def stderr(*extra: str) -> str:
        done = subprocess.run(
            [*args, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode in (0, 1), done.stderr
        return done.stderr

    native = re.compile(r"^[IWEF]\d{4} ", re.M)  # absl's prefix: I1205 06:09:59.0 ...
    for _ in range(2):
        assert not native.search(stderr()), "TensorFlow's C++ log reached a default run"
    assert list((tmp_path / "cache" / "xla").glob("*/*.pb")), "the compilation cache stayed empty"
    assert native.search(stderr("-v")), "--verbose did not show TensorFlow's C++ log"


def test_make_demo_writes_nothing_to_stderr(tmp_path: Path) -> None:
    # The Makefile's own demo commands, run as `make demo` runs them (no TF_CPP_MIN_LOG_LEVEL of
    # the user's), twice: the second with the compilation cache the first one filled.
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [line.strip().split() for line in recipe if line.strip().startswith("$(BIN)/optrun ")]
    assert [c[1] for c in commands] == ["minimize", "train"], recipe
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_XLA_FLAGS")}
    # The variables the Makefile exports to every target, or to demo's (`demo: export X ?= 1`).
    for name, value in re.findall(r"^(?:demo:\s*)?export (\w+)\s*[:?]?=\s*(\S*)", makefile, re.M):
        env[name] = value
    env["OPTRUN_CACHE_DIR"] = str(tmp_path / "cache")
    for _ in range(2):
        for command in commands:
            done = subprocess.run(
                [*optrun(), *command[1:]],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert done.stderr == "", f"{' '.join(command)} wrote to stderr:\n{done.stderr}"
            assert "optrun " + command[1] in done.stdout


KILLED_AT = """
import os, signal
import numpy as np
import tensorflow as tf

calls = [0]

def _count():
    calls[0] += 1
    if calls[0] == int(os.environ.get("KILL_AT_EVALUATION", "0")):
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would: no handler runs
    return np.float64(0.0)

def point():
    return tf.Variable(np.zeros(6), name="x")

def rosenbrock(x):
    value = tf.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    return value + 0.0 * tf.py_function(_count, [], tf.float64)
"""


def test_a_killed_minimize_resumes_from_its_last_periodic_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "k.py").write_text(KILLED_AT)
    (tmp_path / "s.yaml").write_text(
        "name: k\nmodel: {builder: k.py:point}\nloss: k.py:rosenbrock\n"
        "minimize: {method: L-BFGS-B, options: {maxiter: 40}, jit_compile: false}\n"
        "checkpoint: {every_steps: 5, keep: 20, export: none}\nlogging: {every_steps: 1}\n"
    )
    killed = subprocess.run(
        [*optrun(), "minimize", "s.yaml", "-q", "--out", "run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**ENV, "KILL_AT_EVALUATION": "30"},
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    saved = sorted(int(p.stem.split("-")[1]) for p in (tmp_path / "run" / "checkpoints").glob("ckpt-*.index"))
    assert saved and all(n % 5 == 0 for n in saved) and not (tmp_path / "run" / "result.json").exists()
    over = run(
        "minimize", "s.yaml", "-q", "--out", "run", "--resume", "--maxiter", str(saved[-1] - 1), cwd=tmp_path
    )
    assert over.returncode == 2 and "which uses up its budget" in over.stderr  # past it: refused
    assert not (tmp_path / "run" / "result.json").exists()
    used = run(
        "minimize", "s.yaml", "-q", "--out", "run", "--resume", "--maxiter", str(saved[-1]), cwd=tmp_path
    )
    assert used.returncode == 0, used.stderr  # at it: the end the kill left unwritten is written
    ended = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (ended["status"], ended["nit"]) == ("budget_reached", saved[-1]), ended
    resumed = run("minimize", "s.yaml", "-q", "--out", "run", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["nit"] == 40  # the whole budget, counted across the kill
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(0, 41))  # each iteration logged once: lines past the checkpoint dropped
    # The minimum of Rosenbrock's function is all ones (by hand); 40 iterations get close.
    np.testing.assert_allclose(result["solution"]["x"], np.ones(6), atol=0.2)


def test_json_stdout_holds_only_the_json_when_a_c_library_prints(tmp_path: Path) -> None:
    pytest.importorskip("cyipopt")
    spec = Path(__file__).resolve().parents[1] / "configs" / "constrained_ipopt.yaml"
    # print_level 3: IPOPT writes its tables to the process's stdout, from C.
    done = run(
        "minimize", str(spec), "--set", "minimize.options.print_level=3", "--json", "--out", "r", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "converged"
    assert "Total number of variables" in done.stderr  # moved, not lost


def test_json_with_stdout_closed_still_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [*optrun(), "minimize", "--method", "SLSQP", "--json", "-q", "--out", "r"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        timeout=180,
        env=ENV,
        check=False,
        preexec_fn=lambda: os.close(1),  # as `>&-` leaves it
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r" / "result.json").read_text())["status"] == "converged"


def test_validate_json_stays_json_when_user_code_prints(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import tensorflow as tf\nprint('hello from the module')\n"
        "def build():\n    print('building')\n    return tf.Variable([1.0])\n"
        "def loss(v):\n    print('loss')\n    return tf.reduce_sum(v * v)\n"
    )
    (tmp_path / "s.yaml").write_text("name: p\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    done = run("validate", "s.yaml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)  # nothing but the JSON on stdout
    assert isinstance(entries, list) and entries and "building" in done.stderr

"""Exact resume after 8 signals (SIGINT, SIGTERM), see resume_loop.py; and bursts of signals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.slow.resume_loop import ENV, lines, make_reference, optrun, run_loop, started, weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    return make_reference(tmp_path_factory)


def test_signals_then_resume(reference: tuple[Path, dict[str, np.ndarray]]) -> None:
    run_loop(reference, [signal.SIGINT, signal.SIGTERM] * 4, seed=1)


#: Runs a command with SIGINT's default action, as from a terminal: a suite started in the
#: background (``cmd &``) passes SIGINT on ignored, and Python keeps an ignored SIGINT ignored
#: until optrun installs its own handlers.
AS_FROM_A_TERMINAL = [
    sys.executable,
    "-c",
    "import os, signal as s, sys; s.signal(s.SIGINT, s.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
]


def _burst(proc: subprocess.Popen[str], sig: int, count: int = 5, gap_s: float = 0.02) -> None:
    for _ in range(count):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        time.sleep(gap_s)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_burst_of_signals_mid_run_still_writes_the_run_whole(
    reference: tuple[Path, dict[str, np.ndarray]], sig: int
) -> None:
    """Five signals 20 ms apart (Ctrl-C held down): the first stops the run, the rest are moot;
    no traceback, result.json written, and --resume ends at the uninterrupted weights."""
    where, want = reference
    name = f"burst-{signal.Signals(sig).name}"
    proc = started(where, name, 200)
    _burst(proc, sig)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
    assert "Traceback" not in err and "before the run started" not in err, err
    assert f"written to {name}" in err, err
    assert json.loads((where / name / "result.json").read_text())["status"] == "interrupted"
    resumed = subprocess.run(
        [*optrun(), "train", "s.yaml", "-q", "--out", name, "--resume"],
        cwd=where, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    got = weights(where / name)
    assert max(float(np.max(np.abs(got[k] - want[k]))) for k in want) == 0.0


def test_a_burst_of_ctrl_c_at_start_up_exits_130_and_writes_nothing(
    reference: tuple[Path, dict[str, np.ndarray]],
) -> None:
    where, _ = reference
    for delay in (0.25, 0.8, 2.0):  # while the CLI itself imports, the spec loads, TensorFlow imports
        proc = subprocess.Popen(
            [*AS_FROM_A_TERMINAL, *optrun(), "train", "s.yaml", "-q", "--out", "early"],
            cwd=where, env=ENV, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(delay)
        if lines(where / "early"):  # this machine started the run already: not this test's case
            proc.kill()
            proc.wait()
            break
        _burst(proc, signal.SIGINT)
        _, err = proc.communicate(timeout=240)
        # -2: killed by SIGINT's default action before Python itself had started (a slow machine).
        assert proc.returncode in (130, -signal.SIGINT), err
        assert "Traceback" not in err, err  # (Typer's own exit 130, while it parses, says nothing)
        if "before the run started" in err:
            assert not (where / "early" / "result.json").exists()
        shutil.rmtree(where / "early", ignore_errors=True)

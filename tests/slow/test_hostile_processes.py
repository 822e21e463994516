"""Every hostile spec, through the real entry point of validate, train and minimize: exit 2,
in seconds, with a peak RSS under 300 MB (so refused before TensorFlow is imported)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import write_all

pytestmark = pytest.mark.slow
# About 1.3 s each on a quiet 2-core machine; the bound is for a parser gone quadratic or an
# alias bomb expanding (minutes), with room for a machine shared with other test processes.
MAX_SECONDS, MAX_RSS_MB = 8.0, 300
# Runs one command and reports its exit code, wall time and peak RSS (as a child of a fresh process).
PROBE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "print(json.dumps({'code': p.returncode, 's': time.perf_counter() - t, 'err': p.stderr[-400:],\n"
    "    'rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n"
)


def test_hostile_specs_are_refused_fast_and_small(tmp_path: Path) -> None:
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    command = [exe] if exe else [sys.executable, "-m", "optrun"]
    failures, runs, worst_s, worst_rss = [], 0, 0.0, 0.0
    for name, (path, says) in write_all(tmp_path).items():
        for kind in ("validate", "train", "minimize"):
            args = [*command, kind, str(path)] + (
                [] if kind == "validate" else ["--out", str(tmp_path / "run")]
            )
            probe = subprocess.run(
                [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
            )
            seen = json.loads(probe.stdout)
            runs, worst_s, worst_rss = runs + 1, max(worst_s, seen["s"]), max(worst_rss, seen["rss_mb"])
            ok = (
                seen["code"] == 2
                and seen["s"] < MAX_SECONDS
                and seen["rss_mb"] < MAX_RSS_MB
                and says in seen["err"]
            )
            if not ok:
                failures.append((name, kind, seen))
    print(f"\nhostile specs: {runs} runs, all exit 2; slowest {worst_s:.2f} s, peak RSS {worst_rss:.0f} MB")
    assert not failures, failures
    assert not (tmp_path / "run").exists()

"""Shared test setup: quiet TensorFlow, float64 helpers, small problems."""

from __future__ import annotations

import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Runs in tests keep XLA's compilation cache out of the user's ~/.cache.
os.environ.setdefault("OPTRUN_CACHE_DIR", tempfile.mkdtemp(prefix="optrun-test-cache-"))

import numpy as np
import pytest


def rosen_np(x: np.ndarray) -> float:
    """Rosenbrock in plain numpy: the independent reference."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


@pytest.fixture(scope="session")
def tf():
    import tensorflow

    return tensorflow


def problem_lines(stderr: str) -> list[str]:
    """validate's stderr without its notes on the checks a broken part kept from running."""
    return [line for line in stderr.splitlines() if not line.startswith("note: not checked:")]


def findings(stdout: str) -> list[dict]:
    """validate's --json entries without the 'skipped' ones (checks a broken part kept from running)."""
    return [e for e in json.loads(stdout) if e["severity"] != "skipped"]


def module_folder(tmp_path, monkeypatch: pytest.MonkeyPatch, module: str):
    """``tmp_path`` as the working directory, holding the user module ``m.py``."""
    (tmp_path / "m.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_spec(folder, text: str) -> str:
    """Writes ``text`` to ``folder/s.yaml``; returns its path."""
    (folder / "s.yaml").write_text(text)
    return str(folder / "s.yaml")

"""Exact resume after 20 SIGKILLs: see resume_loop.py."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from tests.slow.resume_loop import make_reference, run_loop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    return make_reference(tmp_path_factory)


def test_kills_then_resume(reference: tuple[Path, dict[str, np.ndarray]]) -> None:
    run_loop(reference, [signal.SIGKILL] * 20, seed=2)

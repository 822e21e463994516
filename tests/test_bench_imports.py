"""Every bench module imports against the library as it is (the bench runs only in ``make bench``).

The bench reaches into optrun's modules for what it measures; a renamed function would
otherwise surface only when someone runs ``make bench``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "bench").glob("*.py"))


@pytest.mark.parametrize("name", [m for m in MODULES if m != "__main__"])
def test_the_bench_module_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")

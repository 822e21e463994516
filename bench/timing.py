"""Small timing helpers shared by the benchmark cases."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    """Best (minimum) seconds per unit (evaluation, iteration or step) over repeats.

    The minimum, not the mean: on a shared 2-core machine, noise only ever adds time.
    """

    per_unit: float
    units: int
    repeats: int

    @property
    def micros(self) -> float:
        return self.per_unit * 1e6


def per_unit(run: Callable[[], tuple[Any, int]], repeats: int = 7, warmup: int = 1) -> Timing:
    """Times ``run`` (which returns ``(anything, units)``); best of ``repeats`` after ``warmup``."""
    for _ in range(warmup):
        run()
    samples, units = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        _, units = run()
        samples.append((time.perf_counter() - start) / max(units, 1))
    return Timing(min(samples), units, repeats)


def machine() -> str:
    import numpy
    import scipy
    import tensorflow as tf

    return (
        f"{platform.machine()} {_cpu()} x {os.cpu_count()} | Python {platform.python_version()} | "
        f"TF {tf.__version__} | numpy {numpy.__version__} | scipy {scipy.__version__}"
    )


def _cpu() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows: figures differ between models."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def fresh_process(code: str, args: list[str], extra_env: dict[str, str] | None = None) -> Any:
    """Runs ``code`` with ``args`` in a new Python process (the repository on its path, no
    compilation cache) and returns the JSON on the last line it printed."""
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    env.update(extra_env or {})
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])

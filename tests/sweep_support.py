"""What the sweep tests share: a tiny training spec, and ``optrun sweep`` in a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = ROOT / "tests" / "scripts" / "sweep_problem.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

SPEC = f"""\
name: tiny
seed: 3
model: {{builder: {PROBLEM}:build_model, params: {{hidden: 4}}}}
data: {{builder: {PROBLEM}:make_data}}
loss: mse
train:
  max_steps: {{max_steps}}
  optimizer: {{name: SGD, args: {{learning_rate: 0.05}}}}
checkpoint: {{export: none}}
logging: {{every_steps: 5, tensorboard: false}}
"""


def write_spec(folder: Path, max_steps: int = 20, extra: str = "") -> Path:
    """A tiny training spec (a 3-4-1 MLP, ``max_steps`` SGD steps) in ``folder``; ``extra`` appended."""
    path = folder / "spec.yaml"
    path.write_text(SPEC.replace("{max_steps}", str(max_steps)) + extra, encoding="utf-8")
    return path


def optrun() -> list[str]:
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "optrun"]


def run(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``optrun ARGS`` in ``cwd``, to the end."""
    return subprocess.run(
        [*optrun(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV, check=False
    )


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``optrun ARGS`` in ``cwd``, started."""
    return subprocess.Popen(
        [*optrun(), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )


def trial_dirs(sweep: Path) -> list[str]:
    """The names of the sweep's trial run directories, sorted."""
    return sorted(p.name for p in sweep.glob("trial-*") if p.is_dir())


def config_of(run_dir: Path) -> dict[str, Any]:
    """A trial's resolved spec (its config.yaml), read as plain YAML."""
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))


def result_of(run_dir: Path) -> dict[str, Any]:
    """A trial's result.json."""
    return json.loads((run_dir / "result.json").read_text(encoding="utf-8"))


def study_trials(storage: Path, study: str = "tiny") -> list[Any]:
    """The study's trials, read with Optuna itself (not through optrun)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    loaded = optuna.load_study(study_name=study, storage=JournalStorage(JournalFileBackend(str(storage))))
    return loaded.get_trials(deepcopy=False)

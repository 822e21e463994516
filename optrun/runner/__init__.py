"""Running an experiment spec: train, minimize and validate.

Entry points: :func:`run_train`, :func:`run_minimize`, :func:`validate_spec`.
Names resolve lazily, so the TensorFlow-free modules of this package
(:mod:`optrun.runner.rundir`) import without TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optrun.runner.common import RunOptions, RunOutcome
    from optrun.runner.minimize import run_minimize
    from optrun.runner.train import run_train
    from optrun.runner.validate import validate_spec

_LAZY = {
    "RunOptions": "optrun.runner.common",
    "RunOutcome": "optrun.runner.common",
    "run_minimize": "optrun.runner.minimize",
    "run_train": "optrun.runner.train",
    "validate_spec": "optrun.runner.validate",
}

__all__ = ["RunOptions", "RunOutcome", "run_minimize", "run_train", "validate_spec"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optrun.runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

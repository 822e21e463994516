"""optrun: tf.contrib.opt for TensorFlow 2, plus a config-driven runner.

The public API is re-exported here explicitly. Names resolve lazily, so that
``import optrun`` (and the CLI's ``--help``) does not import TensorFlow until
a TensorFlow-backed name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optrun.errors import (
    ConfigError,
    InvalidArgumentError,
    InvalidTypeError,
    LoadError,
    NonFiniteError,
    NotReadyError,
    OptrunError,
    RunError,
    UnknownVariableError,
    UnsupportedMethodError,
)

if TYPE_CHECKING:
    from optrun.averaging import MovingAverageOptimizer
    from optrun.checkpoints import SwappingSaver
    from optrun.clipping import VariableClippingOptimizer
    from optrun.compile_cache import enable_compile_cache
    from optrun.config import load_spec
    from optrun.external import ExternalOptimizerInterface
    from optrun.full_batch import dataset_loss
    from optrun.ipopt_interface import IpoptInterface
    from optrun.ipopt_options import MissingDependencyError
    from optrun.packing import Layout, PackedBounds
    from optrun.projected import ProjectedGradientInterface
    from optrun.runner import RunOptions, run_minimize, run_train, validate_spec
    from optrun.scipy_interface import ScipyOptimizerInterface
    from optrun.spec import ExperimentSpec
    from optrun.varkeys import resolve_var_keyed

__version__ = "0.1.0"

_LAZY = {
    "ExternalOptimizerInterface": "optrun.external",
    "ScipyOptimizerInterface": "optrun.scipy_interface",
    "IpoptInterface": "optrun.ipopt_interface",
    "MissingDependencyError": "optrun.ipopt_options",
    "ProjectedGradientInterface": "optrun.projected",
    "Layout": "optrun.packing",
    "PackedBounds": "optrun.packing",
    "resolve_var_keyed": "optrun.varkeys",
    "MovingAverageOptimizer": "optrun.averaging",
    "VariableClippingOptimizer": "optrun.clipping",
    "SwappingSaver": "optrun.checkpoints",
    "enable_compile_cache": "optrun.compile_cache",
    "dataset_loss": "optrun.full_batch",
    "ExperimentSpec": "optrun.spec",
    "load_spec": "optrun.config",
    "RunOptions": "optrun.runner",
    "run_train": "optrun.runner",
    "run_minimize": "optrun.runner",
    "validate_spec": "optrun.runner",
}

__all__ = [
    "ConfigError",
    "ExperimentSpec",
    "ExternalOptimizerInterface",
    "InvalidArgumentError",
    "InvalidTypeError",
    "IpoptInterface",
    "Layout",
    "LoadError",
    "MissingDependencyError",
    "MovingAverageOptimizer",
    "NonFiniteError",
    "NotReadyError",
    "OptrunError",
    "PackedBounds",
    "ProjectedGradientInterface",
    "RunError",
    "RunOptions",
    "ScipyOptimizerInterface",
    "SwappingSaver",
    "UnknownVariableError",
    "UnsupportedMethodError",
    "VariableClippingOptimizer",
    "__version__",
    "dataset_loss",
    "enable_compile_cache",
    "load_spec",
    "resolve_var_keyed",
    "run_minimize",
    "run_train",
    "validate_spec",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

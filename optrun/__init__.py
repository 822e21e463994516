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
    MissingDependencyError,
    NonFiniteError,
    NotReadyError,
    OptrunError,
    RunError,
    UnknownVariableError,
    UnsupportedMethodError,
)
from optrun.version import __version__
from optrun.wrappers.registration import register_with_keras as _register_with_keras

if TYPE_CHECKING:
    from optrun.evaluation.bounds import PackedBounds
    from optrun.evaluation.compile_cache import enable_compile_cache
    from optrun.evaluation.packing import Layout
    from optrun.interfaces.external import ExternalOptimizerInterface
    from optrun.interfaces.ipopt.interface import IpoptInterface
    from optrun.interfaces.projected import ProjectedGradientInterface
    from optrun.interfaces.scipy import ScipyOptimizerInterface
    from optrun.runner import RunOptions, run_minimize, run_train, validate_spec
    from optrun.scale.full_batch import dataset_loss
    from optrun.spec.experiment import ExperimentSpec
    from optrun.spec.load import load_spec
    from optrun.varkeys import resolve_var_keyed
    from optrun.wrappers.clipping import VariableClippingOptimizer
    from optrun.wrappers.moving_average import MovingAverageOptimizer
    from optrun.wrappers.swapping import SwappingSaver


_LAZY = {
    "ExternalOptimizerInterface": "optrun.interfaces.external",
    "ScipyOptimizerInterface": "optrun.interfaces.scipy",
    "IpoptInterface": "optrun.interfaces.ipopt.interface",
    "ProjectedGradientInterface": "optrun.interfaces.projected",
    "Layout": "optrun.evaluation.packing",
    "PackedBounds": "optrun.evaluation.bounds",
    "resolve_var_keyed": "optrun.varkeys",
    "MovingAverageOptimizer": "optrun.wrappers.moving_average",
    "VariableClippingOptimizer": "optrun.wrappers.clipping",
    "SwappingSaver": "optrun.wrappers.swapping",
    "enable_compile_cache": "optrun.evaluation.compile_cache",
    "dataset_loss": "optrun.scale.full_batch",
    "ExperimentSpec": "optrun.spec.experiment",
    "load_spec": "optrun.spec.load",
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


# A saved model's wrappers must be found by keras.models.load_model in a process that never names them.
_register_with_keras()

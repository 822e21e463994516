"""Running an experiment spec: train, minimize and validate.

Entry points: :func:`run_train`, :func:`run_minimize`, :func:`validate_spec`.
"""

from optrun.runner.common import RunOptions, RunOutcome
from optrun.runner.minimize import run_minimize
from optrun.runner.train import run_train
from optrun.runner.validate import validate_spec

__all__ = ["RunOptions", "RunOutcome", "run_minimize", "run_train", "validate_spec"]

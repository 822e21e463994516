"""What every part of the spec shares: strict models, references to callables, bounds.

No TensorFlow here (see :mod:`optrun.spec.experiment`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

REF_PATTERN = r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$"
Ref = Annotated[
    str,
    Field(
        pattern=REF_PATTERN,
        description="A callable: 'path/to/file.py:function' (relative to the spec file) or "
        "'package.module:function'.",
        examples=["examples/mlp.py:build_model", "optrun.spec.defaults.problems:sum_of_squares"],
    ),
]
Number = float | int
Bound = Number | list[Number] | None


class Strict(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

"""What every part of the spec shares: strict models, references to callables, bounds.

No TensorFlow here (see :mod:`optrun.spec.experiment`).
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

REF_PATTERN = r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a run name: also a folder name
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
#: The spec's fields that take a number alone: a boolean there is refused, not read as 0 or 1.
NUMBERS: tuple[str, ...] = (
    "max_steps",
    "epochs",
    "every_steps",
    "every_seconds",
    "keep",
    "seed",
    "global_batch_size",
)
NUMBERS += (
    "logical_cpus",
    "trials",
    "jobs",
    "low",
    "high",
    "step",
    "max_norm",
    "average_decay",
)
Bound = Number | list[Number] | None


class Strict(BaseModel):
    """Base: unknown keys are errors, and so is a boolean for a number (YAML reads true, yes and
    on as booleans, and pydantic would take True for 1)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator(*NUMBERS, mode="before", check_fields=False)
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            raise ValueError(f"{value!r} is a boolean, not a number")
        return value


def _numeric(annotation: Any) -> bool:
    """Whether a field takes numbers (int or float, alone or with None) and not booleans."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        # A number or a word (every_seconds: 'auto'): still no boolean for the number.
        args = typing.get_args(annotation)
        options = {a for a in args if typing.get_origin(a) is not typing.Literal} - {type(None)}
    else:
        options = {annotation}
    return bool(options) and options <= {int, float}

"""What every part of the spec shares: strict models, references to callables, bounds.

No TensorFlow here (see :mod:`optrun.spec.experiment`).
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails

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
#: The spec's fields that take a number, alone, in a union (``every_seconds: 'auto'``) or in a list
#: (``dims``, a bound's ``[0.8, 1.0]``): a boolean there is refused, not read as 0 or 1.
#: tests/test_spec_strict_numbers.py checks that every such field of the spec is named here.
NUMBERS: tuple[str, ...] = (
    "max_steps",
    "epochs",
    "every_steps",
    "every_seconds",
    "keep",
    "seed",
    "global_batch_size",
    "logical_cpus",
    "trials",
    "jobs",
    "low",
    "high",
    "step",
    "max_norm",
    "average_decay",
    "dims",
    "tol",
    "blas_threads",
    "heartbeat_timeout_s",
    "startup_timeout_s",
    "timeout_s",
)
Bound = Number | list[Number] | None


class Strict(BaseModel):
    """Base: unknown keys are errors, and so is a boolean for a number (YAML reads true, yes and
    on as booleans, and pydantic would take True for 1), each at its place (``high.1`` in a list)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator(*NUMBERS, mode="before", check_fields=False)
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        places = _booleans(_options(field.annotation), value, ()) if field is not None else []
        if places == [()]:
            raise ValueError(f"{value!r} is a boolean, not a number")
        if places:  # in a list or mapping: pydantic places each under the field (high.1)
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type="value_error",
                        loc=place,
                        input=_at(value, place),
                        ctx={"error": f"{_at(value, place)!r} is a boolean, not a number"},
                    )
                    for place in places
                ],
            )
        return value


def _options(annotation: Any) -> list[Any]:
    """The types a field's annotation allows, unions flattened and ``Annotated`` unwrapped."""
    if typing.get_origin(annotation) is Annotated:
        return _options(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return [option for arg in typing.get_args(annotation) for option in _options(arg)]
    return [annotation]


def _booleans(options: list[Any], value: Any, at: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Where in ``value`` a boolean stands for a number one of ``options`` (types) asks for."""
    if isinstance(value, bool):
        number = any(option in (int, float) for option in options)
        boolean = any(
            option in (bool, Any, object)
            or (
                typing.get_origin(option) is typing.Literal
                and any(a is value for a in typing.get_args(option))
            )
            for option in options
        )
        return [at] if number and not boolean else []
    found: list[tuple[Any, ...]] = []
    if isinstance(value, list):  # list[X]: each item against X
        items = [t for o in options if typing.get_origin(o) is list for t in _options(typing.get_args(o)[0])]
        for i, item in enumerate(value):
            found += _booleans(items, item, (*at, i))
    elif isinstance(value, dict):  # dict[K, V]: each value against V (a model checks its own fields)
        items = [t for o in options if typing.get_origin(o) is dict for t in _options(typing.get_args(o)[1])]
        for key, item in value.items():
            found += _booleans(items, item, (*at, key))
    return found


def _at(value: Any, place: tuple[Any, ...]) -> Any:
    """The item of ``value`` (lists and mappings in one another) at ``place``."""
    for part in place:
        value = value[part]
    return value

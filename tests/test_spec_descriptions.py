"""Every field of the experiment spec has a description.

The spec reference (docs/reference/spec.md) and editors reading ``optrun schema`` show
these descriptions; a field without one would appear there unexplained.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from optrun.spec.experiment import ExperimentSpec
from optrun.spec.schema import field_paths

SEQUENCES = (list, tuple, set, frozenset, Sequence)
MAPPINGS = (dict, Mapping)


def _models_in(annotation: Any, suffix: str = "") -> Iterator[tuple[type[BaseModel], str]]:
    """The models a field's annotation holds, each with the path suffix that reaches it:
    ``""`` for the value itself, ``"[]"`` for a list's items, ``".<name>"`` for a mapping's values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, suffix
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        yield from _models_in(args[0], suffix)
    elif origin in SEQUENCES:
        for arg in args:
            yield from _models_in(arg, suffix + "[]")
    elif origin in MAPPINGS:
        if args:
            yield from _models_in(args[-1], suffix + ".<name>")
    else:  # a union (X | Y, Optional[X]) or another generic: every argument
        for arg in args:
            yield from _models_in(arg, suffix)


def spec_fields(
    model: type[BaseModel] = ExperimentSpec, prefix: str = "", within: tuple[type[BaseModel], ...] = ()
) -> Iterator[tuple[str, FieldInfo]]:
    """Every field of ``model`` and of the models below it, as ``(dotted path, field)``."""
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, info
        for sub, suffix in _models_in(info.annotation):
            if sub not in within:  # a model that contains itself would recurse forever
                yield from spec_fields(sub, path + suffix, (*within, model))


def undescribed(model: type[BaseModel] = ExperimentSpec) -> list[str]:
    """The paths of the fields below ``model`` that have no description."""
    return sorted({path for path, info in spec_fields(model) if not (info.description or "").strip()})


def test_every_spec_field_has_a_description() -> None:
    missing = undescribed()
    assert not missing, f"spec fields without a description (add Field(description=...)): {missing}"


def test_a_field_without_a_description_is_named_by_its_path() -> None:
    class Inner(BaseModel):
        size: int = Field(1, description="Described.")
        mode: str = "x"

    class Outer(BaseModel):
        items: list[Inner | None] = Field(default_factory=list, description="Described.")
        table: dict[str, Inner] = Field(default_factory=dict)

    assert undescribed(Outer) == ["items[].mode", "table", "table.<name>.mode"]


def test_the_walk_reaches_every_field_of_the_schema() -> None:
    # The check above is only as good as its walk: it must see every field the schema has.
    walked = {path.replace(".<name>", "") for path, _ in spec_fields()}
    unseen = [path for path in field_paths() if path not in walked]
    assert not unseen, f"fields of the schema the walk missed: {unseen}"


def test_the_walk_follows_unions_lists_and_mappings() -> None:
    walked = {path for path, _ in spec_fields()}
    for path in (
        "loss.ref",  # a discriminated union of models
        "strategy.heartbeat_timeout_s",  # another, with a default
        "train.optimizer.wrappers[].max_norm",  # a list of a union
        "minimize.constraints.bounds.<name>.low",  # a mapping's values
        "minimize.data.reduction",  # an optional model
    ):
        assert path in walked, path

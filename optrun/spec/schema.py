"""The spec as JSON Schema: what ``optrun schema`` prints, and the keys it allows at a path.

Derived from :class:`~optrun.spec.experiment.ExperimentSpec`, so the schema, the
did-you-mean of an unknown key and the generated spec reference cannot drift
from the models. No TensorFlow here.
"""

from __future__ import annotations

import functools
from typing import Any

from optrun.spec.experiment import ExperimentSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ExperimentSpec`, for editors: it accepts every form the loader does.

    pydantic describes the models after their before-validators; the shorthands those accept
    are added here: ``loss: mse`` / ``loss: file.py:fn`` and a mapping without ``kind``, and
    ``bounds: {w: [low, high]}``.
    """
    schema = ExperimentSpec.model_json_schema()
    schema = {"$schema": SCHEMA_DIALECT, **schema}
    loss = schema["properties"]["loss"]
    union = {k: v for k, v in loss.items() if k in ("oneOf", "anyOf")}
    rest = {k: v for k, v in loss.items() if k not in ("oneOf", "anyOf", "discriminator")}
    schema["properties"]["loss"] = {
        **rest,
        "anyOf": [{"type": "string", "minLength": 1, "description": "'mse' or 'file.py:fn'"}, union],
    }
    bounds = schema["$defs"]["ConstraintsSpec"]["properties"]["bounds"]
    pair = {
        "type": "array",
        "minItems": 2,
        "maxItems": 2,
        "description": "[low, high]",
        "items": schema["$defs"]["BoundsSpec"]["properties"]["low"],
    }
    bounds["additionalProperties"] = {"anyOf": [bounds["additionalProperties"], pair]}
    return schema


def _alternatives(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema node with its ``$ref`` followed and its ``anyOf``/``oneOf`` spread out."""
    if "$ref" in node:
        return _alternatives(defs[node["$ref"].split("/")[-1]], defs)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        return [alt for option in options for alt in _alternatives(option, defs)]
    return [node]


@functools.lru_cache(maxsize=1)
def _cached_schema() -> dict[str, Any]:
    return json_schema()


def _nodes_at(path: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The schema's alternatives for the value at ``path``."""
    schema = _cached_schema()
    defs = schema.get("$defs", {})
    nodes = _alternatives(schema, defs)
    for part in path:
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int) and node.get("type") == "array" and "items" in node:
                following += _alternatives(node["items"], defs)
            elif part in node.get("properties", {}):
                following += _alternatives(node["properties"][part], defs)
            elif isinstance(node.get("additionalProperties"), dict):  # a mapping by name (bounds)
                following += _alternatives(node["additionalProperties"], defs)
        nodes = following
    return nodes


def kinds(path: tuple[Any, ...]) -> list[str]:
    """The ``kind`` values the spec allows at ``path`` (empty where it takes no ``kind``)."""
    found = {node.get("properties", {}).get("kind", {}).get("const") for node in _nodes_at(path)}
    return sorted(k for k in found if isinstance(k, str))


def value_at(data: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` in the read YAML (None where there is none)."""
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        else:
            inside = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
            data = data[part] if inside else None
    return data


def known_keys(path: tuple[Any, ...], data: Any = None) -> list[str]:
    """The keys the spec allows at ``path``; of a union, the alternative whose ``kind`` the
    data names there, else every alternative."""
    nodes = _nodes_at(path)
    here = value_at(data, path)
    kind = here.get("kind") if isinstance(here, dict) else None
    if kind is not None:
        chosen = [n for n in nodes if n.get("properties", {}).get("kind", {}).get("const") == kind]
    else:  # a short form without kind (loss: {name: mse}): the alternatives with a key it has
        given = set(here) if isinstance(here, dict) else set()
        chosen = [n for n in nodes if given & set(n.get("properties", {}))]
    return sorted({key for node in chosen or nodes for key in node.get("properties", {})})


def field_paths() -> list[str]:
    """Every field of the spec as a dotted path (``train.optimizer.wrappers[].max_norm``)."""
    schema = json_schema()
    defs = schema.get("$defs", {})
    paths: list[str] = []

    def resolve(node: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for alt in _alternatives(node, defs):
            if alt.get("type") == "array" and "items" in alt:
                out += [{"__array__": item} for item in _alternatives(alt["items"], defs)]
            else:
                out.append(alt)
        return out

    def walk(node: dict[str, Any], prefix: str) -> None:
        for target in resolve(node):
            if "__array__" in target:
                walk(target["__array__"], prefix + "[]")
                continue
            for name, child in target.get("properties", {}).items():
                path = f"{prefix}.{name}" if prefix else name
                if path not in paths:
                    paths.append(path)
                walk(child, path)

    walk(schema, "")
    return paths

"""The spec reference: every field of the experiment spec, generated from its JSON Schema.

Read from :func:`optrun.spec.schema.json_schema` (what ``optrun schema`` prints), so the
page lists exactly the fields the loader accepts, with pydantic's descriptions and defaults.
One section per mapping of the spec, in the order of the file; a union chosen by ``kind``
(``strategy``, ``loss``, ``train.optimizer.wrappers[]``) gets a section per kind.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from markdown_text import code, escape, literal, table
from pydantic import BaseModel

Node = dict[str, Any]

# How a key of a mapping with free keys (minimize.constraints.bounds) is written in a path.
NAME = "<variable>"


@dataclass
class Section:
    """One table of the page: the fields of one mapping (one kind of it, for a union)."""

    path: str
    anchor: str
    level: int
    title: str
    intro: str
    rows: list[list[str]] = field(default_factory=list)


def anchor_of(path: str, kind: str | None = None) -> str:
    """The heading id of a section: ``train.optimizer.wrappers[]`` -> ``train-optimizer-wrappers``."""
    base = path.replace("[]", "").replace(NAME, "name").replace(".", "-") or "top-level"
    return f"{base}-{kind}" if kind else base


def models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from ``root``'s fields, by name (the schema's ``title``)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for info in annotation.model_fields.values():
                    visit(info.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(root)
    return found


class SpecReference:
    """Walks the schema once and renders it; see :func:`spec_reference`."""

    def __init__(self, schema: Node, classes: dict[str, type[BaseModel]]) -> None:
        self.schema = schema
        self.defs: dict[str, Node] = schema.get("$defs", {})
        self.classes = classes
        self.sections: list[Section] = []
        self.paths: list[str] = []

    # ----- the schema's shapes ------------------------------------------------
    def deref(self, node: Node) -> Node:
        """The node a ``$ref`` names, or the node itself."""
        return self.defs[node["$ref"].split("/")[-1]] if "$ref" in node else node

    def alternatives(self, node: Node) -> list[Node]:
        """The node with its ``$ref`` followed and its ``anyOf``/``oneOf`` spread out."""
        node = self.deref(node)
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            return [alt for option in options for alt in self.alternatives(option)]
        return [node]

    def mappings_below(self, node: Node, path: str) -> list[tuple[str, Node]]:
        """The mappings with fixed keys that a field holds, with their paths: its own value, the
        items of a list (``path[]``) or the values of a mapping with free keys."""
        found: list[tuple[str, Node]] = []
        for alt in self.alternatives(node):
            if "properties" in alt:
                found.append((path, alt))
            elif alt.get("type") == "array" and isinstance(alt.get("items"), dict):
                found += self.mappings_below(alt["items"], path + "[]")
            elif isinstance(alt.get("additionalProperties"), dict):
                found += self.mappings_below(alt["additionalProperties"], f"{path}.{NAME}")
        return found

    # ----- cells ----------------------------------------------------------------
    def type_of(self, node: Node) -> str:
        """The type in words: ``integer``, ``list of string``, ``"stop"`` | ``"skip"``, ``mapping``."""
        node = self.deref(node)
        if "const" in node:
            return literal(node["const"])
        if "enum" in node:
            return " \\| ".join(literal(value) for value in node["enum"])
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            words: list[str] = []
            for word in (self.type_of(option) for option in options):
                if word not in words:
                    words.append(word)
            # JSON Schema's integer is a number: "number or integer" says "number" twice.
            return " or ".join(w for w in words if not (w == "integer" and "number" in words))
        kind = node.get("type")
        inner: Node | None = None
        if kind == "array" and isinstance(node.get("items"), dict):
            kind, inner = "list of", node["items"]
        elif kind == "object" or "properties" in node:
            free = node.get("additionalProperties")
            has_free = isinstance(free, dict) and "properties" not in node
            kind, inner = ("mapping of name to", free) if has_free else ("mapping", None)
        if inner is None:
            return {"array": "list"}.get(str(kind), str(kind)) if kind else "any"
        words_inside = self.type_of(inner)
        return f"{kind} ({words_inside})" if " or " in words_inside else f"{kind} {words_inside}"

    def limits(self, node: Node) -> list[str]:
        """What the value must satisfy beyond its type (bounds, length, pattern)."""
        said: list[str] = []
        for alt in self.alternatives(node):
            for key, text in (
                ("minimum", "≥ {}"),
                ("exclusiveMinimum", "> {}"),
                ("maximum", "≤ {}"),
                ("exclusiveMaximum", "< {}"),
                ("minItems", "at least {} item{}"),
                ("maxItems", "at most {} item{}"),
            ):
                if key in alt:
                    words = text.format(alt[key], "" if alt[key] == 1 else "s")
                    said += [] if words in said else [words]
            if alt.get("minLength") == 1 and "non-empty" not in said:
                said.append("non-empty")
            if "pattern" in alt:
                said.append("matches " + code(alt["pattern"]))
            items = alt.get("items")
            if alt.get("type") == "array" and isinstance(items, dict) and "pattern" in self.deref(items):
                said.append("each matches " + code(self.deref(items)["pattern"]))
        return said

    def default_of(self, owner: Node, name: str, node: Node) -> str:
        """The default as the YAML value it stands for, or *required*."""
        if name in owner.get("required", []):
            return "*required*"
        if "default" in node:
            return literal(node["default"])
        model = self.classes.get(owner.get("title", ""))
        info = model.model_fields.get(name) if model is not None else None
        if info is None:
            return ""
        value = info.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            # A section left out: each of its fields takes its default (the kind, if it has one).
            keep = {"kind"} if "kind" in type(value).model_fields else set()
            shown = value.model_dump(mode="json", exclude_defaults=True)
            shown.update(value.model_dump(mode="json", include=keep))
            return literal(shown)
        return literal(value)

    def description_of(self, node: Node, kinds: list[tuple[str, str]]) -> str:
        """The field's description, its examples, and the kinds of a union (linked to their sections)."""
        text = escape(node.get("description", ""))
        if kinds:
            links = ", ".join(f"[{code(kind)}](#{anchor})" for kind, anchor in kinds)
            text += f" Kinds: {links}."
        examples = node.get("examples")
        if examples:
            text += (
                " Examples: "
                + ", ".join(code(e) if isinstance(e, str) else literal(e) for e in examples)
                + "."
            )
        return text.strip()

    # ----- the walk ----------------------------------------------------------
    def kinds(self, targets: list[tuple[str, Node]]) -> list[tuple[str, str]]:
        """``(kind, anchor)`` of each alternative of a union chosen by ``kind``, else []."""
        if len(targets) < 2:
            return []
        out = []
        for path, node in targets:
            kind = node["properties"].get("kind", {}).get("const")
            if kind is None:
                return []
            out.append((kind, anchor_of(path, kind)))
        return out

    def section(self, path: str, node: Node, level: int, kind: str | None = None) -> None:
        """Adds the section of the mapping ``node`` at ``path``, then those of the mappings below."""
        where = code(path) if path else "Top level"
        title = f"{where} with {code(f'kind: {kind}')}" if kind else where
        own = Section(path, anchor_of(path, kind), level, title, escape(node.get("description", "")))
        self.sections.append(own)
        below: list[tuple[str, str, list[tuple[str, Node]]]] = []
        for name, child in node.get("properties", {}).items():
            full = f"{path}.{name}" if path else name
            if full not in self.paths:
                self.paths.append(full)
            targets = self.mappings_below(child, full)
            kinds = self.kinds(targets)
            cells = [self.type_of(child), *self.limits(child)]
            if targets and not kinds:
                cells[0] += f" ([fields](#{anchor_of(targets[0][0])}))"
            own.rows.append(
                [
                    code(full),
                    ", ".join(cells),
                    self.default_of(node, name, child),
                    self.description_of(child, kinds),
                ]
            )
            if targets:
                below.append((full, escape(child.get("description", "")), targets))
        for full, description, targets in below:
            kinds = self.kinds(targets)
            if kinds:  # the union's own section, then one per kind
                links = ", ".join(f"[{code(k)}](#{a})" for k, a in kinds)
                intro = f"{description} One of these kinds, chosen by the `kind` key: {links}."
                self.sections.append(Section(full, anchor_of(targets[0][0]), 2, code(full), intro))
                for (where, target), (which, _) in zip(targets, kinds, strict=True):
                    self.section(where, target, 3, which)
            else:
                for where, target in targets:
                    self.section(where, target, 2)

    def render(self) -> str:
        """The sections as Markdown."""
        self.section("", self.schema, 2)
        out = []
        for section in self.sections:
            out.append(f"{'#' * section.level} {section.title} {{ #{section.anchor} }}")
            if section.intro:
                out.append(section.intro)
            if section.rows:
                out.append(table(["Field", "Type", "Default", "Description"], section.rows))
        return "\n\n".join(out) + "\n"


def spec_reference() -> str:
    """The spec reference's generated part: a table per mapping of the spec.

    Returns:
        Markdown, from ``## Top level`` on.
    """
    from optrun.spec.experiment import ExperimentSpec
    from optrun.spec.schema import json_schema

    return SpecReference(json_schema(), models(ExperimentSpec)).render()

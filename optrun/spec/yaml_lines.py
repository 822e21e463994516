"""YAML as optrun reads a spec: ``safe_load`` rules, bounded, and with a line for every key.

* ``1e-3`` and ``1e30`` read as floats (YAML 1.1 wants a dot), and ``12:30`` as text
  (YAML 1.1 reads it in base 60, as 750);
* a key given twice is an error, not "the last one wins";
* hostile input is refused quickly and in bounded memory: the size, the values, the values
  aliases expand to, and the depth are capped, each refusal naming the cap and its line;
* :func:`line_map` gives each key's line without ever expanding an alias.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

#: What a spec may be, so that hostile YAML is refused quickly and in bounded memory: its size,
#: the nodes it holds, the values it expands to through aliases, and how deep it nests.
MAX_BYTES = 1 << 20
MAX_NODES = 50_000
MAX_EXPANDED = 100_000
MAX_EXPANDED_BYTES = 8 << 20  # the text the values expand to: one long string aliased many times
MAX_DEPTH = 64


class SpecLimitError(yaml.YAMLError):
    """The spec passes one of the bounds above; ``problem_mark`` is where."""

    def __init__(self, problem: str, mark: Any) -> None:
        self.problem = problem
        self.problem_mark = mark
        super().__init__(problem)


class Loader(yaml.SafeLoader):
    """``SafeLoader`` that also reads ``1e-3`` and ``1e30`` as floats (YAML 1.1 wants a dot),
    ``12:30`` as text, and counts as it composes: nodes, depth, and the values aliases expand to."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        # id(node) -> the values it stands for and their text's length, aliases expanded
        self._expanded: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        alias = self.check_event(yaml.AliasEvent)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SpecLimitError(f"the spec nests deeper than {MAX_DEPTH} levels", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if alias:
            if id(node) not in self._expanded:
                raise SpecLimitError("an alias refers to the collection that holds it", mark)
            return node
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise SpecLimitError(f"the spec holds more than {MAX_NODES} values", mark)
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        counted = [self._expanded.get(id(child), (1, 0)) for child in children]
        size = 1 + sum(values for values, _ in counted)
        scalar = getattr(node, "value", None)
        text = sum(chars for _, chars in counted) + (len(scalar) if isinstance(scalar, str) else 0)
        if size > MAX_EXPANDED:
            raise SpecLimitError(f"aliases expand the spec to more than {MAX_EXPANDED} values", mark)
        if text > MAX_EXPANDED_BYTES:
            limit = f"{MAX_EXPANDED_BYTES >> 20} MiB"
            raise SpecLimitError(f"aliases expand the spec to more than {limit} of text", mark)
        self._expanded[id(node)] = (size, text)
        return node


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
# YAML 1.1's base-60 numbers go: it reads 12:30 as 750, which nobody writing a spec means.
Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in entries if tag not in (_INT, _FLOAT)]
    for first, entries in Loader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    _INT,
    re.compile(
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+)$""",
        re.X,
    ),
    list("-+0123456789"),
)
Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice (YAML says the last wins, which hides mistakes)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        self.problem = f"key {key!r} appears twice (lines {first} and {second}); keep one"
        self.problem_mark = None
        super().__init__(self.problem)


def _construct_mapping(loader: Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, (list, dict)):  # `? [1, 2]` or `{[1]: 2}`: no spec key is one
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be a name or a number; got a {type(key).__name__}",
                key_node.start_mark,
            )
        if key in seen:
            raise DuplicateKeyError(key, seen[key], line)
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=Loader)


def line_map(text: str) -> dict[tuple[Any, ...], int]:
    """YAML path -> 1-based line of its key (or item), from the composed node tree."""
    lines: dict[tuple[Any, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=Loader)
    except yaml.YAMLError:
        return lines

    seen: set[int] = set()

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if id(node) in seen:  # an alias: its lines are those of the anchor; never expand it
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, key.value)
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines

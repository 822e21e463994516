"""Command-line overrides of a spec: ``--set KEY.PATH=VALUE``, and the flags that stand for one.

A flag such as ``--seed 3`` or ``--strategy mirrored`` is applied as the
override it stands for (``seed=3``), as a :class:`FlagOverride`, which
remembers the flag: a problem with the value it set names that flag, not
``--set``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from optrun.errors import ConfigError, InvalidTypeError, Problem
from optrun.spec.yaml_lines import load_yaml

#: The keys overrides set, dotted (``train.max_steps``), each with the flag that set it.
Overridden = dict[str, str]


class FlagOverride(str):
    """A ``KEY.PATH=VALUE`` override that a command-line flag stands for.

    Attributes:
        flag: the flag, e.g. ``--seed``.
        argv: the flag as given, e.g. ``("--seed", "3")``: how a child ``optrun`` process is told.
    """

    flag: str
    argv: tuple[str, ...]

    def __new__(cls, text: str, flag: str, value: object) -> FlagOverride:
        made = super().__new__(cls, text)
        made.flag, made.argv = flag, (flag, str(value))
        return made

    def __reduce__(self) -> tuple[type[FlagOverride], tuple[str, str, str]]:  # copies, pickles
        return FlagOverride, (str(self), self.flag, self.argv[1])


def as_argv(override: str) -> list[str]:
    """How ``override`` is passed on to another ``optrun`` command: its flag, else ``--set``."""
    return list(getattr(override, "argv", ("--set", override)))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as YAML, so numbers and lists work)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            "--set", [Problem("", f"{text!r}: expected KEY.PATH=VALUE, e.g. train.max_steps=100")]
        )
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(
            "--set", [Problem("", f"{text!r}: the value is not valid YAML ({error.__class__.__name__})")]
        ) from None
    return key.split("."), value


#: One limit under two names (scipy's ``maxiter``, IPOPT's ``max_iter``): an override of either
#: replaces the spec's value under the other, rather than the two being refused as given twice.
_SAME_LIMIT: dict[tuple[str, ...], str] = {
    ("minimize", "options", "maxiter"): "max_iter",
    ("minimize", "options", "max_iter"): "maxiter",
}


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> Overridden:
    """Sets each ``a.b=value`` into ``data`` (creating maps as needed); returns the dotted keys,
    each with the flag that set it (a :class:`FlagOverride`'s, else ``--set``).

    ``strategy.kind`` set to another kind than the spec's starts that section afresh: its
    other keys (``devices``, ``logical_cpus``) belong to the old kind.

    Raises:
        ConfigError: an override that is not ``KEY.PATH=VALUE``, or goes where ``data`` has no place.
        InvalidTypeError: ``overrides`` is one string rather than a list of them.
    """
    if isinstance(overrides, str):  # one string is a sequence too: of its characters
        raise InvalidTypeError(
            f"overrides takes a list of 'KEY.PATH=VALUE' strings, not one string: pass [{overrides!r}]"
        )
    done: Overridden = {}
    for text in overrides:
        keys, value = parse_override(text)
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    where = ".".join(keys[:i])
                    message = f"{text!r}: {where} is a list of {len(node)}; {key!r} is not an index in it"
                    raise ConfigError("--set", [Problem("", message)])
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
                continue
            if not isinstance(node, dict):
                where = ".".join(keys[:i])
                message = (
                    f"{text!r}: {where} is not a mapping (it is {node!r:.80}); {_whole(keys, i, node, value)}"
                )
                raise ConfigError("--set", [Problem("", message)])
            if last:
                if keys == ["strategy", "kind"] and node.get("kind") != value:
                    node.clear()  # the other keys belong to the old kind (--strategy KIND)
                if tuple(keys) in _SAME_LIMIT:  # --maxiter replaces max_iter too
                    node.pop(_SAME_LIMIT[tuple(keys)], None)
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
        done.pop(".".join(keys), None)  # re-set: it moves to the end, the last applied
        done[".".join(keys)] = getattr(text, "flag", "--set")
    return done


def _whole(keys: list[str], i: int, node: Any, value: Any) -> str:
    """Advice for ``--set a.b.c=v`` where ``a`` is not a mapping: set the whole of ``a``."""
    where, rest = ".".join(keys[:i]), value
    for key in reversed(keys[i:]):
        rest = {key: rest}
    if keys[:i] == ["loss"] and isinstance(node, str) and isinstance(rest, dict):
        rest = {("ref" if ":" in node else "name"): node, **rest}  # loss: mse is {name: mse}
        whole = yaml.safe_dump(rest, default_flow_style=True, sort_keys=False, width=1 << 16).strip()
        return f'set the whole of it instead: --set "{where}={whole}"'
    return f"it has no keys to set: set the whole of it, --set {where}=VALUE"

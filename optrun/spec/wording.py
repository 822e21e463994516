"""pydantic's error messages in the spec's words: an unknown key gets the closest known one, a
misspelt ``kind`` the closest kind, a number where text goes the advice to quote it, a reference
without ``:`` or a bad run name the form to use, and ``--set`` into a list the spec lacks the
way to set the whole list."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import yaml

from optrun.errors import dotted
from optrun.spec.base import NAME_PATTERN, REF_PATTERN
from optrun.spec.overrides import Overridden
from optrun.spec.schema import kinds, known_keys, value_at
from optrun.suggest import suggest

#: Arguments users put one level too high: where they belong.
_BELONGS = {
    **dict.fromkeys(
        ("learning_rate", "momentum", "beta_1", "beta_2", "epsilon", "weight_decay"), "train.optimizer.args"
    ),
    **dict.fromkeys(("maxiter", "maxfun", "gtol", "ftol", "xtol", "maxcor", "disp"), "minimize.options"),
}


def _unknown_key_advice(path: tuple[Any, ...], data: Any) -> str:
    key = str(path[-1])
    if key in _BELONGS and ".".join(map(str, path[:-1])) != _BELONGS[key]:
        return f"{key} goes in {_BELONGS[key]}"
    return suggest(key, known_keys(path[:-1], data), "key")


Path = tuple[Any, ...]
Worded = tuple[str, Path] | None


def _unknown_key(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:
    return "unknown key; " + _unknown_key_advice(path, data), path


def _no_kind(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:
    key = str(item.get("ctx", {}).get("discriminator", "kind")).strip("'")
    tags = kinds(path) if key == "kind" else []
    return f"says no {key}: set {dotted((*path, key))}" + (
        f" to one of {', '.join(tags)}" if tags else ""
    ), path


def _misspelt_kind(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:
    # kind: moving_averages
    ctx = item.get("ctx", {})
    key, tag = str(ctx.get("discriminator", "kind")).strip("'"), str(ctx.get("tag", ""))
    message = f"unknown {key} {tag!r}; " + suggest(tag, kinds(path) if key == "kind" else [], key)
    here = value_at(data, path)
    return message, (*path, key) if isinstance(here, dict) and key in here else path  # kind:'s line


#: Fields that take any text, where a number or boolean YAML read is most likely meant as text.
_FREE_TEXT = {("name",), ("logging", "metrics_file")}


def _not_text(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:  # name: 123
    given = item.get("input")
    if given is None and path == ("minimize", "compile_cache"):  # compile_cache: ~
        return "takes a directory, 'auto' or 'none'; got null (YAML's ~): write none to turn it off", path
    if path not in _FREE_TEXT or not isinstance(given, (bool, int, float, datetime.date)):
        return None
    read = "a boolean" if isinstance(given, bool) else "a number"
    if isinstance(given, datetime.date):
        read, given = "a date", given.isoformat()  # as the spec wrote it
    if dotted(path) in overridden:  # the shell took the quotes of --set name='123'
        return (
            f"YAML reads {given!r} as {read}; quote it inside the value: --set \"{dotted(path)}='{given}'\"",
            path,
        )
    return f"YAML reads {given!r} here as {read}; put it in quotes to make it text", path


def _not_one_of(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:  # on_nonfinite: off
    given = item.get("input")
    if not isinstance(given, (bool, datetime.date)):
        return None
    read = "a boolean (as it reads on, off, yes, no, true and false)" if isinstance(given, bool) else "a date"
    message = item["msg"].removeprefix("Value error, ")
    return f"{message}; YAML read the value given here as {read}", path


def _unmatched(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:
    # builder: m.py, name: my run
    pattern, given = item.get("ctx", {}).get("pattern"), item.get("input")
    if pattern == REF_PATTERN:
        return (
            f"{given!r} names no function; write 'path/to/file.py:function' (relative to the spec "
            "file) or 'package.module:function'",
            path,
        )
    if pattern == NAME_PATTERN:
        return (
            f"{given!r} is not a run name: use letters, digits, '_', '.' and '-', starting with a "
            "letter or digit",
            path,
        )
    return None


def _as_lists(value: Any) -> Any:
    """A mapping of indexes (what ``--set a.0=x`` makes where there is no list) as the list."""
    if isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
        return [_as_lists(value[k]) for k in sorted(value, key=int)]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return value


def _indexed_mapping(item: Any, path: Path, data: Any, overridden: Overridden) -> Worded:
    given, where = item.get("input"), dotted(path)
    if not any(key.startswith(f"{where}.") for key in overridden) or not isinstance(_as_lists(given), list):
        return None
    # --set a.b.0=x where the spec has no list a.b: the override made a mapping of indexes.
    whole = yaml.safe_dump(_as_lists(given), default_flow_style=True, width=1 << 16).strip()
    return (
        f"takes a list, and the spec has none here for --set to index into; set the whole list: "
        f'--set "{where}={whole}"',  # in double quotes: YAML quotes with single ones
        path,
    )


_BY_TYPE: dict[str, Callable[[Any, Path, Any, Overridden], Worded]] = {
    "extra_forbidden": _unknown_key,
    "union_tag_not_found": _no_kind,
    "union_tag_invalid": _misspelt_kind,
    "string_type": _not_text,
    "literal_error": _not_one_of,
    "string_pattern_mismatch": _unmatched,
    "list_type": _indexed_mapping,
}


def worded(item: Any, path: Path, data: Any, overridden: Overridden) -> tuple[str, Path]:
    """The message for one of pydantic's errors (``item``, of ``ValidationError.errors()``) at
    ``path`` in ``data``, and the path to place it at (a misspelt kind: the line of ``kind:``)."""
    rule = _BY_TYPE.get(item["type"])
    said = rule(item, path, data, overridden) if rule is not None else None
    if said is not None:
        return said
    message, given = item["msg"].removeprefix("Value error, "), item.get("input")
    if (
        "input" in item
        and item["type"] not in {"missing", "value_error"}
        and not isinstance(given, (dict, list))
    ):
        if isinstance(given, datetime.date):  # keep: 2001-12-14
            return f"{message}; got {given.isoformat()}, which YAML reads as a date", path
        if isinstance(given, str) and re.fullmatch(r"[-+]?[0-9]+(:[0-5]?[0-9])+(\.[0-9]*)?", given):
            # timeout_s: 1:30:00, which YAML 1.1 read in base 60
            return f"{message}; got {given!r}: give a plain number (seconds, for a time)", path
        return f"{message}; got {given!r}", path
    return message, path

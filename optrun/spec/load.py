"""Reading a spec: YAML (``safe_load`` only), ``--set`` overrides, validation with line numbers.

Every problem in a spec is reported at once, each with its YAML path and, where
the key is in the file, its line. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

# dotted and line_of were defined here: importers of optrun.spec.load still find them.
from optrun.errors import ConfigError, Problem, dotted, line_of, placed  # noqa: F401
from optrun.spec.experiment import ExperimentSpec
from optrun.spec.overrides import Overridden, apply_overrides, parse_override  # noqa: F401
from optrun.spec.wording import worded
from optrun.spec.yaml_lines import MAX_BYTES, SpecLimitError, line_map, load_yaml

DEFAULTS = {"train": "train.yaml", "minimize": "minimize.yaml"}


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from."""

    spec: ExperimentSpec
    base_dir: Path  # relative references resolve from here
    source: str  # file path, or 'built-in <name>'
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)  # YAML path -> line in the file
    overridden: Overridden = field(default_factory=dict)  # dotted key -> the flag that set it


@dataclass(frozen=True)
class RawSpec:
    """A spec as read, before validation: the data (overrides applied) and where each key is."""

    data: dict[str, Any]
    base_dir: Path
    source: str
    lines: dict[tuple[Any, ...], int]
    overridden: Overridden  # dotted key -> the command-line flag that set it (--set, --seed, ...)


def _yaml_path(loc: tuple[Any, ...], data: Any, missing: bool = True) -> tuple[Any, ...]:
    """The YAML path of a pydantic error location.

    Parts that are not in the data are union tags ('keras', 'BoundsSpec', ...)
    and are dropped, except the last of a ``missing`` key's error: that one is the key.
    """
    path: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not isinstance(node, dict) or i < len(loc) - 1 or not missing:
            continue  # a union tag ('keras', 'float', 'str', 'BoundsSpec'), not a key of the file
        else:
            node = None
        path.append(part)
    return tuple(path)


def _issues(
    error: ValidationError, data: Any, lines: dict[tuple[Any, ...], int], overridden: Overridden
) -> list[Problem]:
    issues: list[tuple[float, int, Problem]] = []  # (line, order found, problem): sorted by line
    reported: set[str] = set()
    for item in error.errors():
        path = _yaml_path(tuple(item["loc"]), data, missing=item["type"] == "missing")
        name = dotted(path) or "(top level)"
        if name in reported:  # the other alternatives of a union: one message per place
            continue
        reported.add(name)
        message, path = worded(item, path, data, overridden)
        problem = placed(path, message, lines, overridden)
        line = problem.line if problem.line is not None else float("inf")
        issues.append((line, len(issues), problem))
    return [problem for _, _, problem in sorted(issues, key=lambda item: item[:2])]


def load_spec(
    path: str | Path | None, overrides: list[str] | None = None, default: str = "train", sweep: bool = True
) -> LoadedSpec:
    """Reads, overrides and validates a spec; ``path=None`` takes the built-in ``default``.

    ``sweep=False`` leaves the ``sweep:`` section out unread, as ``optrun train`` and
    ``optrun minimize`` ignore it (``optrun sweep`` and ``validate`` check it).

    Raises:
        ConfigError: with every problem found, each with its path and line.
    """
    raw = read_spec(path, overrides, default)
    if not sweep:
        raw.data.pop("sweep", None)
    return check_schema(raw)


def read_spec(path: str | Path | None, overrides: list[str] | None = None, default: str = "train") -> RawSpec:
    """Reads a spec file (or the built-in ``default``) and applies ``overrides``; no validation.

    Raises:
        ConfigError: the file cannot be read, is not YAML, is empty or not a mapping.
    """
    if path is None:
        text = resources.files("optrun.spec.defaults").joinpath(DEFAULTS[default]).read_text()
        source, base_dir = f"built-in {default} experiment", Path.cwd()
    else:
        file = Path(path)
        if file.is_dir():
            raise ConfigError(
                str(path), [Problem("", f"{file.resolve()} is a directory; give a spec file (YAML)")]
            )
        if not file.exists():
            hint = ""
            if str(path).lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                hint = (
                    f"; {str(path)!r} looks like a flag's value, but flags take none: "
                    "write --force, not --force true"
                )
            raise ConfigError(str(path), [Problem("", f"no such file: {file.resolve()}{hint}")])
        # A pipe or a device (<(cat spec.yaml), /dev/stdin) is read as a stream, as far as the limit.
        base_dir = file.resolve().parent if file.is_file() else Path.cwd()
        with file.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            size = file.stat().st_size if file.is_file() else f"over {MAX_BYTES}"
            raise ConfigError(
                str(path),
                [Problem("", f"the file is {size} bytes; a spec may be at most {MAX_BYTES} bytes (1 MiB)")],
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise ConfigError(
                str(path), [Problem("", f"not a text file (not UTF-8 at line {line}); a spec is YAML text")]
            ) from None
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise ConfigError(
                str(path), [Problem("", f"not a text file (a NUL byte at line {line}); a spec is YAML text")]
            )
        source = str(path)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        at_line: int | None = mark.line + 1 if mark is not None else None
        started, context = getattr(error, "context_mark", None), getattr(error, "context", None)
        if started is not None and context and mark is not None and started.line != mark.line:
            # "found unexpected end of stream": the quote or bracket left open is the place to look.
            where = f" at line {mark.line + 1}, column {mark.column + 1}, {context} that starts here"
            at_line = started.line + 1
        if "'\\t'" in problem:
            raise ConfigError(
                source, [Problem("", "YAML does not allow tabs for indentation; use spaces", at_line)]
            ) from None
        if isinstance(error, SpecLimitError):
            raise ConfigError(source, [Problem("", f"spec refused: {problem}{where}", at_line)]) from None
        raise ConfigError(source, [Problem("", f"not valid YAML: {problem}{where}", at_line)]) from None
    if data is None and not overrides:
        raise ConfigError(source, [Problem("", "the spec is empty; `optrun schema` lists what it may hold")])
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source, [Problem("", f"the spec must be a mapping of keys; got a {type(data).__name__}")]
        )
    overridden = apply_overrides(data, overrides or [])
    return RawSpec(data, base_dir, source, line_map(text), overridden)


def check_schema(raw: RawSpec) -> LoadedSpec:
    """Validates a read spec against the schema.

    Raises:
        ConfigError: with every problem found, sorted by line, each with its path and line.
    """
    try:
        spec = ExperimentSpec.model_validate(raw.data)
    except ValidationError as error:
        raise ConfigError(raw.source, _issues(error, raw.data, raw.lines, raw.overridden)) from None
    return LoadedSpec(spec, raw.base_dir, raw.source, raw.lines, raw.overridden)


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec as YAML (what the run directory's config.yaml holds)."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)

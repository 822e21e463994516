"""Collecting a spec's problems instead of stopping at the first, and the checks that need no model.

:class:`Collector` turns each error into a :class:`~optrun.errors.Problem`
with its YAML path and line. :func:`check_references` imports every
``file.py:function`` in the spec and checks that it takes the arguments the
spec will give it, all without calling it. Both work on the raw spec, so they
run even when the schema found problems elsewhere.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from optrun.config import RawSpec, dotted, placed
from optrun.errors import ConfigError, OptrunError, Problem, UserInterrupt, describe
from optrun.loading import load_callable
from optrun.suggest import suggest

Path = tuple[Any, ...]
_SUBJECT = re.compile(r"^([A-Za-z_]\w*(?:\.\w+|\[\d+\])+) ")


def parse_path(text: str) -> Path:
    """``"a.b[0].c"`` -> ``("a", "b", 0, "c")``."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", text))


def get(data: Any, *path: Any) -> Any:
    """``data[path[0]][path[1]]...``, or None where the spec has nothing (or not a mapping/list)."""
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


class Collector:
    """Problems found so far, each placed at its YAML path and line."""

    def __init__(self, raw: RawSpec) -> None:
        self.raw = raw
        self.problems: list[Problem] = []

    def add(self, path: Path, message: str) -> None:
        """Records ``message`` at ``path`` (a leading ``"<path>: "`` in the message is not repeated)."""
        name = dotted(path)
        message = message.removeprefix(f"{name}: ") if name else message
        problem = placed(path, message, self.raw.lines, self.raw.overridden)
        self.problems.append(problem if path else Problem("", message))

    def add_error(self, error: BaseException, path: Path) -> None:
        """Records an error; a path at the start of its message wins over ``path``."""
        found = error.problems if isinstance(error, ConfigError) else [Problem.parse(self._text(error))]
        for problem in found:
            where, message = (parse_path(problem.path) if problem.path else path), problem.message
            # "train.optimizer.wrappers[0].vars names 'x', which ...": the subject is the place.
            subject = _SUBJECT.match(message) if not problem.path else None
            if subject and subject[1].startswith(dotted(path)):
                where, message = parse_path(subject[1]), message[subject.end() :]
            self.add(where, message)

    @staticmethod
    def _text(error: BaseException) -> str:
        return str(error) if isinstance(error, OptrunError) else describe(error)

    @contextlib.contextmanager
    def catch(self, path: Path) -> Iterator[None]:
        """Runs the block; an error (user code's included) is recorded at ``path``, not raised."""
        try:
            yield
        except UserInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 - every failure is a problem to report
            self.add_error(error, path)

    def sorted(self) -> list[Problem]:
        """By line (problems without one last), then in the order found."""
        order = sorted(enumerate(self.problems), key=lambda item: (item[1].line or 1 << 30, item[0]))
        return [problem for _, problem in order]


def _references(data: dict[str, Any]) -> list[tuple[Path, str]]:
    """Every reference in the raw spec with its path."""
    refs: list[tuple[Path, str]] = []
    for path in (("model", "builder"), ("data", "builder"), ("loss", "ref")):
        if isinstance(get(data, *path), str):
            refs.append((path, get(data, *path)))
    if isinstance(data.get("loss"), str) and ":" in data["loss"]:
        refs.append((("loss",), data["loss"]))
    for kind in ("equalities", "inequalities"):
        items = get(data, "minimize", "constraints", kind)
        for i, ref in enumerate(items if isinstance(items, list) else []):
            if isinstance(ref, str):
                refs.append((("minimize", "constraints", kind, i), ref))
        items = get(data, "minimize", "data", kind)
        for i, ref in enumerate(items if isinstance(items, list) else []):
            if isinstance(ref, str):
                refs.append((("minimize", "data", kind, i), ref))
    return refs


def _check_call(
    collector: Collector, path: Path, ref: str, fn: Callable[..., Any], args: tuple[str, ...], params: Any
) -> bool:
    """Whether ``fn(*args, **params)`` would bind; each mismatch is recorded where it is in the spec."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C function: nothing to check before calling
        return True
    params = params if isinstance(params, dict) else {}
    try:
        signature.bind(*args, **params)
        return True
    except TypeError as error:
        reason = str(error)
    where = (*path[:-1], "params")
    taken = list(signature.parameters)
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    found = False
    for key in params:
        if key not in signature.parameters and not open_kwargs:
            hint = suggest(key, taken[len(args) :], "argument")
            collector.add((*where, key), f"{ref} takes no argument {key!r}; {hint}")
            found = True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    free = [p for p in signature.parameters.values() if p.kind in positional][len(args) :]
    missing = [
        p.name
        for p in [*free, *(p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY)]
        if p.default is p.empty and p.name not in params
    ]
    if missing and path[-1] == "builder":
        names = ", ".join(repr(m) for m in missing)
        collector.add(
            path, f"{ref} needs {names}; give {'it' if len(missing) == 1 else 'them'} in {dotted(where)}"
        )
        found = True
    if not found:
        shown = f"({', '.join(args)})"
        collector.add(path, f"{ref} cannot be called as {fn.__name__}{shown}: {reason}")
    return False


def check_references(raw: RawSpec, collector: Collector) -> dict[Path, Callable[..., Any]]:
    """Imports every reference and checks its arguments; returns those that passed, by path."""
    data, good = raw.data, {}
    # train and minimize.data call loss(model, batch); plain minimize calls loss(model).
    train = isinstance(data.get("train"), dict) or isinstance(get(data, "minimize", "data"), dict)
    for path, ref in _references(data):
        with collector.catch(path):
            fn = load_callable(ref, raw.base_dir, dotted(path))
            if path[-1] == "builder":
                ok = _check_call(collector, path, ref, fn, (), get(data, path[0], "params"))
            elif path[0] == "loss":  # train calls loss(model, batch); minimize calls loss(model)
                ok = _check_call(collector, path, ref, fn, ("model", "batch") if train else ("model",), None)
                if (
                    ok
                    and train
                    and isinstance(data.get("minimize"), dict)
                    and get(data, "minimize", "data") is None
                ):
                    ok = _check_call(collector, path, ref, fn, ("model",), None)
            else:  # a constraint: per batch under minimize.data, else of the model alone
                args = ("model", "batch") if path[:2] == ("minimize", "data") else ("model",)
                ok = _check_call(collector, path, ref, fn, args, None)
            if ok:
                good[path] = fn
    return good

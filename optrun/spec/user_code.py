"""Finding the user's callables: ``path/to/file.py:function`` or ``package.module:function``.

File paths resolve relative to the spec file. Each file is imported once per
process, so a model builder and a data builder in one file share its state.
Every failure is a :class:`~optrun.errors.LoadError` that names the reference
and gives the original error in one line, placed (as data) at the spec key
that gave the reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from optrun.errors import LoadError, OptrunError, UserInterrupt, describe

_FILE_MODULES: dict[Path, ModuleType] = {}


def _one_line(error: BaseException) -> str:
    return describe(error)


def _is_file_ref(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import_file(file: Path, ref: str, what: str) -> ModuleType:
    if file in _FILE_MODULES:
        return _FILE_MODULES[file]
    if not file.is_file():
        raise LoadError.at(what, f"{ref}: no such file {file}")
    name = f"optrun_user_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise LoadError.at(what, f"{ref}: cannot import {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.parent))  # so the file can import its neighbours
    try:
        with _escapes(what, f"{ref}: importing {file.name}"):
            spec.loader.exec_module(module)
    except OptrunError:
        del sys.modules[name]
        raise
    except Exception as error:
        del sys.modules[name]
        raise LoadError.at(what, f"{ref}: importing {file.name} failed: {_one_line(error)}") from error
    finally:
        sys.path.remove(str(file.parent))
    _FILE_MODULES[file] = module
    return module


def _import_module(target: str, ref: str, what: str) -> ModuleType:
    try:
        with _escapes(what, f"{ref}: importing {target}"):
            return importlib.import_module(target)
    except OptrunError:
        raise
    except ModuleNotFoundError as error:
        raise LoadError.at(
            what, f"{ref}: no module named {error.name!r} (for a file, write path/to/file.py:function)"
        ) from error
    except Exception as error:
        raise LoadError.at(what, f"{ref}: importing {target} failed: {_one_line(error)}") from error


def load_callable(ref: str, base_dir: Path, what: str) -> Callable[..., Any]:
    """Imports ``ref`` ('file.py:function' or 'package.module:function').

    Args:
        ref: the reference from the spec.
        base_dir: where relative file paths start (the spec file's folder).
        what: the spec key that gave ``ref`` (e.g. "model.builder"): where its errors are placed.
    """
    target, _, attr = ref.rpartition(":")
    if _is_file_ref(target):
        module = _import_file((base_dir / target).resolve(), ref, what)
    else:
        module = _import_module(target, ref, what)
    if not hasattr(module, attr):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise LoadError.at(
            what, f"{ref}: {target} has no function {attr!r}; it defines: {', '.join(defined) or '(nothing)'}"
        )
    value = getattr(module, attr)
    if not callable(value):
        raise LoadError.at(what, f"{ref}: {attr!r} is a {type(value).__name__}, not a function")
    return value


@contextlib.contextmanager
def _escapes(what: str, doing: str) -> Iterator[None]:
    """User code's ``sys.exit()`` and ``KeyboardInterrupt`` become optrun errors: ``what`` is the
    spec key (the error's place), ``doing`` what ran there (``"m.py:build"``)."""
    try:
        yield
    except SystemExit as error:
        raise LoadError.at(
            what, f"{doing} called sys.exit({error.code!r}); user code must return or raise, not exit"
        ) from None
    except KeyboardInterrupt:
        raise UserInterrupt(f"interrupted in {what}: {doing}; nothing was written") from None


def call_user(fn: Callable[..., Any], ref: str, what: str, *args: Any, **kwargs: Any) -> Any:
    """Calls user code; any exception becomes a LoadError naming ``ref``, placed at ``what``."""
    try:
        with _escapes(what, ref):
            return fn(*args, **kwargs)
    except OptrunError:
        raise
    except Exception as error:
        raise LoadError.at(what, f"{ref} raised {_one_line(error)}") from error


def call_mismatch(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
    """Why ``fn(*args, **kwargs)`` would not bind to ``fn``'s signature (Python's own reason), or
    None: it binds, or ``fn`` has no signature to check (a builtin or C function)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        return str(error)
    return None

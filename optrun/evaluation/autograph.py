"""Whether the user's code can be traced as written, without AutoGraph's rewrite.

``tf.function`` runs Python code through AutoGraph before tracing it, so that
``if``, ``for`` and ``while`` on tensors become graph control flow. The rewrite
costs time before the first evaluation (much of the trace, for a small loss),
and for most code it changes nothing: traced as written, code that needs it
raises while tracing (a tensor used as a Python bool, a loop over a tensor or a
dataset), and is then traced again, converted. Two kinds of code would trace
as written without raising, yet differently, and :func:`traced_as_written`
sends them to AutoGraph at once:

* code that catches exceptions (``try``/``except``, ``contextlib.suppress``):
  it could swallow the ``TypeError`` of a tensor used as a Python bool and go on
  down another branch;
* code that passes ``print`` around as a value (``p = print``,
  ``builtins.print``, ``functools.partial(print, ...)``): AutoGraph turns a call
  through such a name into a print at every evaluation (a direct ``print(...)``
  runs once, while tracing, either way).

It reads the source of every function the callable can reach: its own, and the
functions, classes, modules and objects its globals, closures and attributes
name. Libraries AutoGraph never converts (TensorFlow, Keras, NumPy, the
standard library) are not read. Where a source cannot be read, or the search
grows too large, the answer is False (convert).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import sys
import textwrap
import types
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

#: Top-level packages AutoGraph does not convert (its own list).
LIBRARIES = frozenset(
    {"tensorflow", "keras", "tf_keras", "numpy", "scipy", "pandas", "matplotlib", "PIL", "absl"}
    | {"tensorflow_probability", "tensorflow_datasets", "builtins"}
    | set(sys.stdlib_module_names)
)
#: Objects looked at, and functions read, before the search gives up (and converts).
BUDGET = 20_000
FUNCTIONS = 200
#: Items of one container (list, tuple, dict, set) looked at.
CONTAINER_ITEMS = 1_000


class CreatesVariables(Exception):
    """Raised inside a trace as written when the code creates a variable: a failed trace must
    not leave one behind, so such code is traced converted from the start."""


@contextlib.contextmanager
def no_new_variables() -> Iterator[None]:
    """Refuses variable creation (a Keras layer built on its first call, a lazily made state)."""

    def refuse(next_creator: Any, **kwargs: Any) -> Any:
        raise CreatesVariables(kwargs.get("name"))

    with tf.variable_creator_scope(refuse):
        yield


def _library(module: str | None) -> bool:
    return module is not None and module.partition(".")[0] in LIBRARIES


def _names(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _risky(tree: ast.AST) -> bool:
    """Whether the code catches exceptions or uses ``print`` other than by calling it by name."""
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            return True
        if isinstance(node, ast.withitem) and "suppress" in ast.dump(node.context_expr):
            return True
        if _names(node, "print") and id(node) not in called:
            return True
        if isinstance(node, ast.Attribute) and node.attr == "print" and _names(node.value, "builtins"):
            return True
    return False


def _source_risky(fn: types.FunctionType) -> bool:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):  # no source, or a lambda's partial line
        return True
    return _risky(tree)


class _Search:
    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.queue: list[Any] = []
        self.functions = 0

    def add(self, value: Any) -> None:
        if id(value) not in self.seen:
            self.seen.add(id(value))
            self.queue.append(value)

    def names(self, namespace: dict[str, Any], names: set[str]) -> None:
        """Queues what ``names`` refer to in a module namespace, following user modules."""
        for name in names & namespace.keys():
            value = namespace[name]
            if not isinstance(value, types.ModuleType):
                self.add(value)
            elif not _library(value.__name__) and id(value) not in self.seen:
                self.seen.add(id(value))
                self.names(vars(value), names)  # mylib.helper: helper is one of the names

    def function(self, fn: types.FunctionType) -> bool:
        self.functions += 1
        if self.functions > FUNCTIONS or _source_risky(fn):
            return True
        names: set[str] = set()
        stack = [fn.__code__]
        while stack:  # the function's code and that of the functions nested in it
            code = stack.pop()
            names.update(code.co_names)
            stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        self.names(fn.__globals__, names)
        for cell in fn.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                self.add(cell.cell_contents)
        for value in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()):
            self.add(value)
        return False

    def visit(self, value: Any) -> bool:
        """Queues what ``value`` can call; True if it is risky (or ``print`` itself, as a value)."""
        if value is builtins.print:
            return True
        wrapped = getattr(value, "__wrapped__", None)  # functools.wraps, tf decorators
        if wrapped is not None and not isinstance(value, type):
            self.add(wrapped)
        if isinstance(value, types.MethodType):
            self.add(value.__func__)
            self.add(value.__self__)
        elif isinstance(value, types.FunctionType):
            return not _library(value.__module__) and self.function(value)
        elif isinstance(value, (staticmethod, classmethod)):
            self.add(value.__func__)
        elif isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                self.add(accessor)
        elif isinstance(value, type):
            for cls in value.__mro__:
                if not _library(cls.__module__):
                    for member in vars(cls).values():
                        self.add(member)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in list(value)[:CONTAINER_ITEMS]:
                self.add(item)
        elif isinstance(value, dict):
            for item in list(value.values())[:CONTAINER_ITEMS]:
                self.add(item)
        elif hasattr(value, "func") and hasattr(value, "keywords"):  # functools.partial
            for part in (value.func, value.args, value.keywords):
                self.add(part)
        elif isinstance(value, types.ModuleType):
            if not _library(value.__name__):  # reached as a value, not by name: all of it
                for member in list(vars(value).values()):
                    self.add(member)
        elif not _library(type(value).__module__):
            self.add(type(value))  # an instance of a user class: its methods and its attributes
            self.add(getattr(value, "__dict__", None))
        return False


def traced_as_written(fn: Any) -> bool:
    """Whether ``fn`` may be traced without AutoGraph first (see the module's docstring):
    False when the code it can reach catches exceptions or passes ``print`` around, or when
    that cannot be told."""
    search = _Search()
    search.add(fn)
    while search.queue:
        if len(search.seen) > BUDGET or search.visit(search.queue.pop()):
            return False
    return True

"""Variable-keyed arguments: one helper for ``var_to_bounds`` and ``vars_to_clip_dims``.

An eager ``tf.Variable`` is unhashable, so ``{var: value}`` raises in the
user's own code. Every variable-keyed argument of optrun therefore accepts:

* a dict keyed by ``var.ref()``;
* a list of ``(variable, value)`` pairs;
* a dict keyed by the variable's name (``"alpha"`` or ``"alpha:0"``) or its
  Keras path (``"dense/kernel"``; a trailing part of the path such as
  ``"hidden/kernel"`` for ``"sequential_3/hidden/kernel"`` works when it is
  unambiguous);
* in graph mode, a dict keyed by the variables themselves, as in TF1.

Keras 3 variables wrap a ``tf.Variable``; both the wrapper and the wrapped
variable are accepted wherever a variable is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import tensorflow as tf

from optrun.errors import InvalidTypeError, UnknownVariableError

V = TypeVar("V")


def as_tf_variable(var: Any) -> tf.Variable:
    """Returns the ``tf.Variable`` behind ``var`` (itself, or a Keras variable's).

    Raises:
        InvalidTypeError: ``var`` is neither a ``tf.Variable`` nor a Keras variable.
    """
    if isinstance(var, tf.Variable):
        return var
    inner = getattr(var, "value", None)
    if isinstance(inner, tf.Variable) and hasattr(var, "path"):
        return inner
    raise InvalidTypeError(
        f"expected a tf.Variable or a Keras variable; got {type(var).__name__}: {var!r:.80}"
    )


def variable_names(var: Any) -> list[str]:
    """All the names a user may use for ``var``: Keras path, name, and ``name:0`` forms."""
    names: list[str] = []
    path = getattr(var, "path", None)
    if isinstance(path, str):
        names.append(path)
    for name in (var.name, as_tf_variable(var).name):
        names.append(name)
        if name.endswith(":0"):
            names.append(name[:-2])
    return list(dict.fromkeys(names))


def variable_label(var: Any) -> str:
    """The name optrun shows for ``var``: Keras path, else name without ``:0``."""
    return variable_names(var)[0].removesuffix(":0")


def numbered(labels: Sequence[str]) -> tuple[str, ...]:
    """The labels, each once: a repeated one numbered from its second use on (``v``, ``v#2``),
    as results key variables and as a name in ``var_to_bounds`` may give them. A number that is
    some other variable's own label is passed over (``v#3`` where one is named ``v#2``)."""
    taken = set(labels)
    seen: dict[str, int] = {}
    keys = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        key = label
        if seen[label] > 1:
            while f"{label}#{seen[label]}" in taken:
                seen[label] += 1
            key = f"{label}#{seen[label]}"
            taken.add(key)
        keys.append(key)
    return tuple(keys)


def _known(variables: Sequence[Any]) -> str:
    return ", ".join(repr(key) for key in numbered([variable_label(v) for v in variables])) or "(none)"


def _index_of_variable(obj: Any, variables: Sequence[Any], argument: str) -> int:
    target = as_tf_variable(obj)
    for i, var in enumerate(variables):
        if var is obj or as_tf_variable(var) is target:
            return i
    raise UnknownVariableError(
        f"{argument} names variable {variable_label(obj)!r}, which is not among the "
        f"variables being optimized: {_known(variables)}. Add it to var_list or drop the key."
    )


def _suffix_match(name: str, var: Any) -> bool:
    """``"hidden/kernel"`` names ``"sequential_3/hidden/kernel"``: whole path components only."""
    return any(full.endswith("/" + name.removesuffix(":0")) for full in variable_names(var))


def _index_of_name(name: str, variables: Sequence[Any], argument: str) -> int:
    matches = [i for i, var in enumerate(variables) if name in variable_names(var)]
    if not matches and "#" in name:  # "v#2": a variable named "v" after the first, as results number them
        labels = [variable_label(var) for var in variables]
        keys = numbered(labels)
        if name in keys:
            return keys.index(name)
        base = name.rpartition("#")[0]
        if name.endswith("#1") and labels.count(base) > 1:
            return labels.index(base)
    if not matches:  # Keras prefixes paths with the model's name, which users rarely know
        matches = [i for i, var in enumerate(variables) if _suffix_match(name, var)]
    if not matches:
        raise UnknownVariableError(
            f"{argument} names {name!r}, which matches no variable; known names: {_known(variables)}"
        )
    if len(matches) > 1:
        labels = [variable_label(variables[i]) for i in matches]
        keys = numbered([variable_label(var) for var in variables])
        if len(set(labels)) == len(labels):
            advice = "Use the full Keras path instead, or key by var.ref()."
        else:  # the names results give them, the first as "v#1"
            names = [f"{keys[i]}#1" if keys[i] == name else keys[i] for i in matches]
            advice = (
                f"They share that name: name them {', '.join(map(repr, names))} (in the order they are "
                "optimized, as results number them), key them by var.ref(), or pass (variable, value) pairs."
            )
        raise UnknownVariableError(
            f"{argument} name {name!r} is ambiguous: it matches {', '.join(repr(keys[i]) for i in matches)}. "
            f"{advice}"
        )
    return matches[0]


def _index_of_key(key: Any, variables: Sequence[Any], argument: str) -> int:
    if isinstance(key, str):
        return _index_of_name(key, variables, argument)
    if hasattr(key, "deref"):  # a Reference from var.ref()
        return _index_of_variable(key.deref(), variables, argument)
    if type(key).__name__ == "PartitionedVariable":  # TF1's: its parts are the variables
        raise InvalidTypeError(
            f"{argument}: {key.name!r} is a PartitionedVariable; key each of its parts instead, "
            f"e.g. {{part: value for part in {key.name.split('/')[-1]}}}"
        )
    try:
        return _index_of_variable(key, variables, argument)
    except InvalidTypeError:
        raise InvalidTypeError(
            f"{argument} keys must be var.ref(), a variable name or Keras path, or a "
            f"variable; got {type(key).__name__}: {key!r:.80}"
        ) from None


def _items(mapping: Any, argument: str) -> list[tuple[Any, Any]]:
    if isinstance(mapping, Mapping):
        return list(mapping.items())
    if isinstance(mapping, Sequence) and not isinstance(mapping, str):
        items = list(mapping)
        if all(isinstance(item, (tuple, list)) and len(item) == 2 for item in items):
            return [(k, v) for k, v in items]
    raise InvalidTypeError(
        f"{argument} must be a dict keyed by var.ref() or by variable name, or a list of "
        f"(variable, value) pairs; got {type(mapping).__name__}: {mapping!r:.80}"
    )


def among(
    mapping: Mapping[Any, V] | Sequence[tuple[Any, V]], variables: Sequence[Any], argument: str
) -> tuple[list[tuple[Any, V]], list[Any]]:
    """``mapping``'s items without those keyed by a variable (or its ``ref()``) that is not in
    ``variables``, and those variables: TF1 looked up only the variables it optimized, so a TF1
    script may key more. Names are kept, so that one that matches nothing is still refused."""
    kept: list[tuple[Any, V]] = []
    dropped: list[Any] = []
    for key, value in _items(mapping, argument):
        var = key.deref() if hasattr(key, "deref") else key
        if not isinstance(key, str) and not any(v is var or _same(v, var) for v in variables):
            dropped.append(var)
        else:
            kept.append((key, value))
    return kept, dropped


def _same(var: Any, other: Any) -> bool:
    try:
        return as_tf_variable(var) is as_tf_variable(other)
    except InvalidTypeError:  # not a variable: resolve_var_keyed says what is wrong with it
        return True


def resolve_var_keyed(
    mapping: Mapping[Any, V] | Sequence[tuple[Any, V]] | None,
    variables: Sequence[Any],
    *,
    argument: str,
) -> list[V | None]:
    """Aligns a variable-keyed argument with ``variables``.

    Args:
        mapping: the user's argument, in any of the accepted forms (or None).
        variables: the variables it may name, in order.
        argument: the argument's name, used in error messages.

    Returns:
        One entry per variable: the value the user gave for it, or None.

    Raises:
        UnknownVariableError: a key matches no variable, matches several, or two
            keys name the same variable.
        InvalidTypeError: the argument or a key has the wrong type.
    """
    aligned: list[V | None] = [None] * len(variables)
    if mapping is None:
        return aligned
    seen: dict[int, Any] = {}
    for key, value in _items(mapping, argument):
        index = _index_of_key(key, variables, argument)
        if index in seen:
            raise UnknownVariableError(
                f"{argument} gives variable {variable_label(variables[index])!r} twice "
                f"(keys {seen[index]!r} and {key!r}); keep one."
            )
        seen[index] = key
        aligned[index] = value
    return aligned

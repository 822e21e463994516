"""Keras losses and optimizers by the names a spec gives them.

A spec names a Keras loss (``mse``, ``sparse_categorical_crossentropy``,
``Huber`` with ``args``) and a Keras optimizer with its arguments; this module
finds them in Keras, and says what is wrong with a name or an argument, with
the closest known one. :mod:`optrun.runner.build` makes the objects from them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras
from pydantic import ValidationError

from optrun.errors import ConfigError, Problem, SpecPlaces, first_line, in_spec
from optrun.spec.experiment import KerasLoss, OptimizerSpec, loss_shorthand
from optrun.spec.load import RawSpec
from optrun.suggest import suggest

#: Keras's short loss names -> the name of their class (the one that takes ``args``).
LOSS_ALIASES = {
    "mse": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "mape": "MeanAbsolutePercentageError",
    "msle": "MeanSquaredLogarithmicError",
    "kld": "KLDivergence",
    "huber_loss": "Huber",
}


def _loss_class(name: str) -> str:
    """'mse' -> 'MeanSquaredError', 'sparse_categorical_crossentropy' -> 'SparseCategoricalCrossentropy'."""
    if name in LOSS_ALIASES:
        return LOSS_ALIASES[name]
    return "".join(part.capitalize() for part in name.split("_")) if name.islower() else name


def loss_name_path(spec: SpecPlaces) -> str:
    """Where a Keras loss's name is in the spec: ``loss.name`` for ``loss: {name: mse}``, and
    ``loss`` for the shorthand ``loss: mse`` (or a whole ``loss`` given by ``--set``)."""
    return "loss.name" if ("loss", "name") in spec.lines and "loss" not in spec.overridden else "loss"


def loss_problems(raw: RawSpec) -> list[Problem]:
    """The problems of a read spec's ``loss`` when it names a Keras loss: its name and
    arguments, each placed in ``raw``. Needs neither the rest of the spec nor a model; anything
    the schema refuses (or a ``file.py:function``) is left to the schema and reference checks."""
    value = loss_shorthand(raw.data.get("loss"))
    if not isinstance(value, dict) or value.get("kind") != "keras":
        return []
    try:
        spec = KerasLoss.model_validate(value)
    except ValidationError:
        return []  # the schema stage reports it
    try:
        keras_loss(spec, loss_name_path(raw))
    except ConfigError as error:
        return in_spec(raw, error.problems)
    return []


def keras_loss(spec: KerasLoss, name_path: str = "loss.name") -> Callable[[Any, Any], Any]:
    """The Keras loss ``spec`` names: Keras's own function, or its class made with ``spec.args``.

    Args:
        spec: the loss's name and arguments.
        name_path: where the name is in the spec (see :func:`loss_name_path`).

    Raises:
        ConfigError: no Keras loss has that name, or its class refuses the arguments.
    """
    if not spec.args:
        try:
            loss = keras.losses.get(spec.name)
        except (ValueError, TypeError):
            loss = None
        if loss is None:
            known = [n for n in dir(keras.losses) if n[:1].islower() and callable(getattr(keras.losses, n))]
            known = [n for n in known if n not in ("get", "serialize", "deserialize")] + list(LOSS_ALIASES)
            hint = suggest(spec.name, known, "loss name")
            raise ConfigError("loss", [Problem(name_path, f"not a Keras loss: {spec.name!r}; {hint}")])
        return loss
    cls = getattr(keras.losses, _loss_class(spec.name), None)
    if not isinstance(cls, type):
        raise ConfigError(
            "loss", [Problem(name_path, f"{spec.name!r} names no Keras loss class to give args to")]
        )
    # Per-example values, averaged by the caller: a Keras Loss's own mean divides by the replica
    # count under a tf.distribute strategy, which optrun's step already accounts for.
    args = {"reduction": "none", **spec.args}
    try:
        return cls(**args)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            "loss", [Problem("loss.args", f"{cls.__name__}({spec.args}) failed: {first_line(error)}")]
        ) from None


def optimizer_classes() -> dict[str, type]:
    """Keras's optimizer classes by name (not the abstract base nor the loss-scale wrapper)."""
    found = {}
    for name in dir(keras.optimizers):
        value = getattr(keras.optimizers, name)
        if (
            isinstance(value, type)
            and issubclass(value, keras.optimizers.Optimizer)
            and name not in ("Optimizer", "LossScaleOptimizer")
        ):
            found[name] = value
    return found


def _arguments(cls: type) -> set[str]:
    """The keyword arguments a class's constructor names, its base classes' included."""
    names: set[str] = set()
    for klass in cls.__mro__[:-1]:  # not object
        init = vars(klass).get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names |= {p.name for p in params if p.kind in kinds and p.name != "self"}
    return names


def unknown_args(spec: OptimizerSpec, classes: dict[str, type]) -> list[Problem]:
    """Each optimizer argument no constructor takes, at its own key, with the closest name.

    With an unknown optimizer name the arguments are checked against every
    optimizer's, so a misspelt name and a misspelt argument show together.
    """
    cls = classes.get(spec.name)
    known = _arguments(cls) if cls is not None else set().union(*map(_arguments, classes.values()))
    refused = f"{spec.name} takes no argument" if cls is not None else "no Keras optimizer takes"
    found = []
    for key in spec.args:
        if key not in known:
            hint = suggest(key, known, "argument")
            found.append(Problem(f"train.optimizer.args.{key}", f"{refused} {key!r}; {hint}"))
    return found

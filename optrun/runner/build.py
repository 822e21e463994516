"""Turning a spec into objects: the model, its variables, data, losses and the optimizer.

Keras losses and optimizers are found by name in :mod:`optrun.runner.keras_names`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import keras
import tensorflow as tf

from optrun.errors import (
    ConfigError,
    InvalidArgumentError,
    LoadError,
    OptrunError,
    Problem,
    UnknownVariableError,
    naming,
)
from optrun.evaluation.probe import not_one_number
from optrun.runner.batches import not_pairs_at, not_scalar_at
from optrun.runner.keras_names import keras_loss, loss_name_path, optimizer_classes, unknown_args
from optrun.spec.experiment import (
    CallableLoss,
    MovingAverageSpec,
    OptimizerSpec,
    VariableClippingSpec,
)
from optrun.spec.load import LoadedSpec
from optrun.spec.user_code import call_user, load_callable
from optrun.suggest import suggest
from optrun.varkeys import as_tf_variable, resolve_var_keyed, variable_label, variable_names
from optrun.wrappers.clipping import VariableClippingOptimizer, check_dims
from optrun.wrappers.moving_average import MovingAverageOptimizer


def _is_variable(value: Any) -> bool:
    try:
        as_tf_variable(value)
    except Exception:  # noqa: BLE001 - anything that is not a variable
        return False
    return True


def build_model(loaded: LoadedSpec) -> Any:
    """Calls ``model.builder(**model.params)``."""
    ref = loaded.spec.model.builder
    fn = load_callable(ref, loaded.base_dir, "model.builder")
    return call_user(fn, ref, "model.builder", **loaded.spec.model.params)


def variables_of(model: Any, ref: str) -> list[Any]:
    """The trainable variables of what the model builder returned, each once and floating."""
    if _is_variable(model):
        return _checked([model], ref)
    if hasattr(model, "trainable_variables"):
        return _checked(list(model.trainable_variables), ref)
    items = list(model.values()) if isinstance(model, dict) else model
    if isinstance(items, (list, tuple)) and items and all(_is_variable(v) for v in items):
        return _checked(list(items), ref)
    empty = "an empty " if isinstance(items, (list, tuple)) and not items else ""
    raise LoadError.at(
        "model.builder",
        f"{ref} returned {empty}{type(model).__name__}; return a Keras model, a tf.Module, "
        "a variable, or a list or dict of variables.",
    )


def _checked(variables: list[Any], ref: str) -> list[Any]:
    """``variables``, refused at model.builder (in the spec's words, not var_list's) when one
    comes twice or is not floating: no solver can move an integer."""
    seen: set[int] = set()
    for var in variables:
        found, label = as_tf_variable(var), variable_label(var)
        if id(found) in seen:
            raise LoadError.at("model.builder", f"{ref} returned variable {label!r} twice; return it once.")
        seen.add(id(found))
        if not found.dtype.is_floating:
            raise LoadError.at(
                "model.builder",
                f"{ref} returned variable {label!r} of dtype {found.dtype.name}; only floating variables "
                "can be optimized: leave it out (in a Keras layer or tf.Module, make it trainable=False).",
            )
    return variables


def build_data(loaded: LoadedSpec) -> Any:
    """Calls ``data.builder(**data.params)``; checks that the result can be iterated."""
    spec = loaded.spec.data
    if spec is None:
        raise ConfigError(loaded.source, [Problem("data", "required here (a builder returning batches)")])
    fn = load_callable(spec.builder, loaded.base_dir, "data.builder")
    data = call_user(fn, spec.builder, "data.builder", **spec.params)
    if not isinstance(data, (tf.data.Dataset, Iterable)):
        raise LoadError.at(
            "data.builder",
            f"{spec.builder} returned {type(data).__name__}; return a tf.data.Dataset "
            "or an iterable of batches.",
        )
    return data


def train_loss(loaded: LoadedSpec, training: bool = True) -> Callable[[Any, Any], tf.Tensor]:
    """``(model, batch) -> scalar``: a Keras loss on ``(x, y)`` batches, or the user's function.

    ``training`` is passed to a Keras model (dropout, batch norm): True for training, False
    for a full-batch objective, which must be the same function at every evaluation. The
    user's function must return one number: of rank 0 for training (the step takes no other),
    or one element for a full-batch sum, which reshapes it.

    Raises:
        ConfigError: (when the loss is called) it is not a scalar; at ``loss``.
    """
    spec = loaded.spec.loss
    if isinstance(spec, CallableLoss):
        fn = load_callable(spec.ref, loaded.base_dir, "loss")

        def checked(model: Any, batch: Any) -> tf.Tensor:
            # One number, or one message (validate's and the run's, at loss): a training step
            # takes rank 0; a full-batch sum reshapes one element ([1]) to it.
            value = tf.convert_to_tensor(fn(model, batch))
            if value.shape.rank != 0 if training else not_one_number(value.shape):
                raise not_scalar_at(value.shape)
            return value

        return checked
    loss = keras_loss(spec, loss_name_path(loaded))

    def on_batch(model: Any, batch: Any) -> tf.Tensor:
        error = not_pairs_at(batch, spec.name)
        if error is not None:
            raise error
        x, y = batch
        return tf.reduce_mean(loss(y, model(x, training=training)))

    return on_batch


def select(selectors: list[str], variables: list[Any], what: str) -> list[Any]:
    """Variables named by path, name, or ``re:<regex>`` (full match on any of their names)."""
    chosen: list[Any] = []
    for selector in selectors:
        if selector.startswith("re:"):
            pattern = re.compile(selector[3:])
            found = [v for v in variables if any(pattern.fullmatch(n) for n in variable_names(v))]
            if not found:
                known = ", ".join(repr(variable_label(v)) for v in variables)
                raise UnknownVariableError.at(what, f"{selector!r} matches no variable; known names: {known}")
        else:
            try:
                aligned = resolve_var_keyed({selector: True}, variables, argument=what)
            except OptrunError as error:  # "<what> names 'x', which ...": placed at what
                raise naming(error, what) from None
            found = [v for v, hit in zip(variables, aligned, strict=True) if hit]
        chosen += [v for v in found if all(v is not c for c in chosen)]
    return chosen


def clipped_variables(wrapper: VariableClippingSpec, variables: list[Any], where: str) -> list[Any]:
    """The variables a clipping wrapper names, after checking its dims against each."""
    chosen = select(wrapper.vars, variables, f"{where}.vars")
    for var in chosen:
        try:
            check_dims(list(wrapper.dims), var, f"{where}.dims")
        except OptrunError as error:  # "<where>.dims for 'v' names dims ...": placed at .dims
            raise naming(error, f"{where}.dims") from None
    return chosen


def build_optimizer(
    spec: OptimizerSpec, variables: list[Any]
) -> tuple[keras.optimizers.Optimizer, MovingAverageOptimizer | None]:
    """The Keras optimizer, wrapped in list order; also returns the averaging wrapper if any.

    Raises:
        ConfigError: every problem found: the name, each argument, each wrapper.
    """
    problems: list[Problem] = []
    classes = optimizer_classes()
    opt = None
    if spec.name not in classes:
        hint = suggest(spec.name, classes, "optimizer")
        problems.append(Problem("train.optimizer.name", f"not a Keras optimizer: {spec.name!r}; {hint}"))
        problems += unknown_args(spec, classes)
    else:
        try:
            opt = keras.optimizers.get({"class_name": spec.name, "config": dict(spec.args)})
        except (ValueError, TypeError) as error:
            # Keras is the judge (it takes some legacy keys); each key it refuses goes at its own path.
            failed = f"{spec.name}({spec.args}) failed: {str(error).splitlines()[0]}"
            problems += unknown_args(spec, classes) or [Problem("train.optimizer.args", failed)]
    if opt is None:
        opt = keras.optimizers.SGD()  # a stand-in, so the wrappers below are checked too
    inner_iterations = opt.iterations
    averaging = None
    for i, wrapper in enumerate(spec.wrappers):
        if isinstance(wrapper, MovingAverageSpec):
            opt = averaging = MovingAverageOptimizer(
                opt,
                average_decay=wrapper.average_decay,
                num_updates=inner_iterations if wrapper.num_updates == "iterations" else None,
                sequential_update=wrapper.sequential_update,
            )
            continue
        try:  # names and dims are checked here, for every wrapper, so all mistakes show at once
            chosen = clipped_variables(wrapper, variables, f"train.optimizer.wrappers[{i}]")
        except (UnknownVariableError, InvalidArgumentError) as error:
            problems += error.problems or [Problem(f"train.optimizer.wrappers[{i}]", str(error))]
            continue
        opt = VariableClippingOptimizer(
            opt,
            [(v, list(wrapper.dims)) for v in chosen],
            wrapper.max_norm,
            use_locking=wrapper.use_locking,
            colocate_clip_ops_with_vars=wrapper.colocate_clip_ops_with_vars,
        )
    if problems:
        raise ConfigError("train.optimizer", problems)
    return opt, averaging

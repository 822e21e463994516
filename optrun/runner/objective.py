"""What ``optrun minimize`` minimizes, from the spec, and the scipy interface over it.

* ``minimize_loss``: ``fn(model)``, a Keras loss on one full batch, or (``minimize.data``)
  a per-batch loss summed (or averaged) over every batch of the data;
* ``constraints``: ``fn(model)`` for ``minimize.constraints``, then ``fn(model, batch)``
  summed over the data the same way for ``minimize.data.equalities`` / ``inequalities``;
* ``build_interface``: the model (in the strategy's scope) and a ``ScipyOptimizerInterface``
  over its variables, with the spec's method, options and bounds.

Where each part is in the spec, and its errors placed there: :mod:`optrun.runner.places`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from optrun.errors import (
    ConfigError,
    InvalidArgumentError,
    InvalidTypeError,
    OptrunError,
    Problem,
    UnknownVariableError,
    UnsupportedMethodError,
    spec_error,
)
from optrun.evaluation import switches
from optrun.evaluation.compile_cache import CompileCacheError, check_cache_dir, enable_compile_cache
from optrun.interfaces.ipopt.interface import IpoptInterface
from optrun.interfaces.scipy import ScipyOptimizerInterface
from optrun.runner.build import build_data, build_model, train_loss, variables_of
from optrun.runner.checks import check_bounds, check_found
from optrun.runner.ipopt_method import checked_options, is_ipopt
from optrun.runner.keras_names import keras_loss, loss_name_path
from optrun.runner.minimize_fit import one_batch_advice, one_number
from optrun.runner.places import places, raised_at, raising_as, who_raised
from optrun.scale.full_batch import dataset_loss
from optrun.scale.strategy import Plan
from optrun.spec.experiment import CallableLoss, MinimizeSpec
from optrun.spec.load import LoadedSpec, line_of
from optrun.spec.user_code import load_callable

logger = logging.getLogger("optrun")


def minimize_loss(
    loaded: LoadedSpec, model: Any, strategy: Any = None, data: Any = None
) -> Callable[[], tf.Tensor]:
    """Zero-argument loss for the scipy interface: ``fn(model)``, a Keras loss on the full data,
    or (``minimize.data``) a per-batch loss summed over the dataset.

    ``data`` is what the data builder returned, when the caller built it already
    (the builder is called once); None: built here if the loss needs it.
    """
    spec = loaded.spec.loss
    full_batch = loaded.spec.minimize.data if loaded.spec.minimize else None
    if full_batch is not None:
        return _full_batch_loss(loaded, model, full_batch.reduction, strategy, data)
    if isinstance(spec, CallableLoss):
        fn = load_callable(spec.ref, loaded.base_dir, "loss")  # its arguments: see before_building
        return lambda: fn(model)
    loss = keras_loss(spec, loss_name_path(loaded))
    batches = list(build_data(loaded) if data is None else data)
    if len(batches) != 1:
        line = line_of(("data",), loaded.lines)
        raise ConfigError(loaded.source, [Problem("data", one_batch_advice(loaded, len(batches)), line)])
    x, y = batches[0]
    return lambda: tf.reduce_mean(loss(y, model(x)))


def full_batch_data(loaded: LoadedSpec, data: Any = None) -> tf.data.Dataset:
    """The dataset of ``minimize.data``: iterated once per evaluation, in compiled code.

    Args:
        loaded: the spec.
        data: what the data builder returned, if the caller built it; None: built here.

    Raises:
        ConfigError: the data builder returned something other than a ``tf.data.Dataset``.
    """
    data = build_data(loaded) if data is None else data
    if not isinstance(data, tf.data.Dataset):
        message = (
            "minimize.data needs a tf.data.Dataset (it is iterated once per evaluation, in compiled "
            f"code); {loaded.spec.data.builder if loaded.spec.data else ''} returned {type(data).__name__}"
        )
        raise ConfigError(loaded.source, [Problem("data.builder", message)])
    return data


def _full_batch_loss(
    loaded: LoadedSpec, model: Any, reduction: str, strategy: Any, data: Any = None
) -> Callable[[], tf.Tensor]:
    """``minimize.data``: the training-style loss (per batch) summed over every batch."""
    data = full_batch_data(loaded, data)
    per_batch = train_loss(loaded, training=False)  # (model, batch) -> scalar
    jit = loaded.spec.minimize.jit_compile if loaded.spec.minimize else None
    with raising_as(loaded, "loss"):
        return dataset_loss(
            lambda batch: per_batch(model, batch),
            data,
            reduction=reduction,
            var_list=variables_of(model, loaded.spec.model.builder),
            jit_compile=jit,
            strategy=strategy,
        )


def constraints(
    loaded: LoadedSpec, model: Any, strategy: Any = None, data: Any = None
) -> tuple[list[Callable[[], Any]], list[Callable[[], Any]]]:
    """The equality and inequality thunks: ``lambda: fn(model)`` for minimize.constraints, then
    ``fn(model, batch)`` summed (or averaged) over the data for minimize.data's (``data``: what
    the data builder returned, if built already)."""
    minimize = loaded.spec.minimize
    if minimize is None:
        return [], []

    def bind(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        return lambda: fn(model)

    def thunks(refs: list[str], what: str) -> list[Callable[[], Any]]:
        return [bind(load_callable(ref, loaded.base_dir, f"{what}[{i}]")) for i, ref in enumerate(refs)]

    def summed(refs: list[str], kind: str) -> list[Callable[[], Any]]:
        if not refs or minimize.data is None:
            return []
        dataset = full_batch_data(loaded, data)
        variables = variables_of(model, loaded.spec.model.builder)
        first = len(getattr(minimize.constraints, kind))  # the interface numbers these after those
        found = []
        for i, ref in enumerate(refs):
            where = f"minimize.data.{kind}[{i}]"
            fn = functools.partial(one_number, load_callable(ref, loaded.base_dir, where), where, ref)
            # dataset_loss runs fn on the first batch (tracing it): an error there is this constraint's.
            with raising_as(loaded, f"{kind}[{first + i}]"):
                found.append(
                    dataset_loss(
                        functools.partial(fn, model),
                        dataset,
                        reduction=minimize.data.reduction,
                        var_list=variables,
                        jit_compile=minimize.jit_compile,
                        strategy=strategy,
                    )
                )
        return found

    equalities = thunks(minimize.constraints.equalities, "minimize.constraints.equalities")
    inequalities = thunks(minimize.constraints.inequalities, "minimize.constraints.inequalities")
    if minimize.data is not None:
        equalities += summed(minimize.data.equalities, "equalities")
        inequalities += summed(minimize.data.inequalities, "inequalities")
    return equalities, inequalities


def check_strategy(loaded: LoadedSpec, kind: str) -> None:
    """A strategy other than default needs a full-batch objective: there is nothing else to split.

    Raises:
        ConfigError: a strategy without minimize.data.
    """
    spec = loaded.spec.minimize or MinimizeSpec()
    if kind != "default" and spec.data is None:
        message = (
            "minimize spreads work over replicas only for a full-batch objective; add minimize.data "
            f"(with a data builder), or use strategy kind default (got {kind})"
        )
        raise ConfigError(loaded.source, [Problem("strategy", message)])


def build_interface(
    loaded: LoadedSpec, model: Any = None, plan: Plan | None = None, data: Any = None
) -> tuple[Any, SpecInterface | SpecIpoptInterface]:
    """The model (built here, in the strategy's scope, unless given) and a
    ``ScipyOptimizerInterface`` (``IpoptInterface`` for ``method: ipopt``) over its variables.

    ``data``: what the data builder returned, when the caller built it already.
    The builder is called at most once here: the loss and minimize.data's
    constraints share one dataset.
    """
    spec = loaded.spec.minimize or MinimizeSpec()
    plan = plan or Plan("default")
    check_strategy(loaded, plan.kind)
    switches.check_all()  # the environment's, not the spec's: raised as it is, before any model is built
    ipopt = checked_options(loaded) if is_ipopt(spec.method) else None
    if model is None:
        with plan.scope():
            model = build_model(loaded)
    variables = variables_of(model, loaded.spec.model.builder)
    check_found(loaded, lambda raw, found: check_bounds(raw, variables, found))  # each at its key
    if data is None and spec.data is not None:
        data = full_batch_data(loaded)
    equalities, inequalities = constraints(loaded, model, plan.strategy, data)
    bounds = {name: (b.low, b.high) for name, b in spec.constraints.bounds.items()}
    kwargs: dict[str, Any] = {"options": dict(spec.options)}
    if spec.method is not None:
        kwargs["method"] = spec.method
    if spec.tol is not None:
        kwargs["tol"] = spec.tol
    interface_type: type[SpecInterface | SpecIpoptInterface] = SpecInterface
    if ipopt is not None:
        interface_type, kwargs = SpecIpoptInterface, {"options": ipopt}
    try:
        interface = interface_type(
            minimize_loss(loaded, model, plan.strategy, data),
            var_list=variables,
            equalities=equalities or None,
            inequalities=inequalities or None,
            var_to_bounds=bounds or None,
            # Full-batch: the per-batch step is compiled (XLA) inside; the loop over the data is not XLA.
            jit_compile=False if spec.data is not None else spec.jit_compile,
            blas_threads=spec.blas_threads,
            **kwargs,
        )
    except (InvalidArgumentError, InvalidTypeError, UnknownVariableError, UnsupportedMethodError) as error:
        # Say it in the spec's words: the library's argument names mean little in YAML. At the
        # loss or constraint the interface names (a non-scalar's), else at minimize.
        message = str(error).replace("var_to_bounds", "minimize.constraints.bounds")
        # A method that cannot take the constraints or bounds: the method's problem, where it is given.
        at = (
            ("minimize", "method")
            if isinstance(error, UnsupportedMethodError) and spec.method
            else ("minimize",)
        )
        path = places(loaded).get(who_raised(error), (at, None))[0]
        raise spec_error(loaded, [(path, message)]) from None
    except OptrunError:
        raise
    except Exception as error:  # the loss or a constraint raised on its first, eager run
        raise raised_at(loaded, who_raised(error), error) from error
    return model, interface


def compile_cache_for(loaded: LoadedSpec, dry_run: bool = False) -> Path | None:
    """Turns on XLA's compilation cache as the spec says (not for jit_compile: false);
    ``dry_run``: only checks that it could (``optrun validate``), and returns None."""
    spec = loaded.spec.minimize or MinimizeSpec()
    if spec.jit_compile is False or spec.compile_cache == "none":
        return None
    where = None if spec.compile_cache == "auto" else loaded.base_dir / spec.compile_cache
    try:
        if dry_run:
            check_cache_dir(where)
            return None
        return enable_compile_cache(where)
    except CompileCacheError as error:
        if where is None and os.environ.get("OPTRUN_CACHE_DIR"):  # not the spec's: the environment's
            raise InvalidArgumentError(
                f"OPTRUN_CACHE_DIR={os.environ['OPTRUN_CACHE_DIR']!r}: {error.reason}; point it at a "
                "writable folder, unset it, or set minimize.compile_cache: none"
            ) from None
        problem = Problem("minimize.compile_cache", f"{error.reason}; {error.advice}")
        raise ConfigError(loaded.source, [problem]) from None


class SpecInterface(ScipyOptimizerInterface):
    """The interface as a spec runs it: a non-finite stop says what to change in the spec
    (the library's advice, ``check_finite=False``, is a Python argument no spec key sets)."""

    nonfinite_advice = (
        "keep the search where they are finite with minimize.constraints.bounds, or start from "
        "a point where they are (the values model.builder gives)."
    )


class SpecIpoptInterface(IpoptInterface):
    """``method: ipopt``: IPOPT as a spec runs it, with the spec's advice on a non-finite stop."""

    nonfinite_advice = SpecInterface.nonfinite_advice


def note_long_compile(xla: bool | None, compile_s: float, time_s: float, nfev: int) -> None:
    """Logs, for a run that compiled XLA for longer than it solved, how a short run starts sooner."""
    if xla and compile_s > time_s - compile_s:
        logger.info(
            "compiling took %.2f s, longer than the solve (%.2f s, %d evaluations): for runs "
            "this short, minimize.jit_compile: false or a warm minimize.compile_cache starts sooner",
            compile_s,
            time_s - compile_s,
            nfev,
        )

"""``optrun validate``: everything short of running, in one pass, and nothing written.

Stages, each collecting problems rather than stopping at the first:

1. the schema;
2. references: each ``file.py:function`` imports and takes the spec's arguments
   (:mod:`optrun.runner.checks`);
3. what the spec alone decides: the optimizer's and loss's names and
   arguments, the scipy method and its options (even when the model cannot be built);
4. the model, built once: clipping and bounds variable names resolve, and the
   loss and each constraint return a finite scalar at the start point;
5. when all of that is clean, the dry run: loss, gradients and constraints
   evaluated once, as a run would, and refused where a run would stop on them
   (:func:`validate_spec`).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from pydantic import TypeAdapter, ValidationError

from optrun.errors import (
    ConfigError,
    InvalidArgumentError,
    LoadError,
    OptrunError,
    Problem,
    describe,
    dotted,
    spec_error,  # problems at YAML paths, each with its line or "(from --set)"
)
from optrun.evaluation.probe import check_scalar, nonfinite
from optrun.runner.batches import build_on_first_batch, first_batch, nonfinite_step, step_gradients
from optrun.runner.build import build_data, build_model, build_optimizer, train_loss, variables_of
from optrun.runner.checks import (
    Collector,
    Path,
    check_method,
    check_names,
    check_optimizer,
    check_references,
    get,
)
from optrun.runner.common import check_export, seed_everything
from optrun.runner.distribute import check_global_batch, distribute_data, unstarted_plan
from optrun.runner.objective import build_interface, check_strategy, full_batch_data, places
from optrun.scale.strategy import Plan, describe_plan
from optrun.spec.load import LoadedSpec, RawSpec, check_schema
from optrun.spec.strategy import StrategySpec
from optrun.spec.user_code import call_user
from optrun.varkeys import variable_label

#: Where a NaN or Inf comes from, for every non-finite start value.
_LOOK = "Look for log(0), 0/0 or an overflow, or for NaN or Inf in the data"
#: The ``mode`` of the one report a spec with problems gets: the checks skipped, and why.
SKIPPED = "skipped"


def _at_start(what: str, value: float) -> str:
    """A non-finite value at minimize's start point: what happens, and what to do."""
    return (
        f"{what} is {value} at the start point; minimize would stop at its first evaluation. "
        f"{_LOOK}, or start where it is finite (model.builder gives the start point)"
    )


def _nonfinite_start(loaded: LoadedSpec, interface: Any, x0: Any, point: dict[str, Any]) -> None:
    """Every non-finite value minimize's first evaluation would stop on: loss, gradient, constraints."""
    values: dict[tuple[Path, str], Any] = {(("loss",), "the loss"): point["loss"]}
    if math.isfinite(point["loss"]):  # a finite loss with a NaN gradient stops the run just the same
        gradient, offsets = interface.gradient(x0), interface.layout.offsets
        for i, label in enumerate(interface.layout.labels):
            values[("loss",), f"the loss's gradient for {label!r}"] = gradient[offsets[i] : offsets[i + 1]]
    named = places(loaded)
    for kind in ("equalities", "inequalities"):
        for i, value in enumerate(point[kind]):
            path, ref = named[f"{kind}[{i}]"]
            values[path, ref or f"{kind}[{i}]"] = value
    found = [(path, _at_start(what, value)) for (path, what), value in nonfinite(values).items()]
    if found:
        raise spec_error(loaded, found)


def _validate_minimize(loaded: LoadedSpec, plan: Plan, model: Any = None, data: Any = None) -> dict[str, Any]:
    # The dry run evaluates on one device (the same numbers); the strategy is checked and reported.
    check_strategy(loaded, plan.kind)
    scale: dict[str, Any] = {}
    spec = loaded.spec
    if spec.minimize is not None and spec.minimize.data is not None and spec.data is not None:
        data = full_batch_data(loaded, data)  # built once: the batch size and the objective share it
        batch, _ = first_batch(data, spec.data.builder)
        scale = describe_plan(plan, *check_global_batch(loaded, plan, batch, data))
    model, interface = build_interface(loaded, model, data=data)
    check_export(model, loaded.spec.checkpoint.export, loaded.source)
    x0 = interface.start_point()
    point = interface.evaluate(x0)
    _nonfinite_start(loaded, interface, x0, point)
    bounds = interface.packed_bounds
    violated: list[str] = []
    if bounds is not None:
        offsets = interface.layout.offsets
        for i, label in enumerate(interface.layout.labels):
            lo, hi = bounds.lower[offsets[i] : offsets[i + 1]], bounds.upper[offsets[i] : offsets[i + 1]]
            x = x0[offsets[i] : offsets[i + 1]]
            count = int(np.sum((x < lo) | (x > hi)))
            if count:
                violated.append(f"{label}: {count} of {x.size} start values outside bounds")
    return {
        "mode": "minimize",
        **scale,
        "method": interface.method,
        "variables": {
            label: list(shape)
            for label, shape in zip(interface.layout.labels, interface.layout.shapes, strict=True)
        },
        "loss": point["loss"],
        "gradient_norm": float(np.linalg.norm(interface.gradient(x0))),
        "unused_variables": [variable_label(v) for v in interface.unused_variables],
        "bounds_violated_at_start": violated,
        "constraint_residuals": {k: point[k] for k in ("equalities", "inequalities", "violation")},
    }


def _first_step(loaded: LoadedSpec, model: Any, batch: Any, variables: list[Any]) -> tuple[Any, list[Any]]:
    """The loss on the first batch and its gradients; a non-scalar loss is a problem at ``loss``."""
    try:
        return step_gradients(train_loss(loaded), model, batch, variables)
    except InvalidArgumentError as error:  # not a scalar: the run's own words, placed at the key
        raise spec_error(loaded, [(("loss",), str(error))]) from None
    except OptrunError:
        raise
    except Exception as error:
        raise LoadError(
            f"the loss on the first batch failed: {describe(error)}. "
            "Check loss (a scalar) and data.builder (a Keras loss takes (x, y) batches)."
        ) from error


def _validate_train(
    loaded: LoadedSpec, plan: Plan, model: Any = None, batch: Any = None, data: Any = None
) -> dict[str, Any]:
    spec = loaded.spec
    assert spec.train is not None
    if model is None or batch is None:
        model = build_model(loaded)
        assert spec.data is not None
        batch, data = first_batch(build_data(loaded), spec.data.builder)
        build_on_first_batch(model, batch)
    variables = variables_of(model, spec.model.builder)
    build_optimizer(spec.train.optimizer, variables)  # resolves wrapper variable names
    check_export(model, spec.checkpoint.export, loaded.source)
    loss, grads = _first_step(loaded, model, batch, variables)
    dense = [tf.convert_to_tensor(g) for g in grads if g is not None]
    bad = nonfinite_step(loss, variables, grads)
    if bad and spec.train.on_nonfinite == "stop":
        message = (
            f"{bad[0]} on the first batch; the run would stop at step 1. {_LOOK}; "
            "or set train.on_nonfinite: skip to drop such updates"
        )
        raise spec_error(loaded, [(("loss",), message)])
    data = build_data(loaded) if data is None and plan.kind != "default" else data
    global_batch = check_global_batch(loaded, plan, batch, data)  # data: its batch dimension, if static
    if plan.strategy is not None:
        assert spec.data is not None
        distribute_data(plan, data, spec.data.builder)  # a tf.data.Dataset, split
    return {
        "mode": "train",
        **describe_plan(plan, *global_batch),
        "variables": {variable_label(v): list(v.shape) for v in variables},
        "loss": float(loss),
        "gradient_norm": float(tf.linalg.global_norm(dense)) if dense else 0.0,
        "unused_variables": [variable_label(v) for v, g in zip(variables, grads, strict=True) if g is None],
        # train.on_nonfinite: skip drops such an update: a warning, not a problem.
        **({"nonfinite_at_start": bad} if bad else {}),
    }


def validate_spec(
    loaded: LoadedSpec, model: Any = None, batch: Any = None, plan: Plan | None = None, data: Any = None
) -> list[dict[str, Any]]:
    """One report per section present (train and/or minimize); raises on the first error.

    ``model`` (and, for train, its first ``batch`` and the ``data`` it came
    from) are reused when given, so what :func:`validate_raw` built is not
    built twice; so is the strategy's ``plan`` (made here otherwise: a
    multi_worker one starts no worker).

    Raises:
        ConfigError: problems at YAML paths (a non-scalar or non-finite loss, ...).
        OptrunError: any other error a run would stop on.
    """
    if plan is None:
        plan = unstarted_plan(loaded.spec.strategy, loaded.source)
    if model is None:
        seed_everything(loaded.spec.seed)
    reports = []
    if loaded.spec.train is not None:
        reports.append(_validate_train(loaded, plan, model, batch, data))
    if loaded.spec.minimize is not None or loaded.spec.train is None:
        reports.append(_validate_minimize(loaded, plan, model, data))
    return reports


def _start_point(raw: RawSpec, fns: dict[Path, Any], model: Any, collector: Collector) -> None:
    """The minimize loss and each constraint, run once on the model: each must give a scalar."""
    for path, fn in fns.items():
        batched = isinstance(raw.data.get("train"), dict) or get(raw.data, "minimize", "data") is not None
        if path[0] == "loss" and batched:
            continue  # a loss of (model, batch): the dry run checks it
        if path[0] not in ("loss", "minimize") or path[:2] == ("minimize", "data"):
            continue  # not the loss nor a constraint, or one of (model, batch): the dry run checks it
        what = "loss" if path[0] == "loss" else f"{path[2]}[{path[3]}]"
        ref = get(raw.data, *path)
        with collector.catch(path):
            value = check_scalar(call_user(fn, ref, dotted(path), model), what)
            for named, bad in nonfinite({"the loss" if path[0] == "loss" else ref: value}).items():
                collector.add(path, _at_start(named, bad))


def _skipped(*checks: str) -> list[dict[str, Any]]:
    """The report of a spec with problems: the checks that depend on a broken part, and why."""
    return [{"mode": SKIPPED, "skipped": list(checks)}]


def _variables(
    raw: RawSpec, fns: dict[Path, Any], collector: Collector
) -> tuple[Any, Any, Any, list[Any]] | None:
    """Builds the model (and, for train, runs its first batch) from the raw spec.

    Returns:
        The model, the first batch and the data (both None without train), and the variables.
    """
    data = raw.data
    ref = get(data, "model", "builder")
    params = get(data, "model", "params")
    seed = data.get("seed")
    seed_everything(seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0)
    built: list[Any] = []
    with collector.catch(("model", "builder")):
        model = call_user(fns[("model", "builder")], ref, "model.builder", **(params or {}))
        built.append(model)
    if not built:
        return None
    batch = rest = None
    if isinstance(data.get("train"), dict) and ("data", "builder") in fns:
        ref = get(data, "data", "builder")
        with collector.catch(("data", "builder")):
            dataset = call_user(
                fns[("data", "builder")], ref, "data.builder", **(get(data, "data", "params") or {})
            )
            batch, rest = first_batch(dataset, ref)
            build_on_first_batch(model, batch)
    with collector.catch(("model", "builder")):
        return model, batch, rest, variables_of(model, get(data, "model", "builder"))
    return None


def validate_raw(raw: RawSpec) -> tuple[list[Problem], list[dict[str, Any]]]:
    """Every problem in a read spec that can be found without training, sorted by line.

    Returns:
        The problems (empty when the spec is good) and, when there are none,
        the dry run's reports (see :func:`validate_spec`); with problems, one
        report of mode :data:`SKIPPED` listing the checks that needed a broken
        part, each with why.
    """
    collector = Collector(raw)
    plan = _plan(raw, collector)  # first: logical CPUs must be set before TensorFlow's devices
    loaded = None
    try:
        loaded = check_schema(raw)
    except ConfigError as error:
        collector.problems += error.problems
    fns = check_references(raw, collector)
    # Known from the spec alone, so reported even when the model cannot be built.
    check_method(raw, collector)
    check_optimizer(raw, collector)
    if loaded is not None:
        with collector.catch(("loss",)):
            train_loss(loaded)  # a Keras loss name that does not exist
    built = None
    if ("model", "builder") in fns:
        keras.backend.clear_session()  # layer names start afresh for each spec, as in a run of its own
        built = _variables(raw, fns, collector)
    if built is None:
        why = "model.builder failed" if ("model", "builder") in fns else "model.builder cannot be loaded"
        return collector.sorted(), _skipped(
            f"the variables' names and bounds, the loss, gradients and constraints at the start point, "
            f"and the dry run: they need the model, and {why}"
        )
    model, batch, data, variables = built
    check_names(raw, variables, collector)
    if isinstance(raw.data.get("minimize"), dict) or not isinstance(raw.data.get("train"), dict):
        _start_point(raw, fns, model, collector)
    if loaded is not None:
        with collector.catch(("checkpoint", "export")):
            check_export(model, loaded.spec.checkpoint.export, loaded.source)
    if loaded is None or collector.problems:
        return collector.sorted(), _skipped(
            "the dry run (a first training step, or minimize's first evaluation): it runs only on "
            "a spec with no problems"
        )
    reports: list[dict[str, Any]] = []
    with collector.catch(()):
        reports = validate_spec(loaded, model, batch, plan, data)
    return collector.sorted(), reports


def _plan(raw: RawSpec, collector: Collector) -> Plan:
    """The strategy the spec asks for; a multi_worker one is checked (TF_CONFIG) but not started."""
    try:
        spec = TypeAdapter(StrategySpec).validate_python(raw.data.get("strategy") or {"kind": "default"})
    except ValidationError:
        return Plan("default")  # the schema stage reports it
    with collector.catch(("strategy",)):
        return unstarted_plan(spec, raw.source)
    return Plan(spec.kind)

"""``optrun validate``: everything short of running, in one pass, and nothing written.

Stages, each collecting problems rather than stopping at the first:

1. the schema;
2. references: each ``file.py:function`` imports and takes the spec's arguments
   (:mod:`optrun.runner.checks`);
3. what the spec alone decides: the optimizer's and loss's names and
   arguments, the scipy method and its options (even when the model cannot be built);
4. the model, built once, and for train the data (built even when the model
   cannot be: it does not need it): clipping and bounds variable names resolve,
   and the loss and each constraint return a finite scalar at the start point;
5. when all of that is clean, the dry run: loss, gradients and constraints
   evaluated once, as a run would, and refused where a run would stop on them
   (:func:`validate_spec`, one report per section from :mod:`optrun.runner.dry_run`).

A spec with problems gets, instead of the dry run's reports, one report of mode
:data:`optrun.errors.SKIPPED` naming the checks it kept from running.
"""

from __future__ import annotations

from typing import Any

import keras
from pydantic import TypeAdapter, ValidationError

from optrun.errors import SKIPPED, ConfigError, Problem, dotted
from optrun.evaluation.probe import check_scalar, nonfinite
from optrun.runner.batches import build_on_first_batch, first_batch
from optrun.runner.build import variables_of
from optrun.runner.checks import check_method, check_names, check_optimizer, check_references
from optrun.runner.collector import Collector, Path, get
from optrun.runner.common import check_export, seed_everything
from optrun.runner.distribute import unstarted_plan
from optrun.runner.dry_run import at_start, validate_minimize, validate_train
from optrun.runner.keras_names import loss_problems
from optrun.runner.objective import compile_cache_for
from optrun.scale.strategy import Plan
from optrun.spec.load import LoadedSpec, RawSpec, check_schema
from optrun.spec.strategy import StrategySpec
from optrun.spec.user_code import call_user


def validate_spec(
    loaded: LoadedSpec, model: Any = None, batch: Any = None, plan: Plan | None = None, data: Any = None
) -> list[dict[str, Any]]:
    """One report per section present (train and/or minimize); raises on the first error.

    ``model`` (and, for train, its first ``batch``; for train or minimize.data,
    the ``data`` the builder returned) are reused when given, so what :func:`validate_raw` built is not
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
        reports.append(validate_train(loaded, plan, model, batch, data))
    if loaded.spec.minimize is not None or loaded.spec.train is None:
        reports.append(validate_minimize(loaded, plan, model, data))
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
                collector.add(path, at_start(named, bad))


def _skipped(*checks: str) -> list[dict[str, Any]]:
    """The report of a spec with problems: the checks that depend on a broken part, and why."""
    return [{"mode": SKIPPED, "skipped": list(checks)}]


def _variables(
    raw: RawSpec, fns: dict[Path, Any], collector: Collector
) -> tuple[Any, Any, Any, list[Any]] | None:
    """Builds the model and the data: for train, its first batch too (the model built on it).

    The data builder is called even when the model cannot be built: it does not need the
    model, so its problems are found in the same pass.

    Returns:
        The model, the first batch (None without train), the data (None without train or
        minimize.data), and the variables; None when the model could not be built.
    """
    data = raw.data
    seed = data.get("seed")
    # A seed NumPy refuses is a problem at seed, found by the schema: the checks go on with 0.
    seed_everything(seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32 else 0)
    built: list[Any] = []
    if ("model", "builder") in fns:
        ref, params = get(data, "model", "builder"), get(data, "model", "params")
        with collector.catch(("model", "builder")):
            built.append(call_user(fns[("model", "builder")], ref, "model.builder", **(params or {})))
    batch = rest = None
    train = isinstance(data.get("train"), dict)
    if (train or get(data, "minimize", "data") is not None) and ("data", "builder") in fns:
        ref = get(data, "data", "builder")
        with collector.catch(("data", "builder")):
            rest = call_user(
                fns[("data", "builder")], ref, "data.builder", **(get(data, "data", "params") or {})
            )
            if train:  # minimize.data's dataset: checked, and reused, by the dry run
                batch, rest = first_batch(rest, ref)
                if built:
                    build_on_first_batch(built[0], batch)
    if not built:
        return None
    with collector.catch(("model", "builder")):
        return built[0], batch, rest, variables_of(built[0], get(data, "model", "builder"))
    return None


def _model_skipped(raw: RawSpec, fns: dict[Path, Any], collector: Collector) -> list[dict[str, Any]]:
    """The report of a spec whose model cannot be built: the checks that need it, and why."""
    if ("model", "builder") in fns:
        why = "model.builder failed"
    elif ("model", "builder") in collector.unbound:
        why = "model.builder cannot be called with the arguments model.params gives"
    elif isinstance(get(raw.data, "model", "builder"), str):
        why = "model.builder cannot be loaded"
    else:
        why = "the spec gives no model.builder"
    return _skipped(
        f"the variables' names and bounds, the loss, gradients and constraints at the start point, "
        f"and the dry run: they need the model, and {why}"
    )


def validate_raw(raw: RawSpec) -> tuple[list[Problem], list[dict[str, Any]]]:
    """Every problem in a read spec that can be found without training, sorted by line.

    Returns:
        The problems (empty when the spec is good) and, when there are none,
        the dry run's reports (see :func:`validate_spec`); with problems, one
        report of mode :data:`~optrun.errors.SKIPPED` listing the checks that needed a broken
        part, each with why.
    """
    collector = Collector(raw)
    plan = _plan(raw, collector)  # first: logical CPUs must be set before TensorFlow's devices
    loaded = None
    try:
        loaded = check_schema(raw)
    except ConfigError as error:
        collector.problems += error.problems
    minimizes = isinstance(raw.data.get("minimize"), dict) or not isinstance(raw.data.get("train"), dict)
    if loaded is not None and minimizes:
        with collector.catch(("minimize", "compile_cache")):
            compile_cache_for(loaded, dry_run=True)
    fns = check_references(raw, collector)
    # Known from the spec alone, so reported even when the model cannot be built.
    check_method(raw, collector)
    check_optimizer(raw, collector)
    collector.problems += loss_problems(raw)  # a Keras loss: its name and arguments
    if ("model", "builder") in fns:  # layer names start afresh for each spec, as in a run of its own
        keras.backend.clear_session()
    built = _variables(raw, fns, collector)
    if built is None:
        return collector.sorted(), _model_skipped(raw, fns, collector)
    model, batch, data, variables = built
    check_names(raw, variables, collector)
    if minimizes:
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

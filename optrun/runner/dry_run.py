"""The dry run of ``optrun validate``: what a run would do first, done once and checked.

For train, the first batch's loss and gradients; for minimize, the interface
built and its first evaluation (loss, gradient, constraints) at the start
point. Each is refused where a run would stop on it (a non-scalar or
non-finite value, a bad export), with its YAML place; a warning-level finding
(an unused variable, a start value outside its bounds) goes into the report.
:func:`optrun.runner.validate.validate_spec` runs one per section of the spec.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import LoadError, OptrunError, describe, spec_error
from optrun.evaluation.probe import nonfinite
from optrun.runner.batches import build_on_first_batch, first_batch, nonfinite_step, step_gradients
from optrun.runner.build import build_data, build_model, build_optimizer, train_loss, variables_of
from optrun.runner.collector import Path
from optrun.runner.common import check_export
from optrun.runner.distribute import check_global_batch, distribute_data
from optrun.runner.objective import build_interface, check_strategy, full_batch_data
from optrun.runner.places import places
from optrun.scale.strategy import Plan, describe_plan
from optrun.spec.load import LoadedSpec
from optrun.varkeys import variable_label

#: Where a NaN or Inf comes from, for every non-finite start value.
LOOK = "Look for log(0), 0/0 or an overflow, or for NaN or Inf in the data"


def at_start(what: str, value: float) -> str:
    """A non-finite value at minimize's start point: what happens, and what to do."""
    return (
        f"{what} is {value} at the start point; minimize would stop at its first evaluation. "
        f"{LOOK}, or start where it is finite (model.builder gives the start point)"
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
    found = [(path, at_start(what, value)) for (path, what), value in nonfinite(values).items()]
    if found:
        raise spec_error(loaded, found)


def validate_minimize(loaded: LoadedSpec, plan: Plan, model: Any = None, data: Any = None) -> dict[str, Any]:
    """Minimize's report: the interface built over the model, evaluated once at the start point."""
    # The dry run evaluates on one device (the same numbers); the strategy is checked and reported.
    check_strategy(loaded, plan.kind)
    scale: dict[str, Any] = {}
    spec = loaded.spec
    if spec.minimize is not None and spec.minimize.data is not None and spec.data is not None:
        data = full_batch_data(loaded, data)  # built once: the batch size and the objective share it
        batch, _ = first_batch(data, spec.data.builder)
        scale = describe_plan(plan, *check_global_batch(loaded, plan, batch, data, required=False))
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
            for label, shape in zip(interface.layout.keys, interface.layout.shapes, strict=True)
        },
        "loss": point["loss"],
        "gradient_norm": float(np.linalg.norm(interface.gradient(x0))),
        "unused_variables": [variable_label(v) for v in interface.unused_variables],
        "ungraded_constraints": list(interface.ungraded_constraints),
        "bounds_violated_at_start": violated,
        "constraint_residuals": {k: point[k] for k in ("equalities", "inequalities", "violation")},
    }


def _first_step(loaded: LoadedSpec, model: Any, batch: Any, variables: list[Any]) -> tuple[Any, list[Any]]:
    """The loss on the first batch and its gradients; a non-scalar loss is a problem at ``loss``."""
    try:  # a loss that is not a scalar: a ConfigError at loss, in the run's own words
        return step_gradients(train_loss(loaded), model, batch, variables)
    except OptrunError:
        raise
    except Exception as error:
        raise LoadError(
            f"the loss on the first batch failed: {describe(error)}. "
            "Check loss (a scalar) and data.builder (a Keras loss takes (x, y) batches)."
        ) from error


def validate_train(
    loaded: LoadedSpec, plan: Plan, model: Any = None, batch: Any = None, data: Any = None
) -> dict[str, Any]:
    """Train's report: the model, the optimizer (its wrappers' variables) and the first batch's step."""
    spec = loaded.spec
    assert spec.train is not None
    if model is None or batch is None:
        model = build_model(loaded)
        raw = build_data(loaded)  # a problem at `data` when the spec has none
        assert spec.data is not None
        batch, data = first_batch(raw, spec.data.builder)
        build_on_first_batch(model, batch)
    variables = variables_of(model, spec.model.builder)
    build_optimizer(spec.train.optimizer, variables)  # resolves wrapper variable names
    check_export(model, spec.checkpoint.export, loaded.source)
    loss, grads = _first_step(loaded, model, batch, variables)
    dense = [tf.convert_to_tensor(g) for g in grads if g is not None]
    bad = nonfinite_step(loss, variables, grads)
    if bad and spec.train.on_nonfinite == "stop":
        message = (
            f"{bad[0]} on the first batch; the run would stop at step 1. {LOOK}; "
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

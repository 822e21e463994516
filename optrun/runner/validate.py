"""``optrun validate``: everything short of running, and nothing written.

It validates the spec, imports the user's module, builds the model, and
evaluates the loss, gradients and constraints once at the start point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from optrun.config import LoadedSpec
from optrun.errors import LoadError, describe
from optrun.runner.build import build_data, build_model, build_optimizer, train_loss, variables_of
from optrun.runner.common import check_export, seed_everything
from optrun.runner.minimize import build_interface
from optrun.runner.train import build_on_first_batch, first_batch
from optrun.varkeys import variable_label


def _validate_minimize(loaded: LoadedSpec) -> dict[str, Any]:
    model, interface = build_interface(loaded)
    check_export(model, loaded.spec.checkpoint.export, loaded.source)
    x0 = interface.start_point()
    point = interface.evaluate(x0)
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


def _validate_train(loaded: LoadedSpec) -> dict[str, Any]:
    spec = loaded.spec
    model = build_model(loaded)
    data = build_data(loaded)
    assert spec.data is not None
    batch, data = first_batch(data, spec.data.builder)
    build_on_first_batch(model, batch)
    variables = variables_of(model, spec.model.builder)
    loss_fn = train_loss(loaded)
    if spec.train is not None:
        build_optimizer(spec.train.optimizer, variables)  # resolves wrapper variable names
    check_export(model, spec.checkpoint.export, loaded.source)
    try:
        with tf.GradientTape() as tape:
            loss = tf.reshape(loss_fn(model, batch), [])
        grads = tape.gradient(loss, variables)
    except Exception as error:
        raise LoadError(
            f"the loss on the first batch failed: {describe(error)}. "
            "Check loss (a scalar) and data.builder (a Keras loss takes (x, y) batches)."
        ) from error
    dense = [tf.convert_to_tensor(g) for g in grads if g is not None]
    return {
        "mode": "train",
        "variables": {variable_label(v): list(v.shape) for v in variables},
        "loss": float(loss),
        "gradient_norm": float(tf.linalg.global_norm(dense)) if dense else 0.0,
        "unused_variables": [variable_label(v) for v, g in zip(variables, grads, strict=True) if g is None],
    }


def validate_spec(loaded: LoadedSpec) -> list[dict[str, Any]]:
    """One report per section present (train and/or minimize); raises on any error."""
    seed_everything(loaded.spec.seed)
    reports = []
    if loaded.spec.train is not None:
        reports.append(_validate_train(loaded))
    if loaded.spec.minimize is not None or loaded.spec.train is None:
        reports.append(_validate_minimize(loaded))
    return reports

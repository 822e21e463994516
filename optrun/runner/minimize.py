"""``optrun minimize``: the scipy interface over the model's variables."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.config import LoadedSpec
from optrun.errors import (
    ConfigError,
    InvalidArgumentError,
    InvalidTypeError,
    LoadError,
    NonFiniteError,
    OptrunError,
    RunFailed,
    UnknownVariableError,
    UnsupportedMethodError,
    describe,
)
from optrun.reporting import MetricsWriter, write_json_atomic
from optrun.runner.build import build_model, constraints, minimize_loss, variables_of
from optrun.runner.common import (
    CHECKPOINTS,
    Interrupted,
    RunOptions,
    RunOutcome,
    Terminated,
    check_export,
    export_model,
    failure,
    interrupt_code,
    previous_result,
    record_config,
    restore_latest,
    run_dir,
    run_directory,
    seed_everything,
    signals_deferred,
)
from optrun.scipy_interface import ScipyOptimizerInterface
from optrun.spec import MinimizeSpec
from optrun.varkeys import variable_label


def build_interface(loaded: LoadedSpec, model: Any = None) -> tuple[Any, ScipyOptimizerInterface]:
    """The model (built here unless given) and a ``ScipyOptimizerInterface`` over its variables."""
    spec = loaded.spec.minimize or MinimizeSpec()
    model = build_model(loaded) if model is None else model
    variables = variables_of(model, loaded.spec.model.builder)
    equalities, inequalities = constraints(loaded, model)
    bounds = {name: (b.low, b.high) for name, b in spec.constraints.bounds.items()}
    kwargs: dict[str, Any] = {"options": dict(spec.options)}
    if spec.method is not None:
        kwargs["method"] = spec.method
    if spec.tol is not None:
        kwargs["tol"] = spec.tol
    try:
        interface = ScipyOptimizerInterface(
            minimize_loss(loaded, model),
            var_list=variables,
            equalities=equalities or None,
            inequalities=inequalities or None,
            var_to_bounds=bounds or None,
            jit_compile=spec.jit_compile,
            blas_threads=spec.blas_threads,
            **kwargs,
        )
    except (InvalidArgumentError, InvalidTypeError, UnknownVariableError, UnsupportedMethodError) as error:
        # Say it in the spec's words: the library's argument names mean little in YAML.
        message = str(error).replace("var_to_bounds", "minimize.constraints.bounds")
        raise ConfigError(loaded.source, [f"minimize: {message}"]) from None
    except OptrunError:
        raise
    except Exception as error:  # the loss or a constraint raised on its first, eager run
        raise LoadError(f"{_who(loaded, error)} raised on the start point: {describe(error)}") from error
    return model, interface


def _who(loaded: LoadedSpec, error: BaseException) -> str:
    """``equalities[0] (cons.py:fn)``: the argument that raised, named with its spec reference."""
    note = next((n for n in getattr(error, "__notes__", []) if n.startswith("optrun: raised by ")), "")
    what = note.removeprefix("optrun: raised by ") or "the loss or a constraint"
    spec = loaded.spec.minimize or MinimizeSpec()
    refs = {"loss": getattr(loaded.spec.loss, "ref", None)}
    for kind in ("equalities", "inequalities"):
        refs.update((f"{kind}[{i}]", ref) for i, ref in enumerate(getattr(spec.constraints, kind)))
    ref = refs.get(what)
    shown = f"minimize.constraints.{what}" if what.startswith(("equalities", "inequalities")) else what
    return f"{shown} ({ref})" if ref else shown


def run_minimize(loaded: LoadedSpec, options: RunOptions) -> RunOutcome:
    """Minimizes per ``loaded.spec``; writes the run directory; returns the outcome."""
    with contextlib.ExitStack() as stack:  # holds the run directory's lock until the end
        return _minimize(loaded, options, stack)


def _minimize(loaded: LoadedSpec, options: RunOptions, stack: contextlib.ExitStack) -> RunOutcome:
    spec = loaded.spec
    seed_everything(spec.seed)
    model, interface = build_interface(loaded)
    check_export(model, spec.checkpoint.export, loaded.source)
    out = run_dir(loaded, options)
    stack.enter_context(run_directory(out, "minimize", loaded, options))
    checkpoint = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(checkpoint, str(out / CHECKPOINTS), max_to_keep=spec.checkpoint.keep)
    done = 0  # iterations of earlier sessions of this run: the count and the budget go on
    if options.resume:
        restore_latest(checkpoint, manager, out)
        done = int(str(manager.latest_checkpoint).rsplit("-", 1)[-1])
    record_config(out, "minimize", loaded)
    maxiter = (spec.minimize.options.get("maxiter") if spec.minimize else None) or None
    before = previous_result(out) if options.resume else None
    if (
        maxiter is not None
        and done >= maxiter
        and before is not None
        and before.get("status") != "interrupted"
    ):
        options.reporter.note(f"the run already used its {maxiter} iterations; nothing to do (raise maxiter)")
        return RunOutcome(out, before, True)
    if maxiter is not None and done:
        interface.optimizer_kwargs["options"] = {
            **interface.optimizer_kwargs["options"],
            "maxiter": maxiter - done,
        }

    metrics = MetricsWriter(
        out / spec.logging.metrics_file,
        out / "tensorboard" if spec.logging.tensorboard else None,
        resume_from=done if options.resume else None,
    )
    state: dict[str, Any] = {"iteration": done, "loss": math.nan, "x": None}
    options.reporter.start("minimize", maxiter, done)

    def on_step(x: np.ndarray) -> None:
        state["iteration"] += 1
        state["x"] = x
        point = interface.evaluate(x)  # the cached last evaluation, almost always: no extra TF call
        state["loss"] = point["loss"]
        logged = state["iteration"] % spec.logging.every_steps == 0
        if logged:
            metrics.write(state["iteration"], loss=point["loss"], constraint_violation=point["violation"])
            state["logged"] = state["iteration"]
        options.reporter.step(state["iteration"], point["loss"], logged)

    def stopped(status: str, error: str | None = None) -> None:
        # The variables hold the last point scipy tried; keep the last accepted iterate instead.
        if state["x"] is not None:
            interface.assign(state["x"])
        with signals_deferred():
            manager.save(checkpoint_number=state["iteration"])
        metrics.close()
        record = {
            "kind": "minimize",
            "status": status,
            "success": False,
            "nit": state["iteration"],
            "fun": state["loss"],
        }
        write_json_atomic(out / "result.json", {**record, **({"error": error} if error else {})})

    started = time.perf_counter()
    try:
        scipy_result = interface.minimize(step_callback=on_step)
    except (KeyboardInterrupt, Terminated) as interrupt:
        stopped("interrupted")
        raise Interrupted(interrupt_code(interrupt), out) from None
    except NonFiniteError as error:  # the interface restored the last accepted iterate
        stopped("nonfinite", str(error))
        raise RunFailed(f"{error} (result.json written to {out})") from None
    except (Exception, SystemExit) as error:  # user code failed (or exited) mid-run: record it, exit 1
        message = failure(error, f"iteration {state['iteration'] + 1}")
        stopped("error", message)
        raise RunFailed(f"{message} (result.json written to {out})") from error
    final = interface.evaluate()
    last = max(done + int(scipy_result.get("nit", state["iteration"] - done)), state["iteration"])
    if state.get("logged") != last:  # the final point, unless on_step just logged it
        metrics.write(last, loss=final["loss"], constraint_violation=final["violation"])
    manager.save(checkpoint_number=state["iteration"])
    exported = export_model(model, spec.checkpoint.export, out)
    metrics.close()
    result = {
        "kind": "minimize",
        "status": int(scipy_result.get("status", 0)),
        "success": bool(scipy_result.success),
        "message": str(scipy_result.message),
        "method": interface.method,
        "fun": float(scipy_result.fun),
        "nit": done + int(scipy_result.get("nit", state["iteration"] - done)),
        "nfev": int(scipy_result.get("nfev", 0)),
        "solution": {variable_label(v): np.asarray(v.numpy()).tolist() for v in interface.var_list},
        "constraint_residuals": {
            "equalities": final["equalities"],
            "inequalities": final["inequalities"],
            "violation": final["violation"],
        },
        "time_s": round(time.perf_counter() - started, 3),
        "export": exported,
    }
    write_json_atomic(out / "result.json", result)
    return RunOutcome(out, result, bool(scipy_result.success))

"""``optrun minimize``: the scipy interface over the model's variables."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import NonFiniteError, Terminated, problems_in
from optrun.interfaces.method_options import scipy_key
from optrun.runner import finish
from optrun.runner import left_to_do as left
from optrun.runner.checks import before_building
from optrun.runner.common import (
    CHECKPOINTS,
    Interrupted,
    RunOptions,
    RunOutcome,
    check_export,
    export_model,
    failure,
    previous_result,
    record_config,
    resume_budget,
    seed_everything,
    write_result,
)
from optrun.runner.distribute import full_batch_scale
from optrun.runner.evaluations_done import counts_evaluations, evaluations_before, note
from optrun.runner.follower import follow
from optrun.runner.interrupts import held, interrupt_code, interrupts_at_checks
from optrun.runner.ipopt_method import barrier, is_ipopt, iteration_budget, limits, multipliers, solver_fields
from optrun.runner.objective import build_interface, compile_cache_for, full_batch_data, note_long_compile
from optrun.runner.outcome import NONFINITE, classify, succeeded, withheld_export, would_export
from optrun.runner.reporting import MetricsWriter, Progress, report
from optrun.runner.restore import checkpoint_number, restore_latest
from optrun.runner.save_clock import SaveClock
from optrun.runner.warning_log import WarningLog, captured_warnings
from optrun.runner.workers import claim_place, worker_fields
from optrun.scale.multi_worker import Channel, Stop
from optrun.scale.strategy import make_strategy, peer_failure
from optrun.spec.load import LoadedSpec

logger = logging.getLogger("optrun")


def run_minimize(loaded: LoadedSpec, options: RunOptions) -> RunOutcome:
    """Minimizes per ``loaded.spec``; writes the run directory; returns the outcome.

    Warnings raised meanwhile (scipy's, Keras's, the user's) are captured, not
    printed: result.json lists each once with its count, and warnings.log
    in the run directory says where each came from.
    """
    # The lock on the run directory is held until the end.
    with problems_in(loaded), captured_warnings() as caught, contextlib.ExitStack() as stack:
        return _minimize(loaded, options, stack, caught)


def _minimize(
    loaded: LoadedSpec, options: RunOptions, stack: contextlib.ExitStack, caught: WarningLog
) -> RunOutcome:
    spec = loaded.spec
    plan = make_strategy(loaded.spec.strategy, loaded.source)  # first: logical CPUs precede TF's devices
    seed_everything(spec.seed)
    cache = compile_cache_for(loaded)  # before the user's modules are imported: they may start TF
    before_building(loaded, "minimize")  # references, scipy's method and options: each at its key
    full_batch = spec.minimize is not None and spec.minimize.data is not None and plan.kind != "default"
    data = full_batch_data(loaded) if full_batch else None  # built once: the loss and the batch size share it
    model, interface = build_interface(loaded, plan=plan, data=data)
    scale = full_batch_scale(loaded, plan, data) if full_batch else {}  # global_batch, as train records it
    # Multi-worker: made on every worker right here, so its collectives line up.
    channel = Channel(interface, plan.strategy) if plan.kind == "multi_worker" else None
    check_export(model, spec.checkpoint.export, loaded.source)
    place = stack.enter_context(claim_place(loaded, options, "minimize", plan))
    out = place.out
    checkpoint = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(checkpoint, str(out / CHECKPOINTS), max_to_keep=spec.checkpoint.keep)
    if channel is not None and not plan.is_chief:
        return follow(channel, model, manager, place, plan, spec.checkpoint.export, caught)
    if channel is not None:  # the chief: scipy runs here, every evaluation on every worker
        stack.enter_context(channel.leading())
    # The whole run's budget: each session gets what is left (IPOPT restarts from the iterate too).
    key, maxiter = iteration_budget(interface.method, dict(spec.minimize.options if spec.minimize else {}))
    # Iterations and evaluations of earlier sessions of this run: the counts and the budget go on.
    done, earlier, before = 0, 0, None
    unit = "evaluation" if counts_evaluations(interface.method) else "iteration"  # maxiter's
    if options.resume:
        done = checkpoint_number(restore_latest(checkpoint, manager, out, options.reporter.note))
        earlier, before = evaluations_before(out / CHECKPOINTS, done), previous_result(out)
    used = earlier if unit == "evaluation" else done
    if options.resume:
        resume_budget(used, maxiter, out, unit, f"minimize.options.{key}", end_left=True)
    stale = left.older_than(out / "result.json", manager.latest_checkpoint)
    todo = left.left_to_do(options.resume, used, maxiter, before, stale)
    if todo == left.NOTHING and before is not None:  # the files stay as they were
        options.reporter.note(left.nothing_note(before, used, key, maxiter, unit))
        if channel is not None:
            channel.stop(Stop(success=True))
        return RunOutcome(out, before, succeeded(str(before.get("status"))))
    record_config(out, "minimize", loaded)  # and an earlier session's result.json goes
    if maxiter is not None and used:
        left_over = {scipy_key(interface.method, key): maxiter - used}
        interface.optimizer_kwargs["options"] = {**interface.optimizer_kwargs["options"], **left_over}

    metrics = MetricsWriter(
        out / spec.logging.metrics_file,
        out / "tensorboard" if spec.logging.tensorboard else None,
        resume_from=done if options.resume else None,
    )
    state: dict[str, Any] = {"iteration": done, "loss": math.nan, "x": None}
    clock = SaveClock(spec.checkpoint.every_steps, spec.checkpoint.seconds)
    max_iterations, max_nfev = limits(interface.method, dict(spec.minimize.options if spec.minimize else {}))
    started = time.perf_counter()
    options.reporter.start("minimize", max_iterations, done)

    def progress(iteration: int, loss: float, violation: float, logged: bool, **final: Any) -> Progress:
        final.setdefault("nfev", earlier + interface.nfev)  # the whole run's, as the budget counts
        solver = "IPOPT" if is_ipopt(interface.method) else "scipy"
        shown = ("minimize", iteration, max_iterations, loss, logged)
        elapsed = final.pop("elapsed", time.perf_counter() - started)
        return Progress(*shown, elapsed, max_nfev=max_nfev, violation=violation, solver=solver, **final)

    def save() -> Any:  # with the run's evaluations so far, which a resume of TNC's budget needs
        note(out / CHECKPOINTS, state["iteration"], earlier + interface.nfev)
        return manager.save(checkpoint_number=state["iteration"])

    def on_step(x: np.ndarray) -> None:
        gate.check()  # between iterations: where Ctrl-C and SIGTERM stop the solver
        state["iteration"] += 1
        state["x"] = x
        point = interface.evaluate(x)  # the cached last evaluation, almost always: no extra TF call
        state["loss"] = point["loss"]
        logged = state["iteration"] % spec.logging.every_steps == 0
        mu = barrier(interface)  # IPOPT's barrier parameter; None for scipy's methods
        if logged:
            extra = {} if mu is None else {"mu": mu}
            metrics.write(
                state["iteration"], loss=point["loss"], constraint_violation=point["violation"], **extra
            )
            state["logged"] = state["iteration"]
        report(
            options.reporter, progress(state["iteration"], point["loss"], point["violation"], logged, mu=mu)
        )
        # The iterate, for a resume after a kill (multi-worker saves are collective: end and Ctrl-C only).
        if channel is None and clock.due(state["iteration"]):
            interface.assign(x)  # the next evaluation assigns its own point
            with held():
                save()
            clock.saved()

    def stopped(status: str, error: str | None = None, keep: bool = True) -> None:
        # The last iterate on_step saw (the checkpoint's number counts it); before one, the start.
        with finish.signals_moot():  # the run ends either way: its checkpoint and result are written whole
            interface.assign(state["x"] if state["x"] is not None else start)
            if channel is not None and keep:
                channel.stop(Stop(save=True))
            if keep and status == "interrupted":
                save()
            elif keep:  # a failed run's: the disk may refuse it, and the record is still worth a try
                finish.best_effort(save)
            saved = manager.latest_checkpoint
            finish.best_effort(metrics.close)  # the record matters more than lines the disk refused
            record: dict[str, Any] = {
                "kind": "minimize",
                "status": status,
                "success": False,
                "method": interface.method,
                "nit": state["iteration"],
                "nfev": earlier + interface.nfev,
                "fun": state["loss"],
                "time_s": round(time.perf_counter() - started, 3),
            }
            if status == NONFINITE and would_export(model, spec.checkpoint.export):
                record.update(export=None, export_skipped=withheld_export(saved))
            write_result(out, {**record, **({"error": error} if error else {})}, caught)

    start = interface.start_point()  # the restored iterate, on a resumed run
    try:
        # Tracing and XLA's compile, timed on their own (compile_s); the loss curve's start point.
        compiling = time.perf_counter()
        first = interface.evaluate(start)
        state["compile_s"], state["loss"] = time.perf_counter() - compiling, first["loss"]  # ckpt-0's loss
        logger.info("first evaluation (tracing and compiling) took %.2f s", state["compile_s"])
        if not done:
            metrics.write(0, loss=first["loss"], constraint_violation=first["violation"])
        with interrupts_at_checks() as gate:
            if todo == left.END:  # the final metrics line, unless the last iteration logged it
                state["logged"] = left.last_logged(out / spec.logging.metrics_file)
                scipy_result = left.budget_used(start, first["loss"], used, unit)
            else:
                scipy_result = interface.minimize(step_callback=on_step)
    except (KeyboardInterrupt, Terminated) as interrupt:
        advice = finish.after_failed_write(manager, state["iteration"], finish.RESUME_GOES_ON)
        with finish.stopped_run_written(f"writing the run stopped at iteration {state['iteration']}", advice):
            stopped("interrupted")
        raise Interrupted(interrupt_code(interrupt), place.run, plan) from None
    except NonFiniteError as error:  # the checkpoint keeps the last accepted iterate (or the start)
        said = finish.nonfinite_said(error, state["iteration"], state["loss"])
        written = finish.best_effort(lambda: stopped("nonfinite", said))
        raise finish.recorded_failure(said, out, written) from None
    except BaseException as error:  # user code failed, exited or raised a BaseException: recorded, exit 1
        kept = f"The checkpoints in {out / CHECKPOINTS} are whole."
        message = peer_failure(plan, error, kept) or failure(error, f"iteration {state['iteration'] + 1}")
        written = finish.best_effort(lambda: stopped("error", message))
        message = finish.with_disk_advice(message, error, manager, state["iteration"])  # is the work safe?
        raise finish.recorded_failure(message, out, written) from error
    final = interface.evaluate()
    code = scipy_result.get("status")
    status = classify(
        interface.method,
        None if code is None else int(code),
        bool(scipy_result.success),
        str(scipy_result.message),
        fun=float(scipy_result.fun),
        violation=final["violation"],
    )
    # Non-finite weights are never exported: the checkpoint keeps the last point scipy accepted.
    withheld = status == NONFINITE and would_export(model, spec.checkpoint.export)
    if status == NONFINITE and state["x"] is not None and math.isfinite(state["loss"]):
        interface.assign(state["x"])  # the last accepted iterate, where the loss was finite
    exports = not withheld and spec.checkpoint.export != "none"
    last = max(done + int(scipy_result.get("nit", state["iteration"] - done)), state["iteration"])
    if channel is not None:
        channel.stop(Stop(save=True, export=exports, success=succeeded(status)))

    def write() -> dict[str, Any]:
        if state.get("logged") != last:  # the final point, unless on_step just logged it
            metrics.write(last, loss=final["loss"], constraint_violation=final["violation"])
        saved = save()
        exported = export_model(model, spec.checkpoint.export, out) if exports else None
        metrics.close()
        nit = done + int(scipy_result.get("nit", state["iteration"] - done))
        nfev = earlier + int(scipy_result.get("nfev", interface.nfev))
        time_s = round(time.perf_counter() - started, 3)
        note_long_compile(interface.xla, state["compile_s"], time_s, nfev)
        result = {
            "kind": "minimize",
            "status": status,
            "success": succeeded(status),
            **solver_fields(interface.method, scipy_result),  # scipy_status, or ipopt_status
            "message": str(scipy_result.message),
            "method": interface.method,
            "fun": float(scipy_result.fun),
            "nit": nit,
            "nfev": nfev,
            "solution": {
                k: np.asarray(v.numpy()).tolist()
                for k, v in zip(interface.layout.keys, interface.var_list, strict=True)
            },
            "constraint_residuals": {
                "equalities": final["equalities"],
                "inequalities": final["inequalities"],
                "violation": final["violation"],
            },
            **multipliers(interface.method, scipy_result),
            "time_s": time_s,
            "compile_s": round(state["compile_s"], 3),
            "xla": interface.xla,
            "tiers": interface.tiers,
            "strategy": plan.kind,
            "replicas": plan.replicas,
            **scale,
            **worker_fields(plan, place),
            "compile_cache": None if cache is None else str(cache),
            "solve_s": round(time_s - state["compile_s"], 3),
            "export": exported,
            **({"export_skipped": withheld_export(saved)} if withheld else {}),
        }
        return write_result(out, result, caught)

    where = f"writing the run after iteration {state['iteration']}"
    whole = "The checkpoint holds the last iterate: --resume (with a larger maxiter) goes on from it."
    advice = finish.after_failed_write(manager, state["iteration"], whole)
    # The checkpoint was saved (a worker's part of it too) or failed: only the result is written.
    result = finish.written_whole(write, lambda message: stopped("error", message, keep=False), where, advice)
    report(
        options.reporter,
        progress(
            result["nit"],
            float(scipy_result.fun),
            final["violation"],
            True,
            nfev=result["nfev"],
            elapsed=result["time_s"],
            final=True,
            converged=bool(scipy_result.success),
            message=str(scipy_result.message),
            status=status,
            mu=barrier(interface),
        ),
    )
    return RunOutcome(out, result, succeeded(status))

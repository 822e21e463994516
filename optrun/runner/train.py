"""``optrun train``: gradient training with a (wrapped) Keras optimizer."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from optrun.errors import ConfigError, LoadError, Problem, RunFailed, Terminated, describe, problems_in
from optrun.runner import finish
from optrun.runner.batches import Batches, build_on_first_batch, first_batch, steps_per_epoch
from optrun.runner.build import build_data, build_model, build_optimizer, train_loss, variables_of
from optrun.runner.checks import before_building
from optrun.runner.common import (
    AVERAGED,
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
)
from optrun.runner.distribute import DistributedStep, check_global_batch, distribute_data
from optrun.runner.finish import RESUME_WRITES_THE_REST, signals_moot, stopped_run_written, written_whole
from optrun.runner.interrupts import heard_code, held, interrupt_code, interrupts_at_checks
from optrun.runner.outcome import PRUNED, withheld_export, would_export
from optrun.runner.reporting import MetricsWriter, NonfiniteSkips, Progress, report
from optrun.runner.save_clock import SaveClock
from optrun.runner.step import single_device_step
from optrun.runner.train_record import final_loss_at, finished, loss_at, nothing_to_do, write_train_result
from optrun.runner.warning_log import WarningLog, captured_warnings
from optrun.runner.workers import claim_place, worker_fields
from optrun.scale.strategy import make_strategy, peer_failure
from optrun.spec.load import LoadedSpec


def run_train(loaded: LoadedSpec, options: RunOptions) -> RunOutcome:
    """Trains per ``loaded.spec``; writes the run directory; returns the outcome.

    Warnings raised meanwhile (Keras's, the user's) are captured, not printed:
    result.json lists each once with its count, and warnings.log in the run
    directory says where each came from.
    """
    # The run directory stays locked to the end; a spec's problem is placed as validate places it.
    with problems_in(loaded), captured_warnings() as caught, contextlib.ExitStack() as stack:
        return _train(loaded, options, stack, caught)


def _train(
    loaded: LoadedSpec, options: RunOptions, stack: contextlib.ExitStack, caught: WarningLog
) -> RunOutcome:
    spec = loaded.spec
    if spec.train is None:
        needed = "required by `optrun train` (optimizer, max_steps or epochs)"
        raise ConfigError(loaded.source, [Problem("train", needed)])
    plan = make_strategy(spec.strategy, loaded.source)  # first: logical CPUs precede TF's devices
    stack.enter_context(plan.scope())  # the model, optimizer and wrappers are built in it
    seed_everything(spec.seed)
    before_building(loaded, "train")  # each reference imports and takes the spec's arguments
    model = build_model(loaded)
    raw_data = build_data(loaded)  # a ConfigError if the spec has no data
    assert loaded.spec.data is not None
    batch, data = first_batch(raw_data, loaded.spec.data.builder)
    global_batch, source = check_global_batch(loaded, plan, batch, data)  # data: its static batch dim
    scale: dict[str, Any] = {"strategy": plan.kind, "replicas": plan.replicas, "global_batch": global_batch}
    scale.update({"global_batch_from": source} if source else {})
    build_on_first_batch(model, batch)
    variables = variables_of(model, spec.model.builder)
    loss_fn = train_loss(loaded)
    opt, averaging = build_optimizer(spec.train.optimizer, variables)
    opt.build(variables)  # wrapper names and dims were checked by build_optimizer
    check_export(model, spec.checkpoint.export, loaded.source)
    per_epoch = steps_per_epoch(data)
    epochs = spec.train.epochs
    total = spec.train.max_steps or (epochs * per_epoch if epochs and per_epoch else None)
    passes_shown = math.ceil(total / per_epoch) if total and per_epoch else None  # for the progress line

    rebuild: Callable[[], Any] = lambda: build_data(loaded)  # noqa: E731 - a one-shot iterator's next pass
    if plan.strategy is None:
        train_step = single_device_step(model, variables, loss_fn, opt)
        trace = train_step.get_concrete_function
    else:
        data = distribute_data(plan, data, loaded.spec.data.builder)
        train_step = DistributedStep(plan, model, variables, loss_fn, opt)
        # Traced on the distributed batches' spec: an iterator made here would use up a reshuffle.
        trace = lambda first: train_step.trace(data.element_spec)  # noqa: E731
    try:  # trace the step now: a data or loss mistake is a usage error, before any file is written
        trace(batch)
    except ConfigError:  # a loss that is not a scalar: at loss, as optrun validate says it
        raise
    except Exception as error:
        raise LoadError(
            f"the training step does not build on the first batch: {describe(error)}. "
            "Check loss (a scalar) and data.builder (a Keras loss takes (x, y) batches)."
        ) from error

    # Multi-worker: the chief writes the run directory, other workers a temporary one (removed).
    place = stack.enter_context(claim_place(loaded, options, "train", plan))
    out = place.out
    scale.update(worker_fields(plan, place))
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(step=step_var, model=model, optimizer=opt)
    manager = tf.train.CheckpointManager(checkpoint, str(out / CHECKPOINTS), max_to_keep=spec.checkpoint.keep)
    if options.resume:  # every worker restores the chief's checkpoint
        place.restore(checkpoint, manager, options.reporter.note)
        limit = "train.max_steps" if spec.train.max_steps else "train.epochs"
        done = int(step_var.numpy())
        resume_budget(done, total, place.run, "step", limit, finished_as="completed", end_left=True)
        before = previous_result(place.run)
        if finished(before, done) and total is not None and done >= total:
            options.reporter.start("train", total, done)  # before any writer: every file stays as it was
            nothing_to_do(options.reporter, spec.train.max_steps, done)
            return RunOutcome(place.run, before, True)
    if not options.resume:  # a resume records the spec it was called with at its first step
        record_config(out, "train", loaded)

    step = first_step = int(step_var.numpy())
    metrics = MetricsWriter(
        out / spec.logging.metrics_file,
        out / "tensorboard" if spec.logging.tensorboard else None,
        resume_from=step if options.resume else None,
    )
    # A resume that only writes the run's end reports the loss logged at its last step.
    last_loss = loss_at(metrics.resumed, step)
    if options.resume and math.isnan(last_loss):  # not logged there: said by the session that stopped
        last_loss = final_loss_at(previous_result(place.run), step)
    started, skipped, status = time.perf_counter(), 0, "completed"
    stopped: str | None = None  # why options.stop_check ended the run
    diverged: str | None = None  # why the run diverged: result.json's error
    skips = NonfiniteSkips(options.reporter)  # the first skip said, later ones counted
    options.reporter.start("train", total, step)

    saved_at = [-1]
    clock = SaveClock(spec.checkpoint.every_steps, spec.checkpoint.seconds, timed=plan.kind != "multi_worker")
    resumable = functools.partial(finish.after_failed_write, manager, whole=RESUME_WRITES_THE_REST)

    def save_all() -> None:
        if saved_at[0] == step:  # e.g. an interrupt right after a periodic checkpoint
            return
        with held():  # a checkpoint is never cut in half
            manager.save(checkpoint_number=step)
            if averaging is not None and averaging.has_averages and spec.checkpoint.swap:
                averaging.swapping_saver(model=model).write(str(out / AVERAGED / "ckpt"))
            saved_at[0] = step
            clock.saved()

    try:
        passes = None if spec.train.max_steps else spec.train.epochs
        batches = Batches(data, rebuild, skip=step, passes=passes)
        # Ctrl-C and SIGTERM stop the loop only at gate.check(), the top of a step (a second one also
        # while data is fetched), so a resume neither repeats nor skips a step (`skip` refetches).
        with interrupts_at_checks() as gate:
            for batch in batches:
                gate.check()
                if total is not None and step >= total:
                    break
                if options.resume and step == first_step:  # a finished run never gets here
                    record_config(out, "train", loaded)  # and an earlier session's result.json goes
                # Even a second signal waits for the step: its update, its count and metrics line land
                # together, or a checkpoint would pair one step's count with the next one's weights.
                with held():
                    loss, finite = train_step(batch)
                    last_loss, finite = float(loss), bool(finite)
                    # A non-finite step with `stop` is not counted: its update was not applied.
                    counted = finite or spec.train.on_nonfinite == "skip"
                    if counted:
                        step += 1
                        step_var.assign(step)
                        logged = step % spec.logging.every_steps == 0 or step == total
                        if logged:
                            metrics.write(step, loss=last_loss)
                if not counted:  # so a resume runs that batch again
                    status = "diverged"
                    diverged = f"non-finite loss or gradient at step {step + 1} (train.on_nonfinite: stop)"
                    options.reporter.note(f"non-finite loss or gradient at step {step + 1}: stopping")
                    break
                if not finite:
                    skipped += 1
                    skips.skipped(step, last_loss)
                report(
                    options.reporter,
                    Progress(
                        "train",
                        step,
                        total,
                        last_loss,
                        logged,
                        time.perf_counter() - started,
                        epoch=(step - 1) // per_epoch + 1 if per_epoch else None,
                        epochs=passes_shown,
                    ),
                )
                if logged:
                    skips.logged()
                if clock.due(step):
                    save_all()
                if logged and options.stop_check is not None:
                    stopped = options.stop_check(step, {"loss": last_loss})
                    if stopped:
                        status = PRUNED
                        break
    except (KeyboardInterrupt, Terminated) as interrupt:
        with stopped_run_written(f"writing the run stopped at step {step}", resumable(step)):
            skips.close()
            save_all()
            write_train_result(out, caught, scale, "interrupted", step, last_loss, skipped, started, None)
            metrics.close()
        raise Interrupted(interrupt_code(interrupt), place.run, plan) from None
    except BaseException as error:  # user code failed, exited or raised a BaseException: recorded, exit 1
        kept = f"The checkpoints in {place.run / CHECKPOINTS} are whole."
        peer = peer_failure(plan, error, kept)
        message = peer or failure(error, f"step {step + 1}")
        code = heard_code() if peer else None  # peers left on the signal this worker got too
        status, said = ("interrupted", None) if code else ("error", message)
        with signals_moot():
            # The steps done so far, for a resume once the cause is fixed (an error in a step comes
            # before its update). Multi-worker saves are collective: a failed peer would hang them.
            if plan.kind != "multi_worker":
                finish.best_effort(save_all)
            record = (out, caught, scale, status, step, last_loss, skipped, started, None, said)
            written = finish.best_effort(lambda: write_train_result(*record))
            finish.best_effort(metrics.close)  # lines the disk refused do not undo the record
        if code:
            raise Interrupted(code, place.run, plan) from None
        message = finish.with_disk_advice(message, error, manager, step)  # is the work safe?
        failed = finish.recorded_failure(message, out, written) if place.kept else RunFailed(message)
        raise failed from error
    skips.close()
    # A finished run over data of unknown length: known to be finished only once no batch is left.
    before = previous_result(place.run) if options.resume and step == first_step else None
    if finished(before, step):
        metrics.close()
        nothing_to_do(options.reporter, spec.train.max_steps, step)
        return RunOutcome(place.run, before, True)
    if options.resume and step == first_step:  # only the end is written: under this spec's budget
        record_config(out, "train", loaded)
    if status == "completed" and batches.exhausted and (total is None or step < total):
        if spec.train.on_data_end == "error":
            status = "data_exhausted"
        options.reporter.note(
            f"the data ran out after {step} steps"
            + (f" of {total}" if total else "")
            + ("" if status == "data_exhausted" else "; stopping there (train.on_data_end: stop)")
        )
    # Counted in this invocation, as skipped_nonfinite is (a --resume counts afresh).
    streak, ran = skips.streak_to(step), step - first_step
    if status == "completed" and streak and 2 * streak >= ran:  # the last half of the updates or more
        status = "diverged"  # the updates kept being non-finite: the weights stopped learning
        diverged = f"the last {streak} of {ran} updates were all non-finite and skipped"
        options.reporter.note(diverged)
    swap = averaging is not None and averaging.has_averages  # a run may end before any update
    context = averaging.averaged() if swap and averaging is not None else contextlib.nullcontext()
    # A diverged run exports nothing; its checkpoint holds the last finite weights.
    withheld = status == "diverged" and would_export(model, spec.checkpoint.export)

    def write() -> dict[str, Any]:
        save_all()
        with context:
            exported = None if withheld else export_model(model, spec.checkpoint.export, out)
        metrics.close()
        averaged = str(out / AVERAGED / "ckpt") if swap and spec.checkpoint.swap else None
        exported, averaged = place.as_kept(exported), place.as_kept(averaged)
        why = withheld_export(place.as_kept(manager.latest_checkpoint)) if withheld else None
        extra = {"averaged": averaged, "no_export": why, "message": stopped}
        return write_train_result(
            out, caught, scale, status, step, last_loss, skipped, started, exported, diverged, **extra
        )

    def record_error(message: str) -> None:
        metrics.close()
        write_train_result(out, caught, scale, "error", step, last_loss, skipped, started, None, message)

    result = written_whole(write, record_error, f"writing the run after step {step}", resumable(step))
    return RunOutcome(place.run, result, status == "completed")

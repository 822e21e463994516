"""The sweep's loop: ask the study for trials, run them ``--jobs`` at a time, tell it how each went.

* **Budget.** ``--trials N`` is the study's total, whichever process runs them: the count
  and the ask happen under a lock (:func:`optrun.sweep.sweepdir.ask_lock`) that every
  sweep process sharing the storage on this machine takes. ``--timeout`` stops asking
  after that many seconds of this process; running trials finish.
* **Trials.** Each runs in a worker process (:mod:`optrun.sweep.pool`) into its run
  directory ``trial-NNNN``. A completed run is told as its objective's value; a pruned
  one as pruned; any other outcome (a non-finite loss, user code raising, a bad value, a
  dead process) fails that trial with its message in the trial's ``message`` attribute,
  and the sweep goes on.
* **Interrupts.** Ctrl-C (or SIGTERM) stops asking; each busy worker gets the signal once,
  and its trial stops at a safe point with its checkpoint written. Such a trial stays
  RUNNING in the study with the attribute ``interrupted`` (``optrun runs`` says
  ``interrupted``), and ``--resume`` continues it in place from its checkpoint: no trial
  is lost or run twice. A second signal is forwarded too; a third kills the workers.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from optrun.errors import OptrunError, Terminated
from optrun.runner.interrupts import Gate, held, interrupt_code, interrupts_at_checks
from optrun.sweep import sweepdir
from optrun.sweep.check import checked_worker, discard
from optrun.sweep.objective import TrialRecord, objective_value, record_of
from optrun.sweep.plan import PRUNABLE, SweepPlan, threads_per_job
from optrun.sweep.pool import Pool, worker_env
from optrun.sweep.resume import orphans
from optrun.sweep.space import distributions, overrides
from optrun.sweep.study import is_url, make_sampler, open_storage, open_study, require_optuna, sampler_seed
from optrun.sweep.trial import TrialRequest

if TYPE_CHECKING:
    import optuna


class SweepInterrupted(OptrunError):
    """Ctrl-C (exit 130) or SIGTERM (143) stopped the sweep; its running trials are marked interrupted."""

    def __init__(self, exit_code: int, message: str, marked: str = "") -> None:
        self.exit_code = exit_code
        self.marked = marked  # "trials marked interrupted: ...", for a caller that words the rest
        super().__init__(message)


class SweepReporter(Protocol):
    """Receives the sweep's progress; the CLI prints it."""

    def start(self, plan: SweepPlan, existing: int, threads: int) -> None:
        """The sweep begins; the study already holds ``existing`` trials."""

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        """A trial ended (completed, pruned, failed or interrupted)."""

    def note(self, message: str) -> None:
        """Something the user should know."""


@dataclass
class SweepOutcome:
    """What a sweep did: the trials this process finished, and the study's state after them."""

    out: Path
    study: str
    storage: str
    finished: list[TrialRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    best: TrialRecord | None = None
    elapsed_s: float = 0.0


def run_sweep(plan: SweepPlan, reporter: SweepReporter) -> SweepOutcome:
    """Runs the sweep ``plan`` describes; returns what it did.

    Raises:
        SweepInterrupted: a signal stopped it (after its trials were checkpointed and marked).
        ConfigError: a value of the space the code refuses (:func:`optrun.sweep.check.checked_worker`).
        RunError: the sweep directory or the storage cannot be used.
        MissingDependencyError: Optuna (or the storage's driver, or cmaes) is not installed.
    """
    require_optuna()
    storage = plan.storage or str(plan.out / sweepdir.DEFAULT_STORAGE)  # the journal file by default
    pruner = plan.pruner_config()
    how = {"resume": plan.resume, "force": plan.force, "joining": plan.storage is not None}
    sweepdir.claim(plan.out, plan.marker(), write=False, **how)  # before a study is made anywhere
    if plan.storage is not None and is_url(plan.storage):
        open_storage(plan.storage)  # its driver and server, before the space is checked
    env = worker_env(threads_per_job(plan.jobs))
    checker = checked_worker(plan, env)  # its first worker, which found no problem in the space
    try:
        if plan.storage is not None:  # a server's or another file's study: open it before writing a folder
            open_study(storage, plan.study, plan.direction, pruner, create=True)
        sweepdir.claim(plan.out, plan.marker(), **how)
        study = open_study(storage, plan.study, plan.direction, pruner, create=True)
    except BaseException:
        discard(checker, wait=0.5)
        raise
    pool = Pool(plan.jobs, env, plan.out / sweepdir.LOGS, first=checker)
    try:
        with sweepdir.worker_lock(plan.out) as worker, interrupts_at_checks() as gate:
            return _Sweep(plan, study, storage, pruner, worker, reporter, gate, pool).run()
    finally:
        pool.close()


class _Sweep:
    def __init__(
        self,
        plan: SweepPlan,
        study: optuna.Study,
        storage: str,
        pruner: dict[str, Any],
        worker: str,
        reporter: SweepReporter,
        gate: Gate,
        pool: Pool,
    ) -> None:
        self.plan, self.study, self.storage, self.pruner = plan, study, storage, pruner
        self.worker, self.reporter, self.gate = worker, reporter, gate
        self.started = time.monotonic()
        self.trials: dict[int, optuna.Trial] = {}
        self.finished: list[TrialRecord] = []
        self.stopping: BaseException | None = None
        self.threads, self.pool = threads_per_job(plan.jobs), pool
        self.queue: list[TrialRequest] = []
        self.dists = distributions(list(plan.params))
        # Beside a journal file, so every sweep process sharing it on this machine takes one lock.
        local = plan.out / sweepdir.WORKERS / "ask.lock"
        self.ask_lock = local if is_url(storage) else Path(storage + ".ask-lock")

    def run(self) -> SweepOutcome:
        with held():
            self.reporter.start(self.plan, len(self.study.get_trials(deepcopy=False)), self.threads)
            for note in self.plan.notes:
                self.reporter.note(note)
            if self.plan.resume:
                self._take_over_orphans()
        while True:  # the pool is closed by run_sweep, whatever happens
            try:
                self._step()
            except (KeyboardInterrupt, Terminated) as interrupt:
                self._interrupt(interrupt)
            if not self.pool.busy() and (self.stopping is not None or not self._can_launch()):
                break
        if self.stopping is not None:
            raise SweepInterrupted(interrupt_code(self.stopping), *self._interrupted_message())
        outcome = self._outcome()
        self.gate.received.clear()  # a signal after the last check: the sweep is done, it is moot
        return outcome

    def _step(self) -> None:
        self.gate.check()  # a first signal surfaces here, between two steps, never inside a write
        with held():
            while self.stopping is None and self.pool.has_room() and self._launch():
                pass
        ready = self.pool.select(0.2)
        with held():
            for request, answer in self.pool.collect(ready, self.stopping is not None):
                self._finish(request, answer)

    def _interrupt(self, interrupt: BaseException) -> None:
        if self.stopping is None:
            self.stopping = interrupt
            busy = len(self.pool.busy())
            self.reporter.note(f"interrupted: stopping {busy} running trial(s) at their next safe point")
        self.pool.signal_busy(15 if isinstance(interrupt, Terminated) else 2)

    def _can_launch(self) -> bool:
        if self.queue:
            return True
        if self.plan.timeout_s is not None and time.monotonic() - self.started >= self.plan.timeout_s:
            return False
        budget = self.plan.budget
        return budget is None or len(self.study.get_trials(deepcopy=False)) < budget

    def _launch(self) -> bool:
        request = self.queue.pop(0) if self.queue else self._ask()
        if request is None:
            return False
        self.pool.submit(request)
        return True

    def _ask(self) -> TrialRequest | None:
        if self.plan.timeout_s is not None and time.monotonic() - self.started >= self.plan.timeout_s:
            return None
        with sweepdir.ask_lock(self.ask_lock):
            count = len(self.study.get_trials(deepcopy=False))
            if self.plan.budget is not None and count >= self.plan.budget:
                return None
            self.study.sampler = make_sampler(
                self.plan.sampler,
                sampler_seed(self.plan.sampler, self.plan.seed, count),
                list(self.plan.params),
            )
            trial = self.study.ask(self.dists)
            out = sweepdir.trial_dir(self.plan.out, trial.number).resolve()
            trial.set_user_attr("run_dir", str(out))
            trial.set_user_attr("worker", self.worker)
        self.trials[trial.number] = trial
        return self._request(trial, out, dict(trial.params))

    def _request(self, trial: optuna.Trial, out: Path, params: dict[str, Any], **how: bool) -> TrialRequest:
        prune = None
        if self.plan.kind == "train" and self.plan.objective in PRUNABLE:
            prune = {
                "storage": self.storage,
                "study": self.plan.study,
                "trial_id": trial._trial_id,
                "number": trial.number,
                "pruner": self.pruner,
                "metric": "loss",
            }
        return TrialRequest(
            number=trial.number,
            kind=self.plan.kind,
            spec=str(self.plan.spec),
            overrides=[*self.plan.overrides, *overrides(params)],
            out=str(out),
            prune=prune,
            fresh=self.plan.fresh_processes,
            log=str(sweepdir.log_file(self.plan.out, trial.number)),
            **how,
        )

    def _take_over_orphans(self) -> None:
        """Trials this sweep directory's stopped sweeps left RUNNING (see :mod:`optrun.sweep.resume`)."""
        import optuna

        for orphan in orphans(self.study, self.plan.out, self.reporter.note, self.plan.storage is None):
            frozen = orphan.frozen
            trial = optuna.Trial(self.study, frozen._trial_id)
            self.trials[frozen.number] = trial
            trial.set_user_attr("run_dir", str(orphan.out))  # where it is now, if the folder moved
            trial.set_user_attr("worker", self.worker)
            trial.set_user_attr("resumed", int(frozen.user_attrs.get("resumed", 0)) + 1)
            how = {"resume": orphan.resume, "force": orphan.force}
            request = self._request(trial, orphan.out, dict(frozen.params), **how)
            if orphan.result is None:
                self.queue.append(request)
            else:
                self._finish(request, orphan.answer())
        if self.queue:
            self.reporter.note(f"resuming {len(self.queue)} interrupted trial(s) in place")

    def _finish(self, request: TrialRequest, answer: dict[str, Any]) -> None:
        import optuna

        State = optuna.trial.TrialState
        trial = self.trials.pop(request.number)
        status, message = answer.get("status"), answer.get("message")
        trial.set_user_attr("status", status)
        if status == "interrupted":
            trial.set_user_attr("interrupted", message or "interrupted")
            self._report(request.number)
            return
        state, value = State.FAIL, None
        if answer.get("success"):
            value = objective_value(answer.get("result"), Path(request.out), self.plan.objective)
            if value is None or not math.isfinite(value):
                message = f"the objective {self.plan.objective} is {value} for this trial"
            else:
                state = State.COMPLETE
        elif status == "pruned":
            state = State.PRUNED
        if message:
            trial.set_user_attr("message", message)
        # Grid's after_trial would stop a loop we do not run.
        self.study.sampler = optuna.samplers.RandomSampler()
        self.study.tell(trial, value if state == State.COMPLETE else None, state=state)
        self._report(request.number)

    def _report(self, number: int) -> None:
        record = record_of(self.study.get_trials(deepcopy=False)[number])
        self.finished.append(record)
        self.reporter.trial_finished(record, self._best())

    def _best(self) -> TrialRecord | None:
        try:
            return record_of(self.study.best_trial)
        except ValueError:
            return None

    def _interrupted_message(self) -> tuple[str, str]:
        marked = [r for r in self.finished if r.state == "interrupted"]
        names = ", ".join(f"trial-{r.number:04d}" for r in marked) or "none was running"
        what = f"trials marked interrupted: {names}"
        again = f"Continue the sweep with the same spec and flags, adding --resume --out {self.plan.out}"
        return f"interrupted; {what}. {again}", what

    def _outcome(self) -> SweepOutcome:
        counts = dict(Counter(record_of(t).state for t in self.study.get_trials(deepcopy=False)))
        elapsed, p = round(time.monotonic() - self.started, 3), self.plan
        return SweepOutcome(p.out, p.study, self.storage, self.finished, counts, self._best(), elapsed)

"""``--resume``: finding the trials a stopped sweep left behind, and how to take each up again.

A trial of this sweep directory that the study still has RUNNING, whose sweep process no
longer holds its worker lock (:mod:`optrun.sweep.sweepdir`), is an orphan: Ctrl-C or
SIGTERM interrupted it (it is marked ``interrupted``), or its sweep was killed. Each is
taken up again as the same trial, in its own run directory:

* it finished before its sweep could tell the study (its result.json says so): told from it;
* it has a checkpoint: continued from it (``--resume`` of the run, so no step is repeated);
* it has a run directory but no checkpoint yet: started afresh in it (``--force``);
* it has no run directory (it never started): started.

Trials of other folders or machines are left to their own ``--resume``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optrun.runner.common import previous_result
from optrun.runner.rundir import is_locked
from optrun.sweep.sweepdir import own_trial_dir, worker_alive

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


@dataclass
class Orphan:
    """A trial to take up again: ``result`` when it had finished, else how to run it again."""

    frozen: FrozenTrial
    out: Path
    result: dict[str, Any] | None
    resume: bool
    force: bool

    def answer(self) -> dict[str, Any]:
        """A trial that had finished, as a worker would have answered for it (from its result.json)."""
        result = self.result or {}
        said = result.get("message") or result.get("error")
        return {
            "status": result.get("status"),
            "success": bool(result.get("success")),
            "result": result,
            "message": said,
        }


def orphans(study: optuna.Study, sweep: Path, note: Callable[[str], None], own_storage: bool) -> list[Orphan]:
    """The orphaned trials of the sweep directory ``sweep``, in trial order, each with its run
    directory where it is now (``own_storage``: the study is the folder's own journal; see
    :func:`optrun.sweep.sweepdir.own_trial_dir`)."""
    import optuna

    found = []
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        out = own_trial_dir(sweep, frozen.user_attrs.get("run_dir"), own_storage)
        if out is None:
            continue  # another machine's or folder's trial
        if worker_alive(sweep, frozen.user_attrs.get("worker")):
            continue
        if out.is_dir() and is_locked(out):
            note(f"{out.name} is still running in another process; resume again when it ends")
            continue
        result = previous_result(out)
        if result is not None and result.get("status") == "interrupted":
            result = None
        resume = result is None and (out / "checkpoints" / "checkpoint").is_file()
        found.append(
            Orphan(frozen, out, result, resume, force=result is None and out.exists() and not resume)
        )
    return found

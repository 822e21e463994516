"""Pruning from inside a training trial: its losses reported to the study as the run logs them.

The worker process running the trial opens the sweep's storage itself (a journal file,
or a database, takes several processes) and, at each logged step, reports the loss as
the trial's intermediate value and asks the study's pruner whether to stop. The
runner's generic hook (``RunOptions.stop_check``) ends the run there cleanly: the
checkpoint and metrics are written, and result.json says ``"status": "pruned"`` with
the pruner's reason as its ``message``. The sweep then tells the study the trial was
pruned.

The pruner decides from the trials completed so far, so with ``--jobs 1`` a sweep
prunes the same trials at the same steps every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

StopCheck = Callable[[int, dict[str, float]], str | None]
_storages: dict[str, Any] = {}  # one storage per worker process, reused by its trials


def stop_check(prune: dict[str, Any]) -> StopCheck:
    """The hook that reports ``prune["metric"]`` at each logged step and says when to stop.

    Args:
        prune: ``storage`` (URL or journal path), ``study`` (name), ``trial_id``,
            ``number`` (the trial's), ``pruner`` (see :func:`optrun.sweep.study.make_pruner`) and
            ``metric`` (the logged metric to report, ``loss``).
    """
    import optuna

    from optrun.sweep.study import make_pruner, open_storage

    where = prune["storage"]
    if where not in _storages:
        _storages[where] = open_storage(where)
    study = optuna.load_study(
        study_name=prune["study"],
        storage=_storages[where],
        pruner=make_pruner(prune.get("pruner")),
        sampler=optuna.samplers.RandomSampler(),
    )
    trial = optuna.Trial(study, int(prune["trial_id"]))
    metric = str(prune.get("metric") or "loss")
    kind = (prune.get("pruner") or {}).get("kind", "none")
    number = int(prune["number"])
    before = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    reported: set[int] = set(before[0].intermediate_values) if before else set()

    def check(step: int, metrics: dict[str, float]) -> str | None:
        value = metrics.get(metric)
        if value is None or not math.isfinite(value) or step in reported:
            return None  # a resumed trial does not report a step twice
        trial.report(float(value), step)
        reported.add(step)
        if kind == "none" or not trial.should_prune():
            return None
        return (
            f"pruned at step {step} by the sweep's {kind} pruner: {metric} {value:.6g} was not promising "
            "against the trials completed before it"
        )

    return check

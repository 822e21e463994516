"""Reading a sweep back: its trials ranked by the objective, the best, importances, the score by trial.

For ``optrun runs SWEEP`` and ``optrun show SWEEP``. The trials come from the study in
the sweep's storage (so trials that other machines ran for the same study are there
too); each trial's own run directory is an ordinary run that ``optrun show`` reads.
Nothing is written, and TensorFlow is not imported.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optrun.errors import RunError
from optrun.sweep.objective import TrialRecord, ranked, record_of
from optrun.sweep.study import is_url, open_study, shown
from optrun.sweep.sweepdir import own_journal, own_trial_dir, read_sweep_marker, storage_of, worker_alive

if TYPE_CHECKING:
    import optuna


def _study(out: Path, marker: dict[str, Any]) -> optuna.Study:
    storage = storage_of(out, marker)
    # A sqlite URL names a file too: reading must not create it (show and runs only read).
    file = storage.removeprefix("sqlite:///") if storage.startswith("sqlite:///") else storage
    if (not is_url(storage) or storage.startswith("sqlite:///")) and not Path(file).is_file():
        raise RunError(f"{out}: the sweep's storage {storage} is missing; the sweep never started a trial.")
    return open_study(storage, str(marker["study"]), None, None, create=False)


def importances(study: optuna.Study) -> tuple[dict[str, float] | None, str | None]:
    """How much each parameter mattered to the score (Optuna's PED-ANOVA, no extra package), or
    None and why not (it needs a few completed trials whose scores differ)."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3 or len({t.value for t in complete}) < 2:
        return None, "parameter importances need 3 or more completed trials with different scores"
    quantile = max(0.1, 2.0 / len(complete))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(target_quantile=min(quantile, 0.5))
            )
    except Exception as error:  # noqa: BLE001 - whatever the evaluator refuses, the rest is shown
        return None, f"parameter importances could not be computed: {str(error).splitlines()[0]}"
    return {name: round(float(value), 4) for name, value in found.items()}, None


def _orphan_said(out: Path, frozen: Any, record: TrialRecord, own_storage: bool) -> TrialRecord:
    """The record with its run directory where it is now; a trial of this folder left running by a
    sweep process that is gone reads as interrupted."""
    here = own_trial_dir(out, record.run_dir, own_storage)
    if here is not None:
        record.run_dir = str(here)
    if record.state != "running" or here is None:
        return record
    if worker_alive(out, frozen.user_attrs.get("worker")):
        return record
    record.state = "interrupted"
    record.message = "its sweep process ended without finishing it; --resume continues it"
    return record


def read_sweep(out: Path, with_importances: bool = False) -> dict[str, Any]:
    """Everything ``optrun show`` and ``optrun runs`` say of a sweep, as plain data.

    Returns:
        ``{"sweep_dir", "study", "storage", "spec", "kind", "objective", "direction",
        "params", "counts", "best", "trials", "series"}`` (and ``"importances"`` with
        ``"importances_note"`` when asked): ``trials`` ranked best first (see
        :func:`optrun.sweep.objective.ranked`), each with its ``rank``; ``series`` the
        completed trials' ``number``, ``value`` and the ``best`` so far, in trial order.

    Raises:
        RunError: ``out`` is not a sweep directory, or its storage cannot be read.
        MissingDependencyError: Optuna is not installed.
    """
    marker = read_sweep_marker(out)
    study = _study(out, marker)
    direction = str(marker.get("direction") or study.direction.name.lower())
    own = own_journal(marker)
    records = [_orphan_said(out, t, record_of(t), own) for t in study.get_trials(deepcopy=False)]
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    order = ranked(records, direction)
    trials = [{"rank": i + 1, **record.data()} for i, record in enumerate(order)]
    best = next((record.data() for record in order if record.state == "complete"), None)
    numbers: list[int] = []
    values: list[float] = []
    best_so_far: list[float] = []
    better = max if direction == "maximize" else min
    for record in records:
        if record.state == "complete" and record.value is not None and math.isfinite(record.value):
            numbers.append(record.number)
            values.append(record.value)
            best_so_far.append(better(best_so_far[-1], record.value) if best_so_far else record.value)
    data: dict[str, Any] = {
        "sweep_dir": str(out),
        "study": marker["study"],
        "storage": shown(storage_of(out, marker)),
        "spec": marker.get("spec"),
        "kind": marker.get("kind"),
        "objective": marker.get("objective"),
        "direction": direction,
        "params": marker.get("params") or [],
        "counts": counts,
        "best": best,
        "trials": trials,
        "series": {"number": numbers, "value": values, "best": best_so_far},
    }
    if with_importances:
        data["importances"], data["importances_note"] = importances(study)
    return data

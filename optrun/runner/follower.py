"""``optrun minimize`` on a worker that is not the chief: it evaluates where the chief's scipy asks.

The worker writes nothing that is kept (see :mod:`optrun.runner.workers`):
it takes part in the chief's evaluations, then in its checkpoint save and
export (each may be collective), into its own temporary directory.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from optrun.errors import RunFailed, Terminated
from optrun.runner.common import Interrupted, RunOutcome, export_model, write_result
from optrun.runner.interrupts import interrupt_code
from optrun.runner.warning_log import WarningLog
from optrun.runner.workers import Place, worker_fields
from optrun.scale.multi_worker import Channel
from optrun.scale.strategy import PEER_FAILURES, Plan, peer_failure


def follow(
    channel: Channel, model: Any, manager: Any, place: Place, plan: Plan, export: str, caught: WarningLog
) -> RunOutcome:
    """Serves the chief's evaluations; then saves and exports when the chief does.

    Returns:
        The outcome: successful when the chief's minimize was; its result names the
        run directory the chief writes, and the point this worker last evaluated.

    Raises:
        Interrupted: SIGINT or SIGTERM here; the message points at the chief's run directory.
        RunFailed: another worker died or stopped answering.
    """
    started = time.perf_counter()
    try:
        served, then = channel.follow()
    except (KeyboardInterrupt, Terminated) as interrupt:  # mid-run: not "before the run started"
        raise Interrupted(interrupt_code(interrupt), place.run, plan) from None
    except PEER_FAILURES as error:
        message = peer_failure(plan, error, "The chief keeps the run's checkpoints.")
        raise RunFailed(message or str(error)) from error
    if then.save:
        manager.save(checkpoint_number=0)
    if then.export:
        export_model(model, export, place.out)
    result = {
        "kind": "minimize",
        "status": "followed",
        "success": then.success,
        "evaluations": served,
        "solution": {
            k: np.asarray(v.numpy()).tolist()
            for k, v in zip(channel.interface.layout.keys, channel.interface.var_list, strict=True)
        },
        "time_s": round(time.perf_counter() - started, 3),
        "strategy": plan.kind,
        "replicas": plan.replicas,
        **worker_fields(plan, place),
    }
    return RunOutcome(place.run, write_result(place.out, result, caught), then.success)

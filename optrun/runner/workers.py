"""Where each worker of a multi-worker run writes: the chief the run directory, the others nothing.

TensorFlow's multi-worker checkpointing guidance: every worker takes part in
a save (it reads the mirrored variables collectively), but only the chief's
files are kept. The other workers save to a temporary directory of their own,
removed when the run ends, however it ends. On ``--resume`` every worker
restores from the chief's run directory, so that directory must be on a
filesystem all workers see (a shared or network disk), as TensorFlow assumes.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optrun.errors import RunError
from optrun.runner.common import CHECKPOINTS, RunOptions, run_dir, run_directory
from optrun.runner.restore import restore_latest, set_aside_unreadable_state
from optrun.scale.strategy import Plan
from optrun.spec.load import LoadedSpec


@dataclass(frozen=True)
class Place:
    """Where this process writes (``out``) and where the run's kept files are (``run``).

    For one process and for the chief the two are the same directory.
    """

    out: Path
    run: Path

    @property
    def kept(self) -> bool:
        """Whether what this process writes is kept (it is the chief, or the only process)."""
        return self.out == self.run

    def as_kept(self, path: str | None) -> str | None:
        """A path this process wrote, named where the chief keeps its copy."""
        if path is None or self.kept:
            return path
        return str(self.run / Path(path).relative_to(self.out))

    def restore(self, checkpoint: Any, manager: Any, say: Callable[[str], None]) -> str:
        """--resume: restores the chief's newest checkpoint that reads, for every worker."""
        if not self.kept:
            import tensorflow as tf

            manager = tf.train.CheckpointManager(checkpoint, str(self.run / CHECKPOINTS), max_to_keep=1)
        return restore_latest(checkpoint, manager, self.run, say)


@contextlib.contextmanager
def claim_place(loaded: LoadedSpec, options: RunOptions, kind: str, plan: Plan) -> Iterator[Place]:
    """The run directory, claimed and locked, for the chief (or a single process); a temporary
    directory, removed at the end, for any other worker.

    Raises:
        RunError: see :func:`~optrun.runner.common.run_directory`; and, for a worker
            resuming, the chief's run directory has no checkpoints it can see.
    """
    run = run_dir(loaded, options)
    if plan.is_chief:
        with run_directory(run, kind, loaded, options):
            if options.resume:
                set_aside_unreadable_state(run, options.reporter.note)
            yield Place(run, run)
        return
    if options.resume and not (run / CHECKPOINTS).is_dir():
        raise RunError(
            f"--resume on {plan.task}: the chief's run directory {run} has no checkpoints visible "
            "here; every worker restores from the chief's checkpoints, so --out must be on a "
            "filesystem all workers share, and name the same directory on each."
        )
    scratch = Path(tempfile.mkdtemp(prefix=f"optrun-{plan.task.replace(':', '')}-"))
    try:
        yield Place(scratch, run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def worker_fields(plan: Plan, place: Place) -> dict[str, Any]:
    """What result.json says of the process: for multi_worker, its task and whether it is the chief."""
    if plan.kind != "multi_worker":
        return {}
    return {"task": plan.task, "chief": plan.is_chief, **({} if place.kept else {"run_dir": str(place.run)})}

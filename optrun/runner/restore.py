"""Which checkpoint a ``--resume`` restores: the newest one that reads.

A kill or a full disk can leave the newest checkpoint damaged (a data file
cut short or gone, a garbled ``checkpoint`` state file) while older ones are
whole. ``--resume`` then goes back to the newest checkpoint that reads, says
which it skipped, and the run continues from there. A checkpoint that reads
but does not fit the model is a different spec, not damage: that stops.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optrun.errors import RunError, first_line
from optrun.runner.common import CHECKPOINTS
from optrun.runner.resumable import nothing_to_resume


def checkpoint_number(path: str) -> int:
    """The number a checkpoint's path ends in (``.../ckpt-40`` -> 40); -1 for none."""
    found = re.search(r"-(\d+)$", str(path))
    return int(found.group(1)) if found else -1


def _on_disk(out: Path) -> list[str]:
    """The checkpoints in ``out``, found by their index files (the state file may be the damaged part)."""
    return [str(p.with_suffix("")) for p in (out / CHECKPOINTS).glob("ckpt-*.index")]


def set_aside_unreadable_state(out: Path, say: Callable[[str], None]) -> None:
    """Moves a ``checkpoint`` state file TensorFlow cannot read (empty, or garbled) to
    ``checkpoint.damaged``: TF's CheckpointManager would refuse to start on it, and the
    checkpoints themselves are found by their files."""
    import tensorflow as tf

    state = out / CHECKPOINTS / "checkpoint"
    if not state.is_file():
        return
    try:
        readable = tf.train.get_checkpoint_state(str(state.parent)) is not None
    except Exception:  # noqa: BLE001 - TF says it in several ways
        readable = False
    if not readable:
        state.replace(state.with_name("checkpoint.damaged"))
        say(f"{state} could not be read; set it aside as checkpoint.damaged")


def restore_latest(checkpoint: Any, manager: Any, out: Path, say: Callable[[str], None]) -> str:
    """Restores the newest checkpoint that reads, for --resume; returns its path.

    Args:
        checkpoint: the ``tf.train.Checkpoint`` to restore into.
        manager: its ``tf.train.CheckpointManager``.
        out: the run directory.
        say: told which damaged checkpoints were skipped, if any.

    Raises:
        RunError: no checkpoint; none that reads; or one that reads but does not fit the model.
    """
    # Newest first, whether the state file lists it or a kill came before the state was updated.
    paths = sorted({*manager.checkpoints, *_on_disk(out)}, key=checkpoint_number, reverse=True)
    if not paths:
        raise nothing_to_resume(out)
    damaged: list[str] = []
    for path in paths:
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError) as error:  # it reads, but holds another model
            raise RunError(
                f"--resume: the checkpoint in {out} does not fit this model: {first_line(error)}"
            ) from None
        except Exception as error:  # noqa: BLE001 - a file cut short or gone (TF says so in many ways)
            damaged.append(f"{Path(path).name} ({first_line(error)})")
            continue
        if damaged:
            say(f"skipped damaged checkpoint(s) {', '.join(damaged)}; resuming from {Path(path).name}")
        return str(path)
    raise RunError(
        f"--resume: every checkpoint in {out} is damaged: {'; '.join(damaged)}. "
        "Start the run again with --force."
    )

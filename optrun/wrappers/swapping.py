"""Swapped checkpoints: averaged weights written under the variables' own names.

``SwappingSaver.save`` swaps every averaged variable with its average, writes
a ``tf.train.Checkpoint`` and swaps back (in ``finally``: the live variables
hold their raw values again even if the write fails). So in the file the
model's variables hold the averages, and the optimizer's average slots hold
the raw values. Consequences:

* a plain ``tf.train.Checkpoint(model=model).restore(path)`` loads averaged
  weights: evaluation code needs no change;
* ``SwappingSaver.restore`` restores, then swaps back: save-then-restore is
  the identity, for raw values and averages alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from optrun.errors import InvalidArgumentError
from optrun.varkeys import as_tf_variable

if TYPE_CHECKING:
    from optrun.wrappers.moving_average import MovingAverageOptimizer

#: Name under which the saver adds the averaging optimizer when the caller did not.
AVERAGES_KEY = "moving_average_optimizer"
#: Name of the full-precision copies of averages whose variables have a narrower dtype.
SHADOWS_KEY = "moving_average_shadows"


class SwappingSaver:
    """Saves and restores ``tf.train.Checkpoint(**objects)`` with averages swapped in.

    The averaging optimizer is always part of the checkpoint (added under
    ``"moving_average_optimizer"`` when no object given is that optimizer),
    so that the raw values can be brought back.
    """

    def __init__(self, optimizer: MovingAverageOptimizer, objects: dict[str, Any]) -> None:
        if (AVERAGES_KEY in objects and objects[AVERAGES_KEY] is not optimizer) or SHADOWS_KEY in objects:
            raise InvalidArgumentError(
                f"swapping_saver reserves the keywords {AVERAGES_KEY!r} and {SHADOWS_KEY!r}; "
                "rename that object."
            )
        objects = dict(objects)
        if not any(obj is optimizer for obj in objects.values()):
            objects[AVERAGES_KEY] = optimizer
        self._optimizer = optimizer
        # A float32 average swapped into a float16 variable loses bits; these copies keep
        # them, so restore() is exact in every dtype. One per variable the optimizer was built
        # for, in its order: a new process, built but not yet stepped, lines them up the same.
        self._shadows = tf.Module(name="moving_average_shadows")
        self._shadows.pairs = [
            (avg, tf.Variable(tf.zeros(avg.shape, avg.dtype), trainable=False))
            for var, avg in optimizer.average_pairs(built=True)
            if as_tf_variable(var).dtype != avg.dtype
        ]
        if self._shadows.pairs:
            objects[SHADOWS_KEY] = self._shadows
        self.checkpoint = tf.train.Checkpoint(**objects)

    def save(self, file_prefix: str) -> str:
        """Writes the swapped checkpoint; returns its path (``prefix-N``, counted)."""
        return self._swapped(self.checkpoint.save, file_prefix)

    def write(self, file_prefix: str) -> str:
        """Like :meth:`save`, at exactly ``file_prefix`` (no counter)."""
        return self._swapped(self.checkpoint.write, file_prefix)

    def _swapped(self, writer: Callable[[str], Any], file_prefix: str) -> str:
        self._optimizer.require_averages("saving")  # before a step, the averages hold nothing yet
        for avg, shadow in self._shadows.pairs:
            shadow.assign(avg)
        self._optimizer.swap()
        try:
            return str(writer(file_prefix))
        finally:
            self._optimizer.swap()  # raw values are live again, even if the write failed
            for avg, shadow in self._shadows.pairs:  # and the averages exact: the swap rounded them
                avg.assign(shadow)

    def restore(self, save_path: str) -> Any:
        """Restores a checkpoint written by :meth:`save`, raw values and averages exactly."""
        status = self.checkpoint.restore(save_path)
        status.assert_existing_objects_matched()
        self._optimizer.swap()
        for avg, shadow in self._shadows.pairs:
            avg.assign(shadow)
        return status

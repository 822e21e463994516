"""Full-batch minimize across workers: the optimizer on the chief, each evaluation on every worker.

Under ``tf.distribute.MultiWorkerMirroredStrategy`` an evaluation of a
full-batch loss (:func:`optrun.dataset_loss`) is collective: each worker runs
its share of the batches and the sums are all-reduced. The external optimizer
(scipy) runs on the chief only. Before each evaluation the chief broadcasts
``[command, x]``: one all-reduce of a float64 vector to which the other
workers add zeros, so (``x + 0 = x`` exactly) every worker evaluates
bit-for-bit the same ``x``. Per evaluation, only ``x`` and the sums of the
loss, gradient and constraints cross between processes.

Commands: 1 evaluate with gradients, 2 without (gradient-free methods), 0 the
chief is done; a stop carries what the chief does next (save a checkpoint,
export), so that every worker takes part in the same collective operations.

Collectives must be created in the same order on every worker, so a
:class:`Channel` is made on every worker at the same point, right after the
interface, and traces its broadcast at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError
from optrun.evaluation.point import Evaluator
from optrun.interfaces.external import ExternalOptimizerInterface
from optrun.scale.strategy import PEER_FAILURES

STOP, WITH_GRADIENTS, WITHOUT_GRADIENTS = 0.0, 1.0, 2.0


@dataclass(frozen=True)
class Stop:
    """What the chief does after its last evaluation, so the other workers do it too."""

    save: bool = False
    export: bool = False
    success: bool = False


class _Leading:
    """The chief's backend: tells the other workers each ``x`` before evaluating it."""

    def __init__(self, inner: Any, send: Any) -> None:
        self._inner = inner
        self._send = send

    def __getattr__(self, name: str) -> Any:  # read, assign, bound, xla: local to the chief
        return getattr(self._inner, name)

    def evaluator(self, fetches: Any = (), gradients: bool = True) -> Evaluator:
        if tuple(fetches):
            raise InvalidArgumentError(
                "fetches are not supported across workers (only x, the loss, gradient and "
                "constraints cross between processes); call minimize() without fetches."
            )
        command = WITH_GRADIENTS if gradients else WITHOUT_GRADIENTS

        def evaluate(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            self._send(np.concatenate([[command], np.asarray(x, np.float64)]))
            # Looked up (and, the first time, traced) only after the broadcast, as the other
            # workers do: tracing takes collective instance keys, which must match across workers.
            return self._inner.evaluator((), gradients)(x)

        return evaluate


class Channel:
    """The chief's evaluations, shared with the other workers.

    Args:
        interface: an interface whose loss (and constraints) run under ``strategy``;
            made the same way on every worker.
        strategy: the ``MultiWorkerMirroredStrategy`` whose scope made the variables.
    """

    def __init__(self, interface: ExternalOptimizerInterface, strategy: tf.distribute.Strategy) -> None:
        self._interface = interface
        self._size = interface.layout.size + 1

        local = len(strategy.extended.worker_devices)  # replicas in this process

        def share(payload: tf.Tensor) -> tf.Tensor:
            # One replica per process adds its payload (x on the chief, zeros elsewhere); the
            # other local replicas add zeros, wherever the cluster's replica 0 happens to be.
            context = tf.distribute.get_replica_context()
            assert context is not None
            first = tf.equal(context.replica_id_in_sync_group % local, 0)
            mine = tf.where(first, payload, tf.zeros_like(payload))
            return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

        def broadcast(payload: tf.Tensor) -> tf.Tensor:
            return strategy.experimental_local_results(strategy.run(share, args=(payload,)))[0]

        # At least 4 slots: a stop carries [0, save, export, success] even for one variable.
        spec = tf.TensorSpec([max(self._size, 4)], tf.float64)
        self._broadcast = tf.function(broadcast, input_signature=[spec], autograph=False)
        self._broadcast.get_concrete_function()  # traced now: the same collective order everywhere
        self._stopped = False

    @property
    def interface(self) -> ExternalOptimizerInterface:
        """The interface whose evaluations are shared."""
        return self._interface

    def _send(self, payload: np.ndarray) -> np.ndarray:
        padded = np.zeros(max(self._size, 4))
        padded[: payload.size] = payload
        return np.asarray(self._broadcast(tf.constant(padded)))

    @contextlib.contextmanager
    def leading(self) -> Iterator[None]:
        """On the chief: every evaluation of the interface in the block is shared.

        The block ends with a plain stop, unless :meth:`stop` was called in it; after a
        failed collective (a worker gone) nothing more is sent.
        """
        interface = self._interface
        inner = interface._backend
        interface._backend = _Leading(inner, self._send)  # type: ignore[assignment]
        try:
            yield
        except PEER_FAILURES:
            self._stopped = True
            raise
        finally:
            interface._backend = inner
            if not self._stopped:
                self.stop(Stop())

    def stop(self, then: Stop) -> None:
        """On the chief: ends the other workers' :meth:`follow` (once); they then do ``then``."""
        if self._stopped:
            return
        self._stopped = True
        # After a failed collective the other workers are gone or failing: the caller reports it.
        with contextlib.suppress(*PEER_FAILURES):
            self._send(np.array([STOP, then.save, then.export, then.success], np.float64))

    def follow(self) -> tuple[int, Stop]:
        """On every other worker: evaluates where the chief does, until it stops.

        Returns:
            How many evaluations were shared, and what the chief does next.
        """
        backend = self._interface._backend
        zeros = np.zeros(self._size)
        served = 0
        while True:
            payload = self._send(zeros)
            command = payload[0]
            if command == STOP:
                return served, Stop(*(bool(v) for v in payload[1:4]))
            backend.evaluator((), gradients=command == WITH_GRADIENTS)(payload[1 : self._size])
            served += 1

"""Stopping a run on SIGINT or SIGTERM only where stopping is safe: between steps, never inside TensorFlow.

Python runs a signal's handler between two bytecodes of the main thread, so by
default Ctrl-C raises ``KeyboardInterrupt`` wherever the loop happens to be,
including inside TensorFlow's own Python code (a dataset iterator's ``next``, an
eager op's bookkeeping) with its native state half-updated. Under the slow
suite's repeated signals, about one SIGTERM in fourteen sent to a training run
aborted the process in the C heap (``free(): invalid next size``) instead of
checkpointing. So while a run's loop is inside :func:`interrupts_at_checks`:

* a first SIGINT or SIGTERM is only recorded; the loop calls :meth:`Gate.check`
  at its safe points (the top of each step, each solver iteration), which raises
  ``KeyboardInterrupt`` (SIGINT) or :class:`~optrun.errors.Terminated`
  (SIGTERM), and the run checkpoints and exits 130 or 143 as before;
* a second signal stops at once (the user insists, e.g. a step that never ends),
  unless the run is inside :func:`held`, such as a checkpoint being written,
  which is never cut in half;
* a signal recorded after the last check is raised when the block ends.

Outside the main thread (where Python never delivers signals) all of this does
nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from optrun.errors import Terminated

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_open: list[Gate] = []
_stopped: list[int] = []  # the signals that stopped a run of this process, in order
_heard: list[int] = []  # the signals received since the outermost block opened, raised or not
_loops: list[None] = []  # one per run loop started (see loops_started)
_deferred: list[int] = []  # signals a caller put off (see defer)


def stopping() -> bool:
    """Whether a signal has stopped a run of this process (a :meth:`Gate.check` raised)."""
    return bool(_stopped)


def defer(signum: int | None) -> None:
    """Puts ``signum`` off to the next :func:`raise_deferred` or the next block's first check
    (None: forgets those put off). For a signal that came while an earlier one's exception may
    still be unwinding, or may have been swallowed by the code it came in."""
    if signum is None:
        _deferred.clear()
    else:
        _deferred.append(signum)


def raise_deferred() -> None:
    """Raises the first signal put off (:func:`defer`), if any.

    Raises:
        Terminated: SIGTERM was put off.
        KeyboardInterrupt: SIGINT was.
    """
    if _deferred:
        first = _deferred[0]
        _deferred.clear()
        raise Terminated() if first == signal.SIGTERM else KeyboardInterrupt


def loops_started() -> int:
    """How many run loops this process has started (outermost :func:`interrupts_at_checks`
    blocks, not :func:`held` ones): a caller compares two counts to tell whether a run got to
    its loop in between."""
    return len(_loops)


class Gate:
    """The signals a run received since its last safe point, in the order they came.

    Python runs the handlers of signals that came while the main thread was inside native code
    (a TensorFlow step) by signal number, SIGINT before SIGTERM, whatever came first. The order
    they came in is read from a wakeup pipe (see :func:`signal.set_wakeup_fd`), where the
    interpreter writes each signal's number as it comes, when nothing else uses one.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.holds = 0
        self.pipe: int | None = None  # the wakeup pipe's read end, while the gate has one
        self._write = -1
        self._pending: set[int] = set()  # signals counted from the pipe whose handler call is to come
        self._unread: dict[int, int] = dict.fromkeys(map(int, _SIGNALS), 0)  # counted before their byte came

    def record(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: remember the signal; stop at once on a second one, unless held.

        Each delivery writes one byte to the pipe, but Python runs one handler call per signal
        number for all the deliveries it had not run one for yet; so every byte counts once, and a
        handler call counts its signal only when no byte of it was read (no pipe, or the byte not
        written yet: the interpreter writes it after it flags the signal).
        """
        fresh = []
        for came in (s for s in self._drain() if s in _SIGNALS):
            if self._unread[came]:  # counted already, by a handler call that ran before its byte came
                self._unread[came] -= 1
            else:
                fresh.append(came)
        if signum in self._pending:  # its bytes were read, and counted, by an earlier handler call
            self._pending.discard(signum)
        elif signum not in fresh:
            fresh.append(signum)
            if self.pipe is not None:
                self._unread[signum] += 1
        self._pending |= {s for s in fresh if s != signum}  # their handler calls are still to come
        self.received += fresh
        _heard.extend(fresh)
        if len(self.received) > 1 and self.holds == 0:
            self.check()

    def _drain(self) -> list[int]:
        """The signal numbers written to the wakeup pipe since it was last read, in order."""
        if self.pipe is None:
            return []
        try:
            return list(os.read(self.pipe, 4096))
        except OSError:  # nothing written (BlockingIOError)
            return []

    def open_pipe(self) -> None:
        """Takes the interpreter's wakeup pipe, unless something else (an event loop) has it."""
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self.pipe, self._write = read, write  # first: a handler may run as soon as the pipe is set
        try:
            before = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            before = None
        if before != -1:
            if before is not None:
                signal.set_wakeup_fd(before, warn_on_full_buffer=False)  # theirs stays
            self.pipe = None
            os.close(read)
            os.close(write)

    def close_pipe(self) -> None:
        """Gives the wakeup pipe back (none set) and forgets what it held."""
        if self.pipe is None:
            return
        now = signal.set_wakeup_fd(-1)
        if now != self._write:  # set by something else meanwhile: it keeps it
            signal.set_wakeup_fd(now, warn_on_full_buffer=False)
        os.close(self.pipe)
        os.close(self._write)
        self.pipe = None
        self._pending.clear()
        self._unread = dict.fromkeys(map(int, _SIGNALS), 0)

    def check(self) -> None:
        """Raises the first signal received since the last check, if any.

        Raises:
            Terminated: SIGTERM came.
            KeyboardInterrupt: SIGINT came.
        """
        if not self.received:
            return
        first = self.received[0]
        self.received.clear()
        _stopped.append(first)
        if first == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_at_checks(loop: bool = True) -> Iterator[Gate]:
    """Holds SIGINT/SIGTERM for the block; they stop it at its :meth:`Gate.check` calls.

    Nested inside another such block, it hands out the outer block's gate.

    Args:
        loop: the block is a run's loop (counted by :func:`loops_started`); False for
            :func:`held`'s own.
    """
    if _open:
        yield _open[-1]
        return
    gate = Gate()
    _heard.clear()  # a new outermost block: what an earlier run of this process heard is past
    if threading.current_thread() is not threading.main_thread():
        yield gate
        return
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, gate.record)
    gate.open_pipe()  # after: no byte of a signal an earlier handler took is left in it
    if loop:  # counted once the gate records signals: none falls between the two
        _loops.append(None)
    gate.received.extend(_deferred)  # put off before the block: its first check raises them
    _deferred.clear()
    _open.append(gate)
    try:
        yield gate
    finally:
        _open.pop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        gate.close_pipe()
    gate.check()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """No signal stops the block, not even a second one; what came is raised at the next check.

    Outside :func:`interrupts_at_checks`, it is raised when the block ends.
    """
    with interrupts_at_checks(loop=False) as gate:
        gate.holds += 1
        try:
            yield
        finally:
            gate.holds -= 1


def heard_code() -> int | None:
    """The exit code (143, 130) of the first signal received since the outermost
    :func:`interrupts_at_checks` block last opened, or None.

    A multi-worker peer stopped by the same Ctrl-C or SIGTERM can break a collective
    step before this worker reaches its next check: that run was interrupted, not failed.
    """
    return None if not _heard else (143 if _heard[0] == signal.SIGTERM else 130)


def interrupt_code(error: BaseException) -> int:
    """Exit code for an interrupt: 143 for SIGTERM, 130 for SIGINT."""
    return 143 if isinstance(error, Terminated) else 130

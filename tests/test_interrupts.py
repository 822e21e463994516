"""Signals stop a run only at its safe points (optrun.runner.interrupts), with real signals."""

from __future__ import annotations

import os
import signal

import pytest

from optrun.errors import Terminated
from optrun.runner.interrupts import held, interrupt_code, interrupts_at_checks


def _send(sig: int) -> None:
    os.kill(os.getpid(), sig)  # Python runs the handler in this (main) thread at once


def test_a_signal_waits_for_the_next_check() -> None:
    reached = []
    with pytest.raises(Terminated), interrupts_at_checks() as gate:
        _send(signal.SIGTERM)
        reached.append("after the signal")  # not cut here
        gate.check()
        reached.append("after the check")
    assert reached == ["after the signal"]


def test_sigint_becomes_keyboard_interrupt_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupts_at_checks() as gate:
        _send(signal.SIGINT)
        gate.check()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_signal_after_the_last_check_is_raised_at_the_end() -> None:
    with pytest.raises(KeyboardInterrupt), interrupts_at_checks():
        _send(signal.SIGINT)
    with interrupts_at_checks() as gate:  # nothing received: nothing raised
        gate.check()


def test_a_second_signal_stops_at_once_unless_held() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt), interrupts_at_checks():
        _send(signal.SIGINT)
        reached.append(1)
        _send(signal.SIGINT)
        reached.append(2)
    assert reached == [1]
    reached.clear()
    with pytest.raises(Terminated), interrupts_at_checks() as gate:
        with held():  # a checkpoint being written: not even a second signal cuts it
            _send(signal.SIGTERM)
            _send(signal.SIGTERM)
            reached.append("whole")
        reached.append("after")
        gate.check()
    assert reached == ["whole", "after"]


def test_held_alone_raises_when_the_block_ends() -> None:
    reached = []
    with pytest.raises(Terminated), held():
        _send(signal.SIGTERM)
        _send(signal.SIGTERM)
        reached.append("whole")
    assert reached == ["whole"]
    assert interrupt_code(Terminated()) == 143
    assert interrupt_code(KeyboardInterrupt()) == 130

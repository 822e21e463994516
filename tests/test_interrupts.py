"""Signals stop a run only at its safe points (optrun.runner.interrupts), with real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

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


def test_a_loop_a_signal_stopped_keeps_its_data_iterator(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    from optrun.runner import batches, interrupts

    monkeypatch.setattr(interrupts, "_stopped", [])
    monkeypatch.setattr(batches, "_parked", [])
    data = tf.data.Dataset.range(10)
    loop = iter(batches.Batches(data, None, skip=0, passes=1))
    assert int(next(loop)) == 0
    loop.close()  # the loop left early, no signal: its iterator is freed as usual
    assert batches._parked == []
    loop = iter(batches.Batches(data, None, skip=2, passes=1))
    with pytest.raises(Terminated), interrupts_at_checks() as gate:
        for batch in loop:
            assert int(batch) == 2  # the first two skipped
            _send(signal.SIGTERM)
            gate.check()
    loop.close()
    # Kept, where the stopped pass was: freeing it could wait on tf.data's autotuning thread.
    assert interrupts.stopping() and len(batches._parked) == 1
    assert int(next(batches._parked[0])) == 3


END = """
import atexit, sys, threading, time
from pathlib import Path
from optrun_cli.startup import end_process

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))

def late():
    time.sleep(0.3)
    (out / "thread").write_text("done")

threading.Thread(target=late).start()

class Freed:
    def __del__(self):
        (out / "teardown").write_text("ran")

kept = Freed()
print("said", end="")  # still in the buffer
end_process(7)
"""


def test_end_process_exits_as_python_would_but_frees_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", END, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (7, "said", "")
    assert (tmp_path / "atexit").read_text() == "ran"  # atexit functions ran
    assert (tmp_path / "thread").read_text() == "done"  # a thread that is not a daemon was waited for
    assert not (tmp_path / "teardown").exists()  # no teardown: nothing was freed


def test_a_stopping_run_is_written_whole_through_a_burst() -> None:
    from optrun.runner.finish import written_while_stopping

    written = []

    def write() -> None:
        _send(signal.SIGINT)
        _send(signal.SIGTERM)
        written.append("whole")

    written_while_stopping(write)  # the run stops for a signal already: these are not raised
    assert written == ["whole"]
    with pytest.raises(OSError, match="disk full"):  # an error writing is the caller's to record

        def failing() -> None:
            raise OSError("disk full")

        written_while_stopping(failing)


def test_the_cli_raises_for_the_first_signal_only() -> None:
    from optrun_cli.errors import ending, install_signal_handlers

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        install_signal_handlers()
        with pytest.raises(Terminated):
            _send(signal.SIGTERM)
        _send(signal.SIGINT)  # the command is ending: ignored
        _send(signal.SIGTERM)
        install_signal_handlers()  # the next command
        with pytest.raises(KeyboardInterrupt):
            _send(signal.SIGINT)
        install_signal_handlers()
        ending()
        _send(signal.SIGINT)  # its work is done: ignored
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])

"""Signals stop a run only at its safe points (optrun.runner.interrupts), with real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optrun.errors import Terminated
from optrun.runner.interrupts import held, interrupt_code, interrupts_at_checks, raise_deferred


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


def test_of_two_signals_that_came_while_python_was_away_the_first_one_counts() -> None:
    # A supervisor's SIGTERM, then SIGINT, both during a step (native code): Python runs their
    # handlers later, SIGINT's first (by number); the run still stops as the first asked (143).
    import threading

    both = {signal.SIGINT, signal.SIGTERM}

    def supervisor() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, both)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Terminated), interrupts_at_checks() as gate:
        with held():
            before = signal.pthread_sigmask(signal.SIG_BLOCK, both)  # as if inside a step
            sender = threading.Thread(target=supervisor)
            sender.start()
            sender.join()
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        gate.check()
    assert signal.set_wakeup_fd(-1) == -1  # the pipe was given back


def test_a_signal_delivered_twice_while_python_was_away_leaves_the_next_one_counted() -> None:
    # Two SIGINTs during native code: two bytes in the pipe, one handler call. Both count, and a
    # later SIGINT (the user insisting, in a loop that goes on after a check) is not swallowed.
    import threading

    def twice() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    with interrupts_at_checks() as gate:
        with held():
            before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            sender = threading.Thread(target=twice)
            sender.start()
            sender.join()
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
        assert gate.received == [signal.SIGINT, signal.SIGINT]
        gate.received.clear()  # as a check that was caught and the loop went on
        with held():
            _send(signal.SIGINT)
        assert gate.received == [signal.SIGINT]
        gate.received.clear()


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


def test_a_run_that_ends_anyway_is_written_whole_through_a_burst() -> None:
    from optrun.errors import RunFailed
    from optrun.runner.finish import signals_moot, stopped_run_written

    written = []
    with signals_moot():  # the run ends either way: these are held, and not raised after
        _send(signal.SIGINT)
        _send(signal.SIGTERM)
        written.append("whole")
    assert written == ["whole"]
    with pytest.raises(OSError, match="disk full"), signals_moot():  # errors are the caller's
        raise OSError("disk full")
    # A run a signal stopped: an error writing it is a failed run (exit 1) that says what to do.
    wanted = r"writing the run stopped at step 7: .*disk full.*--resume goes on"
    with (
        pytest.raises(RunFailed, match=wanted),
        stopped_run_written("writing the run stopped at step 7", "--resume goes on."),
    ):
        _send(signal.SIGINT)
        raise OSError("disk full")


def test_the_cli_raises_for_the_first_signal_only_and_not_once_a_run_loop_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from optrun_cli import errors
    from optrun_cli.errors import command_signals, ending

    monkeypatch.setattr(errors, "BURST_S", 0.2)

    def sentinel(signum: int, frame: object) -> None:
        raise AssertionError("the caller's handler, called inside the command")

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, sentinel)
    try:
        with command_signals():
            with pytest.raises(Terminated):
                _send(signal.SIGTERM)
            _send(signal.SIGINT)  # a burst: the command is ending, ignored
            _send(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is sentinel  # a caller in Python gets its own back
        with command_signals(), pytest.raises(KeyboardInterrupt):  # the next command
            _send(signal.SIGINT)
        with command_signals():
            ending()
            _send(signal.SIGINT)  # its work is done: ignored
        with command_signals():  # a signal that user code swallowed: not lost
            with contextlib.suppress(KeyboardInterrupt):
                _send(signal.SIGINT)
            _send(signal.SIGINT)  # the same burst: put off to the next safe point
            with pytest.raises(KeyboardInterrupt):
                raise_deferred()
            time.sleep(errors.BURST_S + 0.05)
            with pytest.raises(KeyboardInterrupt):  # later: raised again
                _send(signal.SIGINT)
        with command_signals():
            with contextlib.suppress(Terminated):
                _send(signal.SIGTERM)
            _send(signal.SIGINT)  # put off: the run's loop, when it starts, stops at its first check
            with pytest.raises(Terminated), interrupts_at_checks() as gate:  # as the first signal asked
                gate.check()
        with command_signals():  # a lone signal swallowed (by TensorFlow's C code, say): not lost either
            with contextlib.suppress(KeyboardInterrupt):
                _send(signal.SIGINT)
            with pytest.raises(KeyboardInterrupt), interrupts_at_checks() as gate:
                gate.check()
        with command_signals():
            with pytest.raises(KeyboardInterrupt), interrupts_at_checks() as gate:
                _send(signal.SIGINT)  # the run's loop stops at its check
                gate.check()
            _send(signal.SIGINT)  # after it, while the run writes its end: the run's own, ignored
            _send(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_an_error_after_a_swallowed_ctrl_c_is_reported_as_the_interrupt() -> None:
    # A KeyboardInterrupt inside an import can be swallowed by the imported code, which then
    # fails in some other way: the user pressed Ctrl-C, so that is what the command reports.
    import typer

    from optrun_cli.errors import command_signals, error_boundary

    def broken_import() -> None:
        with contextlib.suppress(BaseException):  # as code that swallows it does
            _send(signal.SIGINT)
        raise AttributeError("'tuple' object has no attribute '_type_spec'")

    with command_signals():
        with pytest.raises(typer.Exit) as stopped, error_boundary():
            broken_import()
        assert stopped.value.exit_code == 130
        with pytest.raises(typer.Exit) as failed, error_boundary():
            raise AttributeError("x")
    assert failed.value.exit_code == 130  # the same command: its signal came first
    with command_signals(), pytest.raises(typer.Exit) as failed, error_boundary():
        raise AttributeError("x")
    assert failed.value.exit_code == 2  # no signal: the error's own exit
    with pytest.raises(typer.Exit) as failed, error_boundary():  # a command without the handlers
        raise AttributeError("x")
    assert failed.value.exit_code == 2  # an earlier command's signal is not this one's


@pytest.mark.parametrize(
    ("signalled", "code", "said"),
    [
        (Terminated, 143, "terminated: stopped by SIGTERM"),
        (KeyboardInterrupt, 130, "interrupted: stopped by Ctrl-C"),
    ],
)
def test_a_command_that_only_reads_says_which_signal_stopped_it(
    capsys: pytest.CaptureFixture[str], signalled: type[BaseException], code: int, said: str
) -> None:
    import typer

    from optrun_cli.errors import error_boundary

    with pytest.raises(typer.Exit) as stopped, error_boundary(runs=False):  # show, validate, ...
        raise signalled
    assert stopped.value.exit_code == code
    err = capsys.readouterr().err
    assert said in err and "before the run started" not in err

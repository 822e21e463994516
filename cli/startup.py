"""What every command does first (TensorFlow's C++ log kept quiet, Python logging through rich),
and how a process that ran TensorFlow ends."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

from rich.logging import RichHandler

from .progress import PipeSafeConsole

# TensorFlow's C++ log (CUDA probing, CPU features, XLA's cache loader) is not the user's
# business unless they ask: --verbose shows it, and a level the user set is theirs.
_USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow(verbose: bool) -> None:
    """Imports TensorFlow with its native start-up log (oneDNN, CUDA probing) silenced.

    Those lines are written by C++ before absl logging is configured, so no
    environment variable stops them; only --verbose shows them, with the rest
    of TensorFlow's C++ log (unless TF_CPP_MIN_LOG_LEVEL was set by the user).
    """
    if verbose:
        if _USER_TF_LOG_LEVEL is None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow

        return
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Python logging to stderr through rich: INFO with -v, ERROR with -q, else WARNING."""
    level = logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    handler = RichHandler(console=PipeSafeConsole(stderr=True), show_time=False, show_path=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)


def ignore_signals() -> None:
    """The process's command is done and said so: a late Ctrl-C or SIGTERM (one of a burst) would
    only break what is left, with a traceback from an atexit function, or kill the process as it
    ends (Python gives a handler of its own back to the system's default then, but not an ignore)."""
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(number, signal.SIG_IGN)


def end_process(code: int) -> NoReturn:
    """Ends the process with ``code`` now that its command is done, skipping the interpreter's teardown.

    The teardown only frees memory, but freeing a ``tf.data`` iterator waits for
    its autotuning thread, which TensorFlow may wake only seconds to a minute
    later: a run stopped by Ctrl-C or SIGTERM would linger that long after its
    checkpoint and result.json were written. What an exit must still do is done
    first, as Python does it: the threads that are not daemons are waited for
    (an XLA build in the background finishes), the ``atexit`` functions run
    (user code's too), and the standard streams are flushed.
    """
    ignore_signals()
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    # CPython's own exit path (no public name); absent elsewhere, os._exit then skips them.
    getattr(atexit, "_run_exitfuncs", lambda: None)()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


@contextlib.contextmanager
def stdout_to_stderr(active: bool) -> Iterator[None]:
    """With ``--json``, stdout carries the JSON alone: within the block, whatever else writes to
    it (IPOPT's own log at ``print_level`` > 0, a ``print`` in user code) goes to stderr, moved
    at the file descriptor, where C libraries write. A closed stdout is left as it is."""
    saved = None
    if active and sys.stdout is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            saved = os.dup(1)
            os.dup2(2, 1)
    try:
        yield
    finally:
        if saved is not None:
            # What Python and C code buffered belongs to the block's stderr, not to the JSON.
            with contextlib.suppress(Exception):
                if sys.stdout is not None:
                    sys.stdout.flush()
                _flush_c_stdio()
            os.dup2(saved, 1)
            os.close(saved)


def _flush_c_stdio() -> None:
    with contextlib.suppress(OSError, AttributeError, TypeError):  # no C library to ask (Windows)
        ctypes.CDLL(None).fflush(None)

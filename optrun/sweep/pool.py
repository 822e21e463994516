"""The worker processes that run a sweep's trials, ``--jobs`` of them at once.

Each worker is ``python -m optrun_cli.sweep_worker``: it imports TensorFlow once, then
runs trial after trial (:func:`optrun.sweep.trial.run_trial`), so a trial costs its
own work and not TensorFlow's start-up (about 5 s of CPU here). A worker:

* gets requests on its stdin and answers on a pipe of its own (one JSON line each), so
  whatever user code prints cannot garble them; its output goes to the trial's log;
* runs with ``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``, ``OMP_NUM_THREADS``
  and the BLAS variables set to the cores divided among the jobs (and sets TensorFlow's
  thread pools to the same count itself), so N workers do not fight over the cores;
* runs in a session of its own, so a terminal's Ctrl-C reaches only the sweep, which
  forwards one signal to each busy worker: the trial checkpoints and says so; and it
  gets SIGTERM if the sweep dies (Linux), so no trial outlives it unrecorded;
* that dies mid-trial (a crash, a kill) fails only that trial; the next trial gets a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from optrun.sweep.trial import TrialRequest, reply

#: Thread variables each worker gets: TensorFlow's pools, OpenMP (oneDNN) and the BLAS libraries.
THREAD_VARIABLES = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def worker_env(threads: int) -> dict[str, str]:
    """The environment of a worker process: this one's, with its thread counts and a quiet TensorFlow."""
    env = dict(os.environ)
    env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    env["OPTRUN_SWEEP_THREADS"] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Worker:
    """One worker process, and the trial it runs (``request``, None when idle)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        read, write = os.pipe()
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "optrun_cli.sweep_worker", str(write)],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(write,),
                env=env,
                start_new_session=True,
                # The sweep's process runs no threads of its own: the hook runs safely between fork and exec.
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
            )
        os.close(write)
        self.fd = read
        self.log = log
        self.buffer = b""
        self.request: TrialRequest | None = None
        self.used = 0
        self.signals = 0
        self.fresh = False  # its trial asked for a process of its own: retired after it

    def send(self, request: TrialRequest) -> bool:
        """Hands the worker a trial; False when it is gone."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(request.line().encode())
            self.process.stdin.flush()
        except OSError:
            return False
        self.request, self.used, self.signals, self.fresh = request, self.used + 1, 0, request.fresh
        return True

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """The replies that arrived, and whether the worker has ended (its pipe closed)."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return [], False
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        replies = []
        for line in lines:
            with contextlib.suppress(ValueError):
                replies.append(json.loads(line))
        return replies, not chunk

    def signal(self, signum: int) -> None:
        """Sends ``signum`` to the worker (after two, a kill)."""
        self.signals += 1
        with contextlib.suppress(OSError):
            os.kill(self.process.pid, signum if self.signals <= 2 else signal.SIGKILL)

    def check(self, payload: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Has the worker check the space (:func:`optrun.sweep.check.deep_problems` of ``payload``)
        and waits for its answer; None when the worker ended without one."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps({"check": payload}) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            return None
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError, TypeError):
                    answer = json.loads(line)
                    if isinstance(answer, dict) and isinstance(answer.get("check"), list):
                        return list(answer["check"])

    def move_log(self, log: Path) -> None:
        """Keeps what the worker printed so far in ``log`` (from a temporary file), and writes there on."""
        with contextlib.suppress(OSError):
            shutil.copyfile(self.log, log)
            self.log.unlink()
            self.log = log

    def death(self) -> str:
        """How the worker ended, in words, with the last line its trial's log (else its own) holds."""
        code = self.process.wait()
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        log = Path(self.request.log) if self.request is not None and self.request.log else self.log
        log = log if log.is_file() else self.log  # it died before it began the trial's log
        last = ""
        with contextlib.suppress(OSError):
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            last = f": {lines[-1].strip()[:300]}" if lines else ""
        return f"the trial's process died ({how}){last}; its output is in {log}"

    def close(self, wait: float = 10.0) -> None:
        """Ends the worker: its stdin closed, then SIGTERM and SIGKILL if it does not exit."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        for action in (None, signal.SIGTERM, signal.SIGKILL):
            if action is not None:
                with contextlib.suppress(OSError):
                    os.kill(self.process.pid, action)
            try:
                self.process.wait(timeout=wait if action is None else 5.0)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(OSError):
            os.close(self.fd)


def start_checker(env: dict[str, str]) -> Worker:
    """A worker started before the sweep directory exists, to check the space (:meth:`Worker.check`);
    its output goes to a temporary file until :meth:`Worker.move_log`, and the pool then adopts it."""
    fd, name = tempfile.mkstemp(prefix="optrun-sweep-worker-", suffix=".log")
    os.close(fd)
    return Worker(env, Path(name))


class Pool:
    """Up to ``size`` workers; each started when first needed, and again after one died.

    Args:
        size: how many trials run at once (``--jobs``).
        env: the workers' environment (see :func:`worker_env`).
        logs: the folder of the workers' own output (before their first trial).
    """

    def __init__(self, size: int, env: dict[str, str], logs: Path, first: Worker | None = None) -> None:
        self.slots: list[Worker | None] = [None] * size
        self.env, self.logs = env, logs
        self.selector = selectors.DefaultSelector()
        if first is not None:  # started already (it checked the space): the first slot's
            first.move_log(logs / "worker-0.log")
            self.slots[0] = first
            self.selector.register(first.fd, selectors.EVENT_READ, 0)

    def busy(self) -> list[Worker]:
        """The workers running a trial."""
        return [w for w in self.slots if w is not None and w.request is not None]

    def has_room(self) -> bool:
        """Whether a trial could start now."""
        return any(w is None or w.request is None for w in self.slots)

    def submit(self, request: TrialRequest) -> None:
        """Starts ``request`` on an idle worker (a new one if none, or if the trial wants its own)."""
        index = next(i for i, w in enumerate(self.slots) if w is None or w.request is None)
        worker = self.slots[index]
        if worker is not None and (request.fresh and worker.used > 0):
            self._retire(index)
            worker = None
        if worker is None or not worker.send(request):
            if worker is not None:
                self._retire(index)
            worker = Worker(self.env, self.logs / f"worker-{index}.log")
            self.selector.register(worker.fd, selectors.EVENT_READ, index)
            self.slots[index] = worker
            worker.send(request)

    def select(self, timeout: float) -> list[int]:
        """Waits up to ``timeout`` seconds; the slots whose workers have something to say."""
        if not self.busy():
            return []
        return [key.data for key, _ in self.selector.select(timeout)]

    def collect(self, ready: list[int], stopping: bool) -> list[tuple[TrialRequest, dict[str, Any]]]:
        """The finished trials among ``ready``: each request with its worker's reply. A worker that
        died mid-trial answers for it: failed, or interrupted when the sweep is stopping."""
        done = []
        for index in ready:
            worker = self.slots[index]
            if worker is None:
                continue
            replies, ended = worker.read()
            for answer in replies:
                if worker.request is not None and answer.get("number") == worker.request.number:
                    done.append((worker.request, answer))
                    worker.request = None
            if ended:
                if worker.request is not None:
                    death = worker.death()
                    if stopping:  # e.g. the signal came while the process was still starting
                        answer = reply(worker.request.number, "interrupted", message=f"interrupted: {death}")
                    else:
                        answer = reply(worker.request.number, "error", message=death)
                    done.append((worker.request, answer))
                    worker.request = None
                self._retire(index)
            elif worker.request is None and (stopping or worker.fresh):
                self._retire(index)
        return done

    def signal_busy(self, signum: int) -> None:
        """Forwards a signal to every worker running a trial."""
        for worker in self.busy():
            worker.signal(signum)

    def _retire(self, index: int) -> None:
        worker = self.slots[index]
        if worker is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.fd)
        worker.close()
        self.slots[index] = None

    def close(self) -> None:
        """Ends every worker."""
        for index in range(len(self.slots)):
            self._retire(index)
        self.selector.close()

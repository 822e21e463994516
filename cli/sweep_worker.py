"""``python -m optrun_cli.sweep_worker FD``: one of a sweep's worker processes.

Started by :mod:`optrun.sweep.pool`: it imports TensorFlow once, with the thread
counts the sweep gave it, then reads trial requests from stdin (one JSON line each; the
first worker's first line may ask it to check the space instead, see
:func:`optrun.sweep.check.deep_problems`),
runs each (:func:`optrun.sweep.trial.run_trial`) with its output going to the trial's
log, and writes each reply as one JSON line to the pipe ``FD``. It ends when stdin
closes, or after a trial that a signal interrupted.

Signals are held while a trial runs and honoured at the run's safe points (see
:mod:`optrun.runner.interrupts`), so an interrupted trial checkpoints and says so.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any


def _redirect(log: str | None) -> None:
    """Points this process's stdout and stderr (file descriptors 1 and 2) at ``log``."""
    if not log:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _serve(answers: Any) -> None:
    from optrun.errors import Terminated
    from optrun.runner.interrupts import interrupts_at_checks
    from optrun.runner.reporting import jsonable
    from optrun.sweep.trial import TrialRequest, reply, run_trial

    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if "check" in message:  # the space, checked before the sweep writes anything
            from optrun.sweep.check import deep_problems

            answers.write(json.dumps({"check": deep_problems(**message["check"])}) + "\n")
            answers.flush()
            continue
        request = TrialRequest(**message)
        _redirect(request.log)
        try:
            with interrupts_at_checks() as gate:
                answer = run_trial(request)
                stop = bool(gate.received)  # a signal the run did not see: answer, then end
                gate.received.clear()
        except (KeyboardInterrupt, Terminated) as error:  # a second signal, while the trial loaded
            code = 143 if isinstance(error, Terminated) else 130
            answer = reply(
                request.number, "interrupted", message="interrupted while the trial loaded", exit_code=code
            )
            stop = True
        answers.write(json.dumps(jsonable(answer), allow_nan=False) + "\n")
        answers.flush()
        if stop:
            return


def main() -> None:
    """Serves trials until stdin closes; exits 0, or 130 when interrupted between trials."""
    answers = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from .startup import import_tensorflow

        import_tensorflow(False)
        import tensorflow as tf

        threads = int(os.environ.get("OPTRUN_SWEEP_THREADS") or 0)
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _serve(answers)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        answers.close()


if __name__ == "__main__":
    main()

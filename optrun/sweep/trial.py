"""One trial, run inside a worker process: the spec with the trial's values, as ``optrun train`` runs it.

The sweep sends a :class:`TrialRequest` (one JSON line) to a worker process
(:mod:`optrun.sweep.pool`); the worker calls :func:`run_trial` and answers with its
reply, one JSON line too. The run is an ordinary ``run_train`` / ``run_minimize`` into
the trial's run directory, so it writes config.yaml, metrics.jsonl, TensorBoard,
checkpoints and result.json as any run does; the trial's values come in as ``--set``
overrides, and the ``sweep:`` section is left out of the trial's config.yaml, which is
then a plain spec (its user code found from the spec's folder, as the file gives it:
``optrun train SPEC --set PATH=VALUE ...`` with the trial's values runs the trial again).

Whatever happens, :func:`run_trial` answers: a failure becomes ``status`` and
``message`` (never an exception), so one trial cannot end the sweep.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from optrun.errors import OptrunError, RunFailed, Terminated, describe

#: The exit code of a trial's failure, as ``optrun train`` would exit: usage (2), or failed (1).
USAGE, FAILED = 2, 1


@dataclass
class TrialRequest:
    """What a worker runs: trial ``number`` of ``kind`` from ``spec`` with ``overrides``, into ``out``.

    ``resume`` continues the run directory (a trial interrupted before), ``force``
    replaces a partial one. ``prune``, for a training trial, is what
    :func:`optrun.sweep.pruning.stop_check` needs to report its losses to the study.
    ``fresh`` asks for a process of its own (a strategy sets up TensorFlow's devices once);
    ``log`` is where the process's output goes while it runs the trial.
    """

    number: int
    kind: str
    spec: str
    overrides: list[str]
    out: str
    resume: bool = False
    force: bool = False
    prune: dict[str, Any] | None = None
    fresh: bool = False
    log: str | None = None

    def line(self) -> str:
        """The request as one JSON line."""
        return json.dumps(asdict(self)) + "\n"

    @classmethod
    def parse(cls, line: str) -> TrialRequest:
        """A request from its JSON line."""
        return cls(**json.loads(line))


def reply(number: int, status: str, success: bool = False, **fields: Any) -> dict[str, Any]:
    """A worker's answer: the trial's ``status`` word, ``success``, and ``message``,
    ``exit_code`` and ``result`` (result.json) when there are."""
    return {
        "number": number,
        "status": status,
        "success": success,
        "message": fields.get("message"),
        "exit_code": fields.get("exit_code", 0 if success else FAILED),
        "result": fields.get("result"),
    }


def _result(out: str) -> dict[str, Any] | None:
    try:
        result = json.loads((Path(out) / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _one_line(text: str) -> str:
    return "; ".join(part.strip(" -") for part in text.splitlines() if part.strip())


def run_trial(request: TrialRequest) -> dict[str, Any]:
    """Runs the trial; returns its reply (see :func:`reply`). Never raises, but for a second
    interrupt that the run did not wait for (it then raises KeyboardInterrupt or Terminated)."""
    import keras

    from optrun.runner import RunOptions, run_minimize, run_train
    from optrun.runner.common import Interrupted
    from optrun.spec.load import check_schema, read_spec
    from optrun.sweep.pruning import stop_check

    keras.backend.clear_session()  # a new trial starts from Keras's fresh state, as a new process would
    number = request.number
    try:
        raw = read_spec(request.spec, request.overrides)
        raw.data.pop("sweep", None)  # the trial's config.yaml is a plain spec
        loaded = check_schema(raw)
        check = stop_check(request.prune) if request.prune and request.kind == "train" else None
        options = RunOptions(
            out=Path(request.out), resume=request.resume, force=request.force, stop_check=check
        )
        run = run_train if request.kind == "train" else run_minimize
        outcome = run(loaded, options)
    except Interrupted as error:
        return reply(
            number, "interrupted", message=str(error), exit_code=error.exit_code, result=_result(request.out)
        )
    except RunFailed as error:
        result = _result(request.out)
        status = str((result or {}).get("status", "error"))
        return reply(number, status, message=_one_line(str(error)), exit_code=FAILED, result=result)
    except OptrunError as error:  # the trial's spec, a reference or the run directory: nothing ran
        code = getattr(error, "exit_code", USAGE)
        return reply(
            number, "error", message=_one_line(str(error)), exit_code=code, result=_result(request.out)
        )
    except (KeyboardInterrupt, Terminated) as error:  # came while the trial was loading
        code = 143 if isinstance(error, Terminated) else 130
        message = "interrupted before the trial's run started"
        return reply(number, "interrupted", message=message, exit_code=code, result=_result(request.out))
    except (Exception, SystemExit) as error:  # noqa: BLE001 - user code raised (or exited) while loading
        message = f"user code raised while the trial was loading: {describe(error)}"
        return reply(number, "error", message=message, exit_code=USAGE, result=_result(request.out))
    result = outcome.result
    said = result.get("message") or result.get("error")
    if not outcome.success and said is None:
        said = f"the run ended {result.get('status')} after {result.get('steps', result.get('nit'))} steps"
        loss = result.get("final_loss", result.get("fun"))
        said += f" (loss {loss}); see {Path(request.out) / 'result.json'}" if loss is not None else ""
    return reply(number, str(result.get("status")), outcome.success, message=said, result=result)

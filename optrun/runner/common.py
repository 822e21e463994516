"""What train and minimize share: run directories, seeds, interrupts and outcomes."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optrun.causes import TRACE_HINT
from optrun.errors import OptrunError, RunError, cause_of
from optrun.runner.reporting import NullReporter, Reporter, write_json_atomic
from optrun.runner.resumable import check_resumable
from optrun.runner.rundir import KIND_MARK, claimed, read_marker
from optrun.runner.warning_log import WarningLog
from optrun.spec.load import LoadedSpec, dump_spec
from optrun.spec.run_layout import AVERAGED, CHECKPOINTS, EXPORT

if TYPE_CHECKING:  # optrun.scale.strategy imports TensorFlow, which this module loads only when it runs
    from optrun.scale.strategy import Plan


class Interrupted(OptrunError):
    """The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143), after a checkpoint.

    ``out_dir`` is the run directory. A multi-worker run's worker other than the chief
    (``plan.is_chief`` False) keeps nothing there, and a following minimize worker saves
    nothing on its interrupt: the message says only what is true (see :func:`interrupted`).
    """

    def __init__(self, exit_code: int, out_dir: Path, plan: Plan | None = None) -> None:
        self.exit_code = exit_code
        self.out_dir = out_dir
        #: The run's record, where it was written (``--json`` shows it).
        self.result_file: Path | None = out_dir / "result.json"
        super().__init__(interrupted(out_dir, plan))


def interrupted(out_dir: Path, plan: Plan | None = None) -> str:
    """What an interrupted process wrote, and where: the chief (or a single process) wrote the
    checkpoint and result.json into ``out_dir``; another worker only into a temporary directory
    of its own, removed as it exits, so its message points at the chief's."""
    if plan is None or plan.is_chief:
        return f"interrupted; checkpoint and result.json written to {out_dir}"
    chief = f"the chief ({plan.chief_task})" if plan.chief_task else "the chief"
    return (
        f"interrupted; {plan.task} keeps no files (a worker other than the chief writes into a "
        f"temporary directory, removed on exit); {chief} writes the run's checkpoints and "
        f"result.json to {out_dir}"
    )


@dataclass
class RunOptions:
    """How to run: where, and whether to resume or overwrite.

    ``stop_check`` (train only) is called at each logged step with the step and its metrics
    (``{"loss": ...}``); a string it returns ends the run there, cleanly (checkpoint, metrics,
    export), with status ``pruned`` and that string as result.json's ``message``: how a
    sweep's pruner stops a trial (:mod:`optrun.sweep.pruning`).
    """

    out: Path | None = None
    resume: bool = False
    force: bool = False
    reporter: Reporter = field(default_factory=NullReporter)
    stop_check: Callable[[int, dict[str, float]], str | None] | None = None


@dataclass
class RunOutcome:
    """What a run produced: its directory, its result, and whether it succeeded."""

    out_dir: Path
    result: dict[str, Any]
    success: bool


def run_dir(loaded: LoadedSpec, options: RunOptions) -> Path:
    """The run directory: ``--out``, else ``runs/<name>``."""
    return Path(options.out) if options.out is not None else Path("runs") / loaded.spec.name


#: What must not change between a run and its --resume (limits, logging and paths may). The seed
#: too: the steps still to come would draw other batches and dropout masks than the run's.
def resume_budget(
    done: int,
    total: int | None,
    run: Any,
    unit: str,
    budget: str,
    finished_as: str | None = None,
    end_left: bool = False,
) -> None:
    """Refuses, before anything is written, a resume of an unfinished run (interrupted, or killed
    after a periodic checkpoint) that already used its budget: nothing is left to run, and no
    result of its own to write. A run that finished (``finished_as``) is let through.

    Args:
        done: the steps or iterations the checkpoint holds.
        total: the budget in the same unit (None: none).
        run: the run directory.
        unit: "step" or "iteration".
        budget: the spec's key that sets it, e.g. ``train.max_steps``.
        finished_as: the result.json status of a finished run (None: any but ``interrupted``).
        end_left: a run exactly at its budget whose end was never written (no result, stopped
            there, or an error writing it) is let through, to write that end.
    """
    status = (previous_result(run) or {}).get("status")
    finished = status == finished_as if finished_as else status not in (None, "interrupted")
    unwritten = end_left and done == total and status in (None, "interrupted", "error")
    if finished or unwritten or total is None or done < total:
        return
    raise RunError(
        f"--resume: the run in {run} stopped at {unit} {done}, which uses up its budget of {total} "
        f"{unit}s ({budget}); raise {budget} to go on from there."
    )


@contextlib.contextmanager
def run_directory(out: Path, kind: str, loaded: LoadedSpec, options: RunOptions) -> Iterator[None]:
    """Claims, marks and locks the run directory for the block (see :mod:`optrun.runner.rundir`).

    Called only after the spec validated and the model built, so a bad spec
    leaves nothing behind; :func:`record_config` writes config.yaml once the
    run can start. A --resume is checked against the run it continues.

    Raises:
        RunError: it exists and neither --force nor --resume was given; it is
            in use, not optrun's, a link or a protected folder; or --resume
            finds nothing to resume, or a run of another spec.
    """
    with claimed(out, kind, dump_spec(loaded.spec), loaded.source, options.resume, options.force) as claim:
        if options.resume:
            check_resumable(out, kind, loaded)
            leftovers = [*(out / CHECKPOINTS).glob("*_temp*"), *(out / AVERAGED).glob("*_temp*")]
            for leftover in leftovers:  # a save cut short by a kill or a full disk
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        try:
            yield
        except BaseException:
            # Stopped (Ctrl-C, SIGTERM, an error) before the run wrote anything of its own: the
            # directory this start made goes too, so that the same command can simply run again.
            home = claim.home
            ours = claim.made and (read_marker(home) or {}).get("run_id") == claim.run_id
            if ours and not _started(home, loaded.spec.logging.metrics_file):
                shutil.rmtree(home, ignore_errors=True)
            raise


def _started(out: Path, metrics_file: str) -> bool:
    """Whether the run in ``out`` wrote a result, a checkpoint or a metrics line."""
    wrote = [out / "result.json", *(out / CHECKPOINTS).glob("*"), out / metrics_file]
    return any(_holds_something(p) for p in wrote)


def _holds_something(path: Path) -> bool:
    try:
        return path.exists() and (path.is_dir() or path.stat().st_size > 0)
    except (OSError, ValueError):  # a name the file system refuses was never written
        return False


def previous_result(out: Path) -> dict[str, Any] | None:
    """The run's result.json, if it has a readable one."""
    try:
        result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def write_result(out: Path, result: dict[str, Any], caught: WarningLog) -> dict[str, Any]:
    """Writes result.json, with the warnings raised so far (``warnings``, when any), and warnings.log."""
    if caught:
        result = {**result, "warnings": caught.summary()}
    caught.write(out)
    write_json_atomic(out / "result.json", result)
    return result


def record_config(out: Path, kind: str, loaded: LoadedSpec) -> None:
    """As a session of the run starts to work: writes config.yaml (the resolved spec, with the
    seed used and the run's kind), and removes an earlier session's result.json, which is no
    longer the run's end: a kill from here on leaves the run without one (``incomplete``)."""
    text = f"{KIND_MARK} {kind}\n" + dump_spec(loaded.spec)
    (out / "config.yaml").write_text(text, encoding="utf-8")
    (out / "result.json").unlink(missing_ok=True)


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow, and asks TF for deterministic kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    with contextlib.suppress(RuntimeError):  # already enabled in this process
        tf.config.experimental.enable_op_determinism()


def failure(error: BaseException, where: str) -> str:
    """One line for a user-code exception raised mid-run, for the CLI and result.json.

    ``"step 1: InvalidArgumentError: assertion failed: [loss blew up] ... (at model.py:12 in loss);
    run with -v for the full trace"``: the failing op's own message (not TensorFlow's
    "Graph execution error:"), and the user's file and line when the error names them.
    """
    return f"{where}: {cause_of(error)}; {TRACE_HINT}"


def export_model(model: Any, kind: str, out: Path) -> str | None:
    """Writes the model for inference without optrun; returns the path, or None for 'none'."""
    import keras
    import tensorflow as tf

    if kind == "auto":
        kind = "weights_h5" if isinstance(model, keras.Model) else "none"
    if kind == "none":
        return None
    target = out / EXPORT
    target.mkdir(parents=True, exist_ok=True)
    if kind == "weights_h5":
        path = target / "model.weights.h5"
        model.save_weights(str(path))
        return str(path)
    path = target / "saved_model"
    if isinstance(model, keras.Model):
        model.export(str(path), verbose=False)
    else:
        module = model if isinstance(model, tf.Module) else tf.Module()
        if module is not model:
            module.variables_ = model
        tf.saved_model.save(module, str(path))
    return str(path)


def check_export(model: Any, kind: str, source: str) -> None:
    """Refuses, before the run starts, an export the model cannot do.

    Raises:
        ConfigError: at ``checkpoint.export``: weights_h5 for a model that is not a Keras model.
    """
    import keras

    from optrun.errors import ConfigError, Problem

    if kind == "weights_h5" and not isinstance(model, keras.Model):
        message = (
            f"weights_h5 needs a Keras model; the builder returned {type(model).__name__}. "
            "Use 'saved_model' or 'none'."
        )
        raise ConfigError(source, [Problem("checkpoint.export", message)])

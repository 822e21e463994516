"""Where a run's numbers go: ``metrics.jsonl``, TensorBoard, and a progress reporter.

The library never prints: it calls a :class:`Reporter`, which the CLI
implements with rich (a progress bar on a terminal, plain lines otherwise).
Warnings raised during a run go to :mod:`optrun.runner.warning_log`.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from optrun.runner.cut_back import cut_events, cut_metrics


@dataclass(frozen=True)
class Progress:
    """Where a run is, in the words of its kind.

    Train: ``step`` of ``total`` steps, and the ``epoch`` of ``epochs`` when the
    data's length is known. Minimize, in scipy's words: ``step`` is the
    iteration (``nit``) of ``total`` (``maxiter``), ``nfev`` the loss
    evaluations scipy asked for (of ``max_nfev``, e.g. TNC's ``maxfun``), and
    ``violation`` the largest constraint violation at the iterate (0 when every
    constraint holds). A total is None when the spec sets no limit.

    The ``final`` event comes once, after scipy returned, with its ``nit``,
    ``nfev`` and ``message``; ``converged`` is scipy's ``success`` and
    ``status`` the run's outcome in a word (``converged``, ``budget_reached``,
    ``stalled``, ...).

    IPOPT (``method: ipopt``) adds ``mu``, its barrier parameter at the
    iteration; ``solver`` names who reports the final message (``scipy`` or ``IPOPT``).
    """

    kind: str
    step: int
    total: int | None
    loss: float
    logged: bool
    elapsed: float
    nfev: int | None = None
    max_nfev: int | None = None
    violation: float | None = None
    epoch: int | None = None
    epochs: int | None = None
    final: bool = False
    converged: bool | None = None
    message: str | None = None
    status: str | None = None
    mu: float | None = None
    solver: str = "scipy"


class Reporter(Protocol):
    """Receives progress; the CLI renders it.

    A reporter may also define ``progress(event: Progress)``: it then gets every
    step as a :class:`Progress` (with nfev, violation, epoch and elapsed time)
    instead of ``step(...)``, and the final event of a minimize run. Reporters
    with only the three methods below keep working (see :func:`report`).
    """

    def start(self, kind: str, total: int | None, first_step: int) -> None:
        """A run of ``kind`` ('train', 'minimize') begins; ``total`` steps (iterations) if known."""

    def step(self, step: int, loss: float, logged: bool) -> None:
        """After each step or iteration; ``logged`` at the logging interval."""

    def note(self, message: str) -> None:
        """Something the user should know (e.g. a skipped non-finite update)."""


class NullReporter:
    """Reports nothing."""

    def start(self, kind: str, total: int | None, first_step: int) -> None:
        """Ignores the start."""

    def step(self, step: int, loss: float, logged: bool) -> None:
        """Ignores the step."""

    def progress(self, event: Progress) -> None:
        """Ignores the progress."""

    def note(self, message: str) -> None:
        """Ignores the note."""


def report(reporter: Reporter, event: Progress) -> None:
    """Sends ``event`` to ``reporter.progress``, or, for a reporter without one, to ``step``."""
    progress = getattr(reporter, "progress", None)
    if callable(progress):
        progress(event)
    elif not event.final:  # a step-only reporter already saw the last iteration
        reporter.step(event.step, event.loss, event.logged)


#: Skipped non-finite updates after the first are said as a count at a logging interval, and no
#: more often than this (seconds): logging every step must not bring back a line per step.
SKIP_NOTE_EVERY_S = 10.0


class NonfiniteSkips:
    """Tells a reporter about updates skipped as non-finite, without a line per step.

    The first skip is said at once, with what was non-finite; later ones are counted and said
    as one line at a logging interval (:meth:`logged`), at most every :data:`SKIP_NOTE_EVERY_S`
    seconds; :meth:`close` says the total when the last line left some unsaid.
    """

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.count, self.last = 0, 0
        #: Consecutive skipped steps up to :attr:`last`.
        self.streak = 0
        self._said, self._said_at = 0, 0.0

    def streak_to(self, step: int) -> int:
        """How many consecutive steps were skipped up to and including ``step`` (0: not ``step``)."""
        return self.streak if self.last == step else 0

    def skipped(self, step: int, loss: float) -> None:
        """Step ``step``'s update was skipped; a finite ``loss`` means a gradient was not finite."""
        self.streak = self.streak + 1 if step == self.last + 1 else 1
        self.count, self.last = self.count + 1, step
        if self.count == 1:
            what = f"loss at step {step} ({loss})"
            if math.isfinite(loss):
                what = f"gradient at step {step} (loss {loss:.6g})"
            self._say(f"non-finite {what}: update skipped; later ones are counted")

    def logged(self) -> None:
        """At a logging interval: the count so far, if it grew and the last line is old enough."""
        if self.count > self._said and time.monotonic() - self._said_at >= SKIP_NOTE_EVERY_S:
            self._say(f"skipped {self.count} non-finite steps so far (last at step {self.last})")

    def close(self) -> None:
        """At the end of the run: the total, unless the last line said it."""
        if self.count > self._said:
            self._say(f"skipped {self.count} non-finite steps in all (last at step {self.last})")

    def _say(self, message: str) -> None:
        self.reporter.note(message)
        self._said, self._said_at = self.count, time.monotonic()


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: NaN/Inf become strings, numpy values plain Python."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf; keep them readable
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


class MetricsWriter:
    """Appends one JSON line per logged step, and mirrors scalars to TensorBoard.

    Args:
        path: the metrics file (appended to, so a resumed run continues it).
        tensorboard_dir: where to write TensorBoard events, or None (made at the first step logged).
        resume_from: for a resumed run, the restored step: what was logged after it is dropped
            first, from both (:mod:`optrun.runner.cut_back`).
    """

    def __init__(self, path: Path, tensorboard_dir: Path | None, resume_from: int | None = None) -> None:
        #: The last line kept by a resume (None: none, or not a resume).
        self.resumed: dict[str, Any] | None = None
        if resume_from is not None:
            self.resumed = cut_metrics(path, resume_from)
            if tensorboard_dir is not None:
                cut_events(tensorboard_dir, resume_from)
        self._file = path.open("a", encoding="utf-8")
        self._start = time.perf_counter()
        self._tensorboard, self._writer = tensorboard_dir, cast(Any, None)

    def write(self, step: int, **metrics: float) -> None:
        """Writes ``{"step", "wall_time", **metrics}``."""
        record = {"step": step, "wall_time": round(time.perf_counter() - self._start, 6)}
        record.update({k: jsonable(float(v)) for k, v in metrics.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tensorboard is not None:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(str(self._tensorboard))
            with self._writer.as_default(step=step):
                for key, value in metrics.items():
                    # As float64: TensorBoard's cast to float32 saturates (1e40 shows as inf) where a
                    # Python float beyond float32's range is refused outright.
                    tf.summary.scalar(key, tf.constant(float(value), tf.float64))

    def close(self) -> None:
        """Flushes and closes both outputs."""
        self._file.close()
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Writes JSON to ``path`` via a temporary file and a rename: never half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:  # a full disk, a signal: no half file is left behind
        tmp.unlink(missing_ok=True)
        raise


def _number(value: Any) -> float | None:
    """A metric value as a float: numbers, and the 'nan'/'inf' strings :func:`jsonable` writes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float
            return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def read_metrics(path: Path) -> dict[str, Any]:
    """Reads a metrics file back: every line, in order, a torn last line skipped.

    Returns:
        ``{"file", "count", "torn", "last", "steps", "series"}``: the number of
        records, whether a torn last line was skipped, the last record, the
        steps, and each metric's values aligned with the steps (floats; NaN
        where a record lacks the metric). A missing file reads as no records.

    Raises:
        RunError: the file cannot be read, or a line other than the last is
            not a metrics record (a kill tears only the last one).
    """
    from optrun.errors import RunError

    empty: dict[str, Any] = {"file": str(path), "count": 0, "torn": False, "last": None}
    if not path.exists():
        return {**empty, "steps": [], "series": {}}
    if not path.is_file():  # a pipe would block the read forever
        raise RunError(f"{path}: not a regular file, so not optrun's metrics file")
    steps: list[int] = []
    series: dict[str, list[float]] = {}
    last: dict[str, Any] | None = None
    torn = False
    try:
        with path.open("rb") as stream:
            for line_no, raw in enumerate(stream, start=1):
                if torn:  # the bad line was not the last one
                    raise RunError(
                        f"{path}: line {line_no - 1} is not a metrics record; the file is damaged "
                        "(only a torn last line is expected). Fix or remove that line."
                    )
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
                if not (isinstance(record, dict) and isinstance(record.get("step"), int)):
                    torn = True
                    continue
                for key, value in record.items():
                    if key in ("step", "wall_time"):
                        continue
                    number = _number(value)
                    if number is not None:
                        series.setdefault(key, [math.nan] * len(steps)).append(number)
                steps.append(record["step"])
                for values in series.values():  # a metric this record lacks
                    if len(values) < len(steps):
                        values.append(math.nan)
                last = record
    except OSError as error:
        raise RunError(f"{path}: cannot read it: {error.strerror or error}") from None
    return {**empty, "count": len(steps), "torn": torn, "last": last, "steps": steps, "series": series}

"""Three cosmetics: skipped non-finite steps said once then counted, a progress line that keeps its
ETA and a useful bar at 80 columns, and markers instead of a made-up curve through a few points.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from optrun.runner.reporting import Progress
from optrun_cli.main import app
from optrun_cli.plot import chart
from optrun_cli.progress import RichReporter

BAR = "━╸╺"  # the characters rich draws a bar with
ETA = re.compile(r" ETA (\d+\.\ds|\d+m\d\ds|\d+h\d\dm)$")

# ---------------------------------------------------------------- 1. skipped non-finite steps

NAN_DATA = (
    "import tensorflow as tf\nimport keras\n"
    "def model():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name='d')])\n"
    "def data():\n"  # 10 batches a pass, every one but the first with a NaN target
    "    return [(tf.constant([[1.0]]), tf.constant([[1.0 if i == 0 else float('nan')]]))"
    " for i in range(10)]\n"
)


def test_skipped_steps_are_said_once_then_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 steps, 36 of them NaN, logged every 10: one line for the first, then one per interval."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("optrun.runner.reporting.SKIP_NOTE_EVERY_S", 0.0)  # throttled by the interval only
    (tmp_path / "nanmod.py").write_text(NAN_DATA)
    (tmp_path / "skip.yaml").write_text(
        "name: skip\nmodel: {builder: nanmod.py:model}\ndata: {builder: nanmod.py:data}\nloss: mse\n"
        "train: {max_steps: 40, on_nonfinite: skip}\ncheckpoint: {export: none}\n"
        "logging: {every_steps: 10}\n"
    )
    result = CliRunner().invoke(app, ["train", "skip.yaml", "--out", "run"])
    assert result.exit_code == 0, result.output
    said = [line for line in result.stdout.splitlines() if "non-finite" in line]
    assert len(said) == 5, result.stdout  # the first at once, then steps 10, 20, 30 and 40
    assert said[0].startswith("non-finite loss at step 2 (nan): update skipped"), said[0]
    assert said[1:] == [
        f"skipped {count} non-finite steps so far (last at step {last})"
        for count, last in ((9, 10), (18, 20), (27, 30), (36, 40))
    ]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["skipped_nonfinite"] == 36
    assert re.search(r"│ skipped_nonfinite\s+│ 36\s+│", result.stdout), result.stdout


class Notes:
    """A reporter that keeps its notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def start(self, kind: str, total: int | None, first_step: int) -> None: ...

    def step(self, step: int, loss: float, logged: bool) -> None: ...

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_skips_within_the_throttle_are_summed_up_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.runner.reporting import NonfiniteSkips

    monkeypatch.setattr("optrun.runner.reporting.SKIP_NOTE_EVERY_S", 3600.0)
    reporter = Notes()
    skips = NonfiniteSkips(reporter)
    skips.skipped(3, 0.25)  # a finite loss: a gradient was not
    for step in range(4, 900):
        skips.skipped(step, float("inf"))
        if step % 10 == 0:
            skips.logged()
    skips.close()
    assert reporter.notes == [
        "non-finite gradient at step 3 (loss 0.25): update skipped; later ones are counted",
        "skipped 897 non-finite steps in all (last at step 899)",
    ]
    quiet = Notes()
    NonfiniteSkips(quiet).close()
    assert quiet.notes == []


# ---------------------------------------------------------------- 2. the progress line's width


def frame(width: int, kind: str = "train") -> str:
    """The bar's line, drawn at ``width`` columns, after a few updates of a terminal reporter."""
    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=True, width=width))
    total = 300 if kind == "train" else 100
    reporter.start(kind, total, 0)
    for step in (100, 200, 253):
        time.sleep(0.02)  # rich's ETA needs the steps to take some time
        if kind == "train":
            event = Progress("train", step, total, 0.0200608, False, 1.0, epoch=8, epochs=10)
        else:
            event = Progress("minimize", step // 5, total, 0.0200608, False, 1.0, nfev=step, violation=0.0)
        reporter.progress(event)
    # In colour, as on a terminal: without a colour system rich leaves the bar's unfilled part out.
    screen = Console(width=width, record=True, file=io.StringIO(), force_terminal=True)
    screen.print(reporter._progress)
    reporter.close()
    return screen.export_text().rstrip("\n")


def bar_width(line: str) -> int:
    return len(line) - len(line.lstrip(BAR))


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_line_keeps_its_eta_and_a_useful_bar(width: int) -> None:
    line = frame(width)
    assert "…" not in line and len(line.rstrip()) <= width, line
    assert ETA.search(line.rstrip()), line
    assert bar_width(line) >= 20, line
    assert "step 253/300" in line and "loss 0.0200608" in line, line
    if width == 80:  # the lowest-ranked fields made way for the bar
        assert "steps/s" not in line and "epoch" not in line, line
    if width == 120:
        assert "epoch 8/10" in line and "steps/s" in line and "elapsed" in line, line


@pytest.mark.parametrize("width", [30, 40, 60])
def test_narrow_lines_hide_the_bar_before_the_eta(width: int) -> None:
    line = frame(width).rstrip()
    assert "…" not in line and len(line) <= width and ETA.search(line), line
    assert bar_width(line) >= 20 or bar_width(line) == 0, line
    assert "step 253/300" in line, line
    if width < 45:
        assert bar_width(line) == 0, line


def test_minimize_line_at_80_columns() -> None:
    line = frame(80, "minimize").rstrip()
    assert "…" not in line and len(line) <= 80 and bar_width(line) >= 20, line
    assert "iteration 50/100" in line and "loss 0.0200608" in line and "violation 0" in line, line


# ---------------------------------------------------------------- 3. few points: markers


def dots(lines: list[str]) -> int:
    """How many braille dots the chart rows set."""
    return sum(bin(ord(c) - 0x2800).count("1") for line in lines for c in line if 0x2800 <= ord(c) <= 0x28FF)


def test_two_points_are_markers_not_a_curve() -> None:
    lines = chart([10, 20], [1.0, 0.5], width=60, height=8)
    rows = [line.split("┤", 1)[-1].split("│", 1)[-1] for line in lines[:8]]
    # A marker (a full cell) at each point, at the chart's two corners...
    assert rows[0].startswith("⣿") and rows[7].rstrip().endswith("⣿"), "\n".join(lines)
    assert sum(row.count("⣿") for row in rows) == 2, "\n".join(lines)
    # ...joined by a dotted line, not a solid one: a solid line sets a dot in each of 120 columns.
    assert dots(rows) - 2 * 8 <= 40, "\n".join(lines)
    assert lines[-1].split() == ["10", "20"]


def test_enough_points_are_a_line() -> None:
    steps = list(range(0, 80, 10))  # 8 points: the threshold
    lines = chart(steps, [1.0 / (1 + s) for s in steps], width=60, height=8)
    rows = [line.split("┤", 1)[-1].split("│", 1)[-1] for line in lines[:8]]
    assert not any("⣿" in row for row in rows)
    # A solid line: every one of the 60 cell columns has a dot.
    assert all(any(len(row) > i and row[i] != " " for row in rows) for i in range(60)), "\n".join(lines)


def test_one_point_is_one_marker() -> None:
    lines = chart([5], [3.0], width=10, height=4)
    assert sum(line.count("⣿") for line in lines) == 1, "\n".join(lines)


# ---------------------------------------------------------------- 4. what a resumed run says first


def first_frame(width: int, kind: str, total: int, first_step: int) -> str:
    """The bar's line on a terminal before the first step of a run that starts at ``first_step``."""
    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=True, width=width))
    reporter.start(kind, total, first_step)
    screen = Console(width=width, record=True, file=io.StringIO(), force_terminal=True)
    screen.print(reporter._progress)
    reporter.close()
    return screen.export_text().rstrip()


def test_a_resumed_run_on_a_terminal_says_where_it_resumes_not_starting() -> None:
    line = first_frame(120, "train", 20300, 20000)
    assert "train: resuming at step 20000, 300 steps left of 20300" in line, line
    assert "starting" not in line, line
    assert "minimize: resuming at iteration 4, 6 iterations left of maxiter 10" in first_frame(
        120, "minimize", 10, 4
    )
    assert "train: starting, 300 steps" in first_frame(120, "train", 300, 0)


def test_start_lines_count_one_step_and_none_left() -> None:
    from optrun_cli.progress import start_line

    assert start_line("train", 1, 0) == "train: starting, 1 step"
    assert start_line("train", 20001, 20000) == "train: resuming at step 20000, 1 step left of 20001"
    assert start_line("train", 500, 1100) == "train: resuming at step 1100, no steps left of 500"
    assert (
        start_line("minimize", 10, 12)
        == "minimize: resuming at iteration 12, no iterations left of maxiter 10"
    )


def test_resuming_past_max_steps_says_how_far_to_raise_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nanmod.py").write_text(NAN_DATA)
    (tmp_path / "r.yaml").write_text(
        "name: r\nmodel: {builder: nanmod.py:model}\ndata: {builder: nanmod.py:data}\nloss: mse\n"
        "train: {max_steps: 12, on_nonfinite: skip}\ncheckpoint: {export: none}\n"
    )
    runner = CliRunner()
    assert runner.invoke(app, ["train", "r.yaml", "--out", "run", "-q"]).exit_code == 0
    again = runner.invoke(app, ["train", "r.yaml", "--out", "run", "--resume", "--set", "train.max_steps=5"])
    assert again.exit_code == 0, again.output
    lines = again.stdout.splitlines()  # one line each, however narrow the (non-terminal) console
    assert "train: resuming at step 12, no steps left of 5" in lines, again.stdout
    assert (
        "the run already finished at step 12; nothing to do (raise train.max_steps above 12 to go on)"
        in lines
    ), again.stdout

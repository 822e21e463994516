"""How a run ended, in words: minimize's statuses from scipy's codes, exit codes, exports and the summary.

A budget reached is its own status and exits 0 (as train at ``max_steps``);
a stall or unmet constraints exit 1 with the word and scipy's code and message;
a run that went non-finite exports nothing. Tiny problems through the CLI
in-process, and the mapping against scipy's documented codes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from optrun.runner.common import Interrupted
from optrun.runner.outcome import (
    BUDGET_REACHED,
    CONVERGED,
    ERROR,
    INFEASIBLE,
    INTERRUPTED,
    NONFINITE,
    STALLED,
    STOP_STATUSES,
    classify,
    succeeded,
)
from optrun.runs.reading import STATUSES, status_of
from optrun_cli.errors import error_boundary
from optrun_cli.main import app
from optrun_cli.progress import start_line

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # one table row per result field: lines to match whole

PROBLEM = """\
import keras
import tensorflow as tf

def vector():
    return tf.Variable([-1.2, 1.0], dtype=tf.float64, name="v")

def rosenbrock(v):
    return 100.0 * tf.square(v[1] - v[0] ** 2) + tf.square(1.0 - v[0])

def at_least_one(v):
    return v[0] - 1.0

def at_most_zero(v):
    return -v[0]

def dense():
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

def nan_loss(model):
    return tf.reduce_sum(model.trainable_variables[0]) + float("nan")

def nan_labels():
    return [(tf.constant([[1.0]]), tf.constant([[float("nan")]]))] * 3
"""
ROSENBROCK = "model: {builder: p.py:vector}\nloss: p.py:rosenbrock\ncheckpoint: {export: none}\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.py").write_text(PROBLEM)
    return tmp_path


def spec(name: str, body: str) -> str:
    Path(f"{name}.yaml").write_text(f"name: {name}\n{body}")
    return f"{name}.yaml"


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env=WIDE)


def result_of(run: str) -> dict[str, Any]:
    return json.loads((Path(run) / "result.json").read_text())


def row(output: str, key: str) -> str:
    """The text of one row of a summary table (``│ key │ text │``)."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == 2 and cells[0] == key:
            return cells[1]
    raise AssertionError(f"no row {key!r} in:\n{output}")


# ---------------------------------------------------------------- through the CLI


def test_budget_reached_is_its_own_status_and_exits_0() -> None:
    budget = spec("budget", ROSENBROCK + "minimize: {method: L-BFGS-B, options: {maxiter: 2}}\n")
    result = invoke("minimize", budget, "--out", "b")
    assert result.exit_code == 0, result.output
    record = result_of("b")
    assert (record["status"], record["success"], record["scipy_status"]) == (BUDGET_REACHED, True, 1)
    assert record["nit"] == 2 and record["message"] == "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
    assert row(result.stdout, "status") == (
        "budget_reached (scipy status 1: STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT)"
    )
    assert "│ message" not in result.stdout and "│ scipy_status" not in result.stdout  # folded in
    # The same words from the run directory, and the run listed as such.
    shown = invoke("show", "b")
    assert shown.exit_code == 0 and row(shown.stdout, "status").startswith("budget_reached (scipy status 1")
    assert invoke("show", "b", "-q").stdout.strip() == "budget_reached"
    [listed] = json.loads(invoke("runs", ".", "--json").stdout)
    assert listed["status"] == "budget_reached"


def test_a_resume_says_what_is_left_and_reaches_the_new_budget() -> None:
    budget = spec("budget", ROSENBROCK + "minimize: {method: L-BFGS-B, options: {maxiter: 2}}\n")
    assert invoke("minimize", budget, "--out", "b", "-q").exit_code == 0
    more = invoke("minimize", budget, "--out", "b", "--resume", "--set", "minimize.options.maxiter=4")
    assert more.exit_code == 0, more.output
    assert "minimize: resuming at iteration 2, 2 iterations left of maxiter 4" in more.stdout
    assert result_of("b")["status"] == BUDGET_REACHED and result_of("b")["nit"] == 4


def test_converged() -> None:
    result = invoke("minimize", spec("conv", ROSENBROCK + "minimize: {method: L-BFGS-B}\n"), "--out", "c")
    assert result.exit_code == 0, result.output
    record = result_of("c")
    assert (record["status"], record["success"], record["scipy_status"]) == (CONVERGED, True, 0)
    assert row(result.stdout, "status") == f"converged (scipy status 0: {record['message']})"
    assert invoke("show", "c", "-q").stdout.strip() == "succeeded"


def test_a_budget_used_up_short_of_feasibility_is_infeasible() -> None:
    body = ROSENBROCK + (
        "minimize:\n  method: SLSQP\n  options: {maxiter: 1}\n"
        "  constraints: {inequalities: [p.py:at_least_one, p.py:at_most_zero]}\n"
    )
    result = invoke("minimize", spec("short", body), "--out", "s", "--json")
    assert result.exit_code == 1, result.output
    answer = json.loads(result.stdout)
    # scipy says only "Iteration limit reached" (9); v[0] >= 1 and v[0] <= 0 cannot both hold.
    assert (answer["status"], answer["scipy_status"], answer["exit_code"]) == (INFEASIBLE, 9, 1)
    assert answer["constraint_residuals"]["violation"] > 0.1


def test_incompatible_constraints_are_infeasible_and_exit_1() -> None:
    body = ROSENBROCK + (
        "minimize:\n  method: SLSQP\n  options: {maxiter: 50}\n"
        "  constraints: {inequalities: [p.py:at_least_one, p.py:at_most_zero]}\n"
    )
    result = invoke("minimize", spec("infeasible", body), "--out", "i")
    assert result.exit_code == 1, result.output
    record = result_of("i")
    # scipy 1.17 says "Positive directional derivative for linesearch" (8) here; 4 is "incompatible".
    assert (record["status"], record["success"]) == (INFEASIBLE, False) and record["scipy_status"] in (4, 8)
    assert record["constraint_residuals"]["violation"] > 0.1
    assert row(result.stdout, "status") == (
        f"infeasible (scipy status {record['scipy_status']}: {record['message']})"
    )
    assert invoke("show", "i", "-q").stdout.strip() == "failed"


def test_a_nan_loss_exports_nothing_and_says_why() -> None:
    body = "model: {builder: p.py:dense}\nloss: p.py:nan_loss\ncheckpoint: {export: weights_h5}\n"
    result = invoke("minimize", spec("nan", body), "--out", "n")
    assert result.exit_code == 1
    assert not (Path("n") / "export").exists()
    record = result_of("n")
    assert record["status"] == NONFINITE and record["export"] is None
    assert record["export_skipped"].startswith("not written: the run diverged")
    checkpoint = record["export_skipped"].split("the checkpoint ", 1)[1].split(" ", 1)[0]
    assert Path(f"{checkpoint}.index").is_file()
    shown = invoke("show", "n")  # the failed run printed its error, not a table: show has it
    assert row(shown.stdout, "export") == record["export_skipped"]


def test_a_diverged_training_run_exports_nothing() -> None:
    body = (
        "model: {builder: p.py:dense}\ndata: {builder: p.py:nan_labels}\nloss: mse\n"
        "train: {max_steps: 3, on_nonfinite: stop}\ncheckpoint: {export: weights_h5}\n"
    )
    result = invoke("train", spec("diverged", body), "--out", "t")
    assert result.exit_code == 1, result.output
    record = result_of("t")
    assert record["status"] == "diverged" and record["export"] is None
    assert not (Path("t") / "export").exists()
    # NaN from the first step: that step is not counted, and the checkpoint holds the start weights.
    assert "t/checkpoints/ckpt-0" in record["export_skipped"] and Path("t/checkpoints/ckpt-0.index").is_file()
    assert row(result.stdout, "export") == record["export_skipped"]


def test_summary_title_unpadded_and_values_as_json() -> None:
    result = invoke("minimize", spec("conv", ROSENBROCK + "minimize: {method: L-BFGS-B}\n"), "--out", "c")
    assert "optrun minimize: conv -> c\n" in result.stdout
    assert not [line for line in result.stdout.splitlines() if line != line.rstrip()]
    solution = row(result.stdout, "solution")
    assert solution.startswith('{"v": [') and json.loads(solution)["v"] == result_of("c")["solution"]["v"]
    assert row(result.stdout, "export") == "-" and "None" not in result.stdout


def test_show_reads_a_result_json_from_before_the_words() -> None:
    budget = spec("budget", ROSENBROCK + "minimize: {method: L-BFGS-B, options: {maxiter: 2}}\n")
    assert invoke("minimize", budget, "--out", "b", "-q").exit_code == 0
    old = {k: v for k, v in result_of("b").items() if k != "scipy_status"} | {"status": 1, "success": False}
    (Path("b") / "result.json").write_text(json.dumps(old))
    shown = invoke("show", "b")
    assert shown.exit_code == 0, shown.output
    assert row(shown.stdout, "status") == "1" and row(shown.stdout, "message").startswith("STOP: TOTAL")
    assert invoke("show", "b", "-q").stdout.strip() == "failed"
    assert json.loads(invoke("runs", ".", "--json").stdout)[0]["status"] == "failed"


def test_the_interrupt_line_says_interrupted_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as stopped, error_boundary():
        raise Interrupted(130, Path("runs/x"))
    assert stopped.value.exit_code == 130
    err = capsys.readouterr().err
    assert "interrupted: checkpoint and result.json written to runs/x" in err
    assert "interrupted; " not in err


def test_start_lines() -> None:
    assert start_line("train", 300, 0) == "train: starting, 300 steps"
    assert start_line("train", 20300, 20000) == "train: resuming at step 20000, 300 steps left of 20300"
    assert start_line("train", None, 5) == "train: resuming at step 5"
    assert start_line("minimize", 10, 0) == "minimize: starting, maxiter 10"
    assert start_line("minimize", None, 0) == "minimize: starting"
    assert (
        start_line("minimize", 10, 4) == "minimize: resuming at iteration 4, 6 iterations left of maxiter 10"
    )


# ---------------------------------------------------------------- the mapping


@pytest.mark.parametrize(
    ("method", "code", "success", "message", "expected"),
    [
        ("L-BFGS-B", 0, True, "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL", CONVERGED),
        ("L-BFGS-B", 1, False, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT", BUDGET_REACHED),
        ("L-BFGS-B", 1, False, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT", BUDGET_REACHED),
        ("L-BFGS-B", 2, False, "ABNORMAL: ", STALLED),  # the line search failed
        ("L-BFGS-B", 2, False, "WARNING: ROUNDING ERRORS PREVENT PROGRESS", STALLED),
        ("L-BFGS-B", 2, False, "ERROR: NO FEASIBLE SOLUTION", INFEASIBLE),
        ("L-BFGS-B", 2, False, "ERROR: FACTR < 0", ERROR),
        ("L-BFGS-B", 2, False, "STOP: CALLBACK REQUESTED HALT", INTERRUPTED),
        ("SLSQP", 0, True, "Optimization terminated successfully", CONVERGED),
        ("SLSQP", 2, False, "More equality constraints than independent variables", INFEASIBLE),
        ("SLSQP", 4, False, "Inequality constraints incompatible", INFEASIBLE),
        ("SLSQP", 6, False, "Singular matrix C in LSQ subproblem", STALLED),
        ("SLSQP", 8, False, "Positive directional derivative for linesearch", STALLED),
        ("SLSQP", 9, False, "Iteration limit reached", BUDGET_REACHED),
        ("trust-constr", 0, False, "The maximum number of function evaluations is exceeded.", BUDGET_REACHED),
        ("trust-constr", 1, True, "`gtol` termination condition is satisfied.", CONVERGED),
        ("trust-constr", 2, True, "`xtol` termination condition is satisfied.", CONVERGED),
        ("trust-constr", 3, False, "`callback` raised `StopIteration`.", INTERRUPTED),
        ("trust-constr", 4, False, "Constraint violation exceeds 'gtol'", CONVERGED),  # violation 0 here
        ("TNC", -1, False, "Infeasible (lower bound > upper bound)", INFEASIBLE),
        ("TNC", 1, True, "Converged (|f_n-f_(n-1)| ~= 0)", CONVERGED),
        ("TNC", 3, False, "Max. number of function evaluations reached", BUDGET_REACHED),
        ("TNC", 4, False, "Linear search failed", STALLED),
        (
            "Nelder-Mead",
            1,
            False,
            "Maximum number of function evaluations has been exceeded.",
            BUDGET_REACHED,
        ),
        ("Nelder-Mead", 2, False, "Maximum number of iterations has been exceeded.", BUDGET_REACHED),
        ("Powell", 2, False, "Maximum number of iterations has been exceeded.", BUDGET_REACHED),
        ("Powell", 4, False, "The result is outside of the provided bounds.", INFEASIBLE),
        ("BFGS", 1, False, "Maximum number of iterations has been exceeded.", BUDGET_REACHED),
        ("BFGS", 2, False, "Desired error not necessarily achieved due to precision loss.", STALLED),
        ("CG", 3, False, "NaN result encountered.", NONFINITE),
        ("Newton-CG", 1, False, "Warning: Maximum number of iterations has been exceeded.", BUDGET_REACHED),
        ("trust-ncg", 2, False, "A bad approximation caused failure to predict improvement.", STALLED),
        (
            "COBYLA",
            0,
            True,
            "Return from COBYLA because the trust region radius reaches its lower bound.",
            CONVERGED,
        ),
        (
            "COBYLA",
            3,
            False,
            "Return from COBYLA because the objective function has been evaluated MAXFUN times.",
            BUDGET_REACHED,
        ),
        ("COBYQA", 6, False, "The maximum number of iterations has been exceeded.", BUDGET_REACHED),
        ("my-own-method", 7, False, "Iteration limit reached", BUDGET_REACHED),  # not in the table
        ("my-own-method", 7, False, "gave up", STALLED),
    ],
)
def test_scipy_codes_map_to_words(method: str, code: int, success: bool, message: str, expected: str) -> None:
    assert classify(method, code, success, message, fun=1.0, violation=0.0) == expected
    assert succeeded(expected) == (expected in (CONVERGED, BUDGET_REACHED))


def test_the_point_decides_what_the_code_leaves_open() -> None:
    # SLSQP's 8 at a point that violates the constraints: what incompatible constraints give.
    assert classify("SLSQP", 8, False, "Positive directional", fun=0.6, violation=0.8) == INFEASIBLE
    assert classify("SLSQP", 8, False, "Positive directional", fun=0.6, violation=1e-9) == STALLED
    # COBYLA's "converged" that scipy calls a failure: its constraints were not met.
    unmet = "Did not converge to a solution satisfying the constraints."
    assert classify("COBYLA", 0, False, unmet, fun=1.0, violation=0.5) == INFEASIBLE
    # A non-finite loss, whatever the code.
    assert classify("L-BFGS-B", 0, True, "CONVERGENCE", fun=float("nan")) == NONFINITE
    assert classify("slsqp", 9, False, "Iteration limit reached", fun=float("inf")) == NONFINITE
    # A budget used up short of feasibility is no answer (exit 1): raise it and --resume.
    assert classify("SLSQP", 9, False, "Iteration limit reached", fun=1.0, violation=2.0) == INFEASIBLE
    assert classify("SLSQP", 9, False, "Iteration limit reached", fun=1.0, violation=1e-9) == BUDGET_REACHED
    assert classify("trust-constr", 1, False, "maxiter exceeded", fun=1.0, violation=2.5) == INFEASIBLE


def test_the_words() -> None:
    assert set(STOP_STATUSES) == {
        "converged", "budget_reached", "stalled", "infeasible", "nonfinite", "interrupted", "error"
    }  # fmt: skip
    assert "budget_reached" in STATUSES
    assert status_of({"status": "budget_reached", "success": True}, locked=False) == "budget_reached"
    assert status_of({"status": "converged", "success": True}, locked=False) == "succeeded"
    assert status_of({"status": 1, "success": False}, locked=False) == "failed"  # from before the words
    assert status_of({"status": 0, "success": True}, locked=False) == "succeeded"

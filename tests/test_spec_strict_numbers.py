"""A boolean is never read as a number in a spec, and scipy options sized by the number of variables
are judged against the model's.

1. YAML reads true, yes and on as booleans, and pydantic would take True for 1.0: every number field
   of the spec refuses one, alone, in a union or in a list, at its key and line.
2. Nelder-Mead's ``initial_simplex`` (and Powell's ``direc``, BFGS's ``hess_inv0``, ...) is checked
   against the model's number of variables once the model is built, not against a 1-variable trial.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
import tensorflow as tf
from pydantic import BaseModel
from typer.testing import CliRunner

import optrun
from optrun.errors import ConfigError, InvalidArgumentError
from optrun.interfaces.method_options import check_options, check_sizes
from optrun.spec.base import NUMBERS
from optrun.spec.experiment import ExperimentSpec
from optrun.spec.load import load_spec
from optrun_cli.main import app
from tests.conftest import findings, module_folder, write_spec

runner = CliRunner()

MODULE = """
import tensorflow as tf

def vector():
    return tf.Variable([7.0, 7.0], name="vector")

def sq(v):
    return tf.reduce_sum(v * v)
"""
HEAD = "name: t\nmodel: {builder: m.py:vector}\nloss: m.py:sq\n"  # lines 1-3; minimize: is line 4
BOOLEAN = "True is a boolean, not a number"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return module_folder(tmp_path, monkeypatch, MODULE)


def _errors(result: Any) -> list[tuple[str, int | None, str]]:
    return [(e["path"], e["line"], e["message"]) for e in findings(result.stdout) if e["severity"] == "error"]


# 1. Booleans for numbers.


def _types(annotation: Any) -> list[Any]:
    """Every type an annotation holds: unions, Annotated, lists and mappings opened."""
    if typing.get_origin(annotation) is Annotated:
        return _types(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list, dict):
        return [inner for arg in typing.get_args(annotation) for inner in _types(arg)]
    return [annotation]


def test_every_number_field_of_the_spec_refuses_a_boolean() -> None:
    models, seen, numeric = [ExperimentSpec], set(), set()
    while models:
        model = models.pop()
        seen.add(model)
        for name, field in model.model_fields.items():
            inner = _types(field.annotation)
            if int in inner or float in inner:
                numeric.add(f"{model.__name__}.{name}")
                assert name in NUMBERS, f"{model.__name__}.{name} takes a number: add it to NUMBERS"
            nested = [t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)]
            models += [t for t in nested if t not in seen]
    # The fields the reviewer found, and the ones the search turned up besides.
    assert {"MinimizeSpec.tol", "BoundsSpec.high", "VariableClippingSpec.dims"} <= numeric
    assert {"MultiWorkerStrategySpec.heartbeat_timeout_s", "SweepSpec.timeout_s"} <= numeric


@pytest.mark.parametrize(
    ("minimize", "place", "line"),
    [
        ("  tol: true\n  options: {maxiter: 3}\n", "minimize.tol", 5),
        ("  constraints:\n    bounds:\n      vector: [yes, null]\n", "minimize.constraints.bounds.vector", 7),
        (
            "  constraints:\n    bounds:\n      vector:\n        low: -1\n        high:\n"
            "          - 0.8\n          - on\n",
            "minimize.constraints.bounds.vector.high[1]",
            11,
        ),
    ],
)
def test_validate_refuses_a_boolean_for_a_number_at_its_key(
    folder: Path, minimize: str, place: str, line: int
) -> None:
    spec = write_spec(folder, HEAD + "minimize:\n" + minimize)
    result = runner.invoke(app, ["validate", spec, "--json"])
    assert result.exit_code == 2, result.output
    assert _errors(result) == [(place, line, BOOLEAN)]


def test_minimize_refuses_a_boolean_tol_before_it_runs(folder: Path) -> None:
    spec = write_spec(folder, HEAD + "minimize: {tol: true, options: {maxiter: 3}}\n")
    result = runner.invoke(app, ["minimize", spec, "--out", "run"])
    assert result.exit_code == 2, result.output
    assert f"minimize.tol: {BOOLEAN} (line 4)" in result.output
    assert not (folder / "run").exists()


@pytest.mark.parametrize(
    ("extra", "place", "line"),
    [
        (
            "train:\n  max_steps: 1\n  optimizer:\n    wrappers:\n"
            "      - {kind: variable_clipping, vars: [v], dims: [0, yes], max_norm: 1}\n",
            "train.optimizer.wrappers[0].dims[1]",
            8,
        ),
        ("checkpoint: {every_seconds: on}\n", "checkpoint.every_seconds", 4),
        ("strategy: {kind: multi_worker, heartbeat_timeout_s: yes}\n", "strategy.heartbeat_timeout_s", 4),
        ("sweep: {timeout_s: true}\n", "sweep.timeout_s", 4),
    ],
)
def test_the_other_number_fields_refuse_a_boolean(tmp_path: Path, extra: str, place: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        load_spec(write_spec(tmp_path, HEAD + extra))
    assert [(p.path, p.line, p.message) for p in caught.value.problems] == [(place, line, BOOLEAN)]


def test_false_is_no_number_either(tmp_path: Path) -> None:
    text = HEAD + "minimize: {constraints: {bounds: {vector: {low: [0, false]}}}}\n"
    with pytest.raises(ConfigError) as caught:
        load_spec(write_spec(tmp_path, text))
    [problem] = caught.value.problems
    assert (problem.path, problem.message) == (
        "minimize.constraints.bounds.vector.low[1]",
        "False is a boolean, not a number",
    )


def test_numbers_are_still_numbers(tmp_path: Path) -> None:
    text = HEAD + "minimize:\n  tol: 0\n  constraints: {bounds: {vector: {low: [0, -1.5], high: 2}}}\n"
    spec = load_spec(write_spec(tmp_path, text)).spec
    assert spec.minimize is not None and spec.minimize.tol == 0.0
    bounds = spec.minimize.constraints.bounds["vector"]
    assert (bounds.low, bounds.high) == ([0, -1.5], 2)


# 2. Options sized by the number of variables.

SIMPLEX = [[7.0, 7.0], [8.0, 7.0], [7.0, 8.0]]  # 3 points of 2 values: for 2 variables


@pytest.mark.parametrize(
    ("method", "key", "two"),
    [
        ("Nelder-Mead", "initial_simplex", SIMPLEX),
        ("Powell", "direc", [[1.0, 0.0], [0.0, 1.0]]),
        ("BFGS", "hess_inv0", [[1.0, 0.0], [0.0, 1.0]]),
        ("Newton-CG", "eps", [1e-8, 1e-8]),
    ],
)
def test_sized_options_are_tried_on_as_many_variables_as_they_are_for(
    method: str, key: str, two: Any
) -> None:
    name = method.lower()
    check_options(method, name, {key: two, "maxiter": 5})  # was tried on 1 variable, and refused
    check_sizes(name, {key: two}, 2)
    with pytest.raises(
        InvalidArgumentError, match=rf"options\['{key}'\] is for 2 variables .* has 3 variables"
    ):
        check_sizes(name, {key: two}, 3)


def test_a_simplex_that_fits_no_number_of_variables_is_refused_without_the_model() -> None:
    with pytest.raises(InvalidArgumentError, match=r"shape \(n \+ 1, n\).*got \[\[1, 2\], \[2, 3\]\]"):
        check_options("Nelder-Mead", "nelder-mead", {"initial_simplex": [[1, 2], [2, 3]]})
    check_sizes("newton-cg", {"eps": 1e-8}, 5)  # one number: for every variable


def _nelder_mead(simplex: Any) -> str:
    return (
        HEAD + f"minimize:\n  method: Nelder-Mead\n  options:\n    initial_simplex: {json.dumps(simplex)}\n"
    )


def test_validate_checks_the_simplex_against_the_model(folder: Path) -> None:
    good = runner.invoke(app, ["validate", write_spec(folder, _nelder_mead(SIMPLEX))])
    assert good.exit_code == 0, good.output  # was: "Size of initial_simplex is not consistent with x0"
    bad = runner.invoke(app, ["validate", write_spec(folder, _nelder_mead([[1.0], [2.0]])), "--json"])
    assert bad.exit_code == 2, bad.output  # was: passed, and the run then failed
    [(place, line, message)] = _errors(bad)
    assert (place, line) == ("minimize.options.initial_simplex", 7)
    assert message.startswith(
        "options['initial_simplex'] is for 1 variable (shape (2, 1)), but the problem has 2"
    )
    assert "give an array of shape (3, 2)" in message


def test_minimize_runs_from_the_simplex_given(folder: Path) -> None:
    # f(v) = |v|^2 is 0 at (0, 0) alone, a vertex of the simplex: Nelder-Mead never lets its best
    # vertex go for a worse one, so it ends exactly there (from the model's start (7, 7) it could
    # not reach exactly 0).
    spec = write_spec(folder, _nelder_mead([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    result = runner.invoke(app, ["minimize", spec, "--out", "run", "--json", "-q"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert (outcome["status"], outcome["method"]) == ("converged", "Nelder-Mead")
    assert outcome["solution"]["vector"] == [0.0, 0.0] and outcome["fun"] == 0.0


def test_minimize_refuses_a_simplex_for_another_number_of_variables_before_it_runs(folder: Path) -> None:
    spec = write_spec(folder, _nelder_mead([[1.0], [2.0]]))
    result = runner.invoke(app, ["minimize", spec, "--out", "run"])
    assert result.exit_code == 2, result.output
    assert "minimize.options.initial_simplex: options['initial_simplex'] is for 1 variable" in result.output
    assert "(line 7)" in result.output and not (folder / "run").exists()


def test_the_interface_checks_a_sized_option_against_its_variables() -> None:
    v = tf.Variable([7.0, 7.0], dtype=tf.float64)
    loss = lambda: tf.reduce_sum(v * v)
    # |v|^2 is 0 only at (0, 0), a vertex of this simplex: Nelder-Mead keeps its best vertex.
    result = optrun.ScipyOptimizerInterface(
        loss, method="Nelder-Mead", options={"initial_simplex": [[0, 0], [1, 0], [0, 1]]}
    ).minimize()
    assert v.numpy().tolist() == [0.0, 0.0] and result.fun == 0.0
    with pytest.raises(optrun.OptrunError, match=r"problem has 2 variables .* shape \(3, 2\)"):
        optrun.ScipyOptimizerInterface(loss, method="Nelder-Mead", options={"initial_simplex": [[1], [2]]})

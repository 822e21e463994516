"""``method: ipopt`` in the CLI: the sample spec end to end, ``--method ipopt``, IPOPT's options
checked up front, the missing extra, a budget, Ctrl-C and ``--resume``."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from optrun_cli.main import app

pytest.importorskip("cyipopt")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "configs" / "constrained_ipopt.yaml"
SEED = ROOT / "examples" / "seed.py"
INSTALL = (
    'IPOPT needs the ipopt extra: pip install "/path/to/optrun[ipopt]" from a checkout, or just its '
    'package: pip install "cyipopt-wheels>=1.7.0.dev0"'
)


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def result_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "result.json").read_text())


def seed_spec(tmp_path: Path, options: str) -> Path:
    """The seed's constrained example (answer [1, 1]) with ``method: ipopt`` and ``options``."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"""name: seed-ipopt
model: {{builder: {SEED}:vector}}
loss: {SEED}:sum_of_squares
minimize:
  method: ipopt
  options: {options}
  constraints:
    equalities: [{SEED}:y_is_one]
    inequalities: [{SEED}:x_at_least_one]
checkpoint: {{export: none}}
logging: {{every_steps: 1}}
"""
    )
    return spec


def test_sample_spec_converges_to_the_hand_computed_optimum(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = cli("minimize", str(SAMPLE), "--out", str(run))
    assert out.exit_code == 0, out.output
    result = result_of(run)
    assert (result["status"], result["success"], result["ipopt_status"]) == ("converged", True, 0)
    assert result["method"] == "ipopt" and "scipy_status" not in result
    # min |v|^2, v[1] == 1, v[0] >= 1: v = [1, 1], f = 2; grad f + J^T mult_g = 0 gives mult_g = [-2, -2].
    np.testing.assert_allclose(result["solution"]["vector"], [1.0, 1.0], atol=1e-6)
    assert result["fun"] == pytest.approx(2.0, abs=1e-6)
    multipliers = result["multipliers"]
    np.testing.assert_allclose(multipliers["mult_g"], [-2.0, -2.0], atol=1e-6)
    np.testing.assert_allclose(multipliers["mult_x_L"], [0.0, 0.0], atol=1e-6)  # v >= 0 is not active
    assert multipliers["mult_x_U"] == [0.0, 0.0]
    # Each iteration's line gives IPOPT's barrier parameter; the end names IPOPT's message.
    assert re.search(
        r"minimize iteration 2/100  nfev \d+  loss \S+  violation \S+  mu \S+  elapsed", out.output
    )
    assert (
        f"stopped at iteration {result['nit']} of 100: converged (IPOPT: Algorithm terminated" in out.output
    )
    assert "converged (IPOPT status 0: Algorithm terminated" in " ".join(out.output.split())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(line["mu"] > 0 for line in lines[1:])  # every iteration's; the start point has none


def test_method_flag_on_the_built_in_default(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = cli("minimize", "--method", "IPOPT", "--maxiter", "50", "-q", "--out", str(run))
    assert out.exit_code == 0, out.output
    result = result_of(run)
    assert result["status"] == "converged" and result["method"] == "ipopt"
    np.testing.assert_allclose(result["solution"]["v"], [1.0, 1.0], atol=1e-6)


def test_a_misspelt_option_is_placed_with_a_did_you_mean(tmp_path: Path) -> None:
    spec = seed_spec(tmp_path, "{max_itr: 5}")
    out = cli("validate", str(spec), "--json")
    assert out.exit_code == 2
    (problem,) = [e for e in json.loads(out.stdout) if e["severity"] == "error"]
    assert (problem["path"], problem["line"]) == ("minimize.options.max_itr", 6)
    assert problem["message"] == "'max_itr' is not an IPOPT option; did you mean 'max_iter'?"
    # minimize says the same, before building anything, and writes nothing.
    run = cli("minimize", str(spec), "--out", str(tmp_path / "run"))
    assert run.exit_code == 2
    assert (
        "minimize.options.max_itr: 'max_itr' is not an IPOPT option; did you mean 'max_iter'? (line 6)"
        in (" ".join(run.output.split()))
    )
    assert not (tmp_path / "run").exists()


def test_bad_values_and_scipys_tol_are_each_placed(tmp_path: Path) -> None:
    spec = seed_spec(tmp_path, "{mu_strategy: adaptve, print_level: 99, maxiter: 3, max_iter: 4}")
    spec.write_text(spec.read_text().replace("  method: ipopt\n", "  method: ipopt\n  tol: 1e-3\n"))
    out = cli("validate", str(spec), "--json")
    assert out.exit_code == 2
    found = {e["path"]: e["message"] for e in json.loads(out.stdout) if e["severity"] == "error"}
    assert found == {
        "minimize.tol": "is scipy's tolerance, not IPOPT's; for ipopt, give it as minimize.options.tol",
        "minimize.options.mu_strategy": "must be one of monotone, adaptive; got 'adaptve': "
        "did you mean 'adaptive'?",
        "minimize.options.print_level": "must satisfy 0 <= print_level <= 12; got 99",
        "minimize.options.maxiter": "maxiter is IPOPT's max_iter, given too; keep one",
    }


def test_a_linear_solver_ipopt_cannot_load_is_placed(tmp_path: Path) -> None:
    spec = seed_spec(tmp_path, "{linear_solver: ma27}")
    out = cli("validate", str(spec), "--json")
    assert out.exit_code == 2
    (problem,) = [e for e in json.loads(out.stdout) if e["severity"] == "error"]
    assert (problem["path"], problem["line"]) == ("minimize.options.linear_solver", 6)
    assert problem["message"].startswith("is 'ma27', which IPOPT could not load: libhsl.so")
    run = cli("minimize", str(spec), "--out", str(tmp_path / "run"))
    assert run.exit_code == 2 and "options['hsllib']" in " ".join(run.output.split())
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["validate", "minimize"])
def test_without_the_extra_one_line_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.setitem(sys.modules, "cyipopt", None)  # import cyipopt raises ImportError
    extra = ["--out", str(tmp_path / "run")] if command == "minimize" else []
    out = cli(command, str(SAMPLE), *extra)
    assert out.exit_code == 2
    assert out.stderr.strip() == f"error: {INSTALL}"  # one line, no traceback
    assert not (tmp_path / "run").exists()


def test_an_iteration_budget_is_reached_not_failed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = cli("minimize", str(seed_spec(tmp_path, "{max_iter: 2}")), "-q", "--out", str(run))
    assert out.exit_code == 0, out.output
    result = result_of(run)
    assert (result["status"], result["success"], result["ipopt_status"], result["nit"]) == (
        "budget_reached",
        True,
        -1,
        2,
    )
    assert result["message"].startswith("Maximum number of iterations exceeded")


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ("{max_iter: 50}", ["--maxiter", "2"]),  # the sample spec's own spelling
        ("{maxiter: 50}", ["--set", "minimize.options.max_iter=2"]),
    ],
)
def test_an_override_of_the_limit_replaces_the_other_spelling(
    tmp_path: Path, options: str, flags: list[str]
) -> None:
    run = tmp_path / "run"
    out = cli("minimize", str(seed_spec(tmp_path, options)), "-q", "--out", str(run), *flags)
    assert out.exit_code == 0, out.output
    assert (result_of(run)["nit"], result_of(run)["ipopt_status"]) == (2, -1)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, iteration: int) -> None:
    """Ctrl-C while minimize reports ``iteration``: inside IPOPT's intermediate callback."""
    minimize = importlib.import_module("optrun.runner.minimize")  # the module, not the package's name
    real = minimize.report

    def report(reporter: Any, event: Any) -> None:
        if event.step == iteration and not event.final:
            raise KeyboardInterrupt
        real(reporter, event)

    monkeypatch.setattr(minimize, "report", report)


def steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_ctrl_c_checkpoints_and_resume_goes_on_to_the_optimum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, run = seed_spec(tmp_path, "{max_iter: 100, tol: 1e-10}"), tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        out = cli("minimize", str(spec), "-q", "--out", str(run))
    assert out.exit_code == 130, out.output
    assert (result_of(run)["status"], result_of(run)["nit"]) == ("interrupted", 2)
    assert (run / "checkpoints" / "ckpt-2.index").is_file()
    resumed = cli("minimize", str(spec), "-q", "--out", str(run), "--resume")
    assert resumed.exit_code == 0, resumed.output
    result = result_of(run)
    assert result["status"] == "converged" and result["nit"] > 2
    np.testing.assert_allclose(result["solution"]["vector"], [1.0, 1.0], atol=1e-6)
    logged = steps(run)
    assert logged == sorted(set(logged)) and logged[-1] == result["nit"]  # the count goes on


def test_resume_gets_what_is_left_of_max_iter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, run = seed_spec(tmp_path, "{max_iter: 4}"), tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        assert cli("minimize", str(spec), "-q", "--out", str(run)).exit_code == 130
    assert cli("minimize", str(spec), "-q", "--out", str(run), "--resume").exit_code == 0
    result = result_of(run)
    assert (result["status"], result["nit"], result["ipopt_status"]) == ("budget_reached", 4, -1)
    again = cli("minimize", str(spec), "--out", str(run), "--resume")
    assert (
        again.exit_code == 0
        and "already ran 4 iterations (max_iter: 4); nothing to do (raise max_iter above 4" in again.output
    )


def test_resume_counts_down_ipopts_default_max_iter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.interfaces.ipopt.interface import IpoptInterface

    spec, run = seed_spec(tmp_path, "{}"), tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        assert cli("minimize", str(spec), "-q", "--out", str(run)).exit_code == 130
    given: list[Any] = []
    real = IpoptInterface._minimize

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        given.append(kwargs["optimizer_kwargs"]["options"].get("max_iter"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(IpoptInterface, "_minimize", recording)
    assert cli("minimize", str(spec), "-q", "--out", str(run), "--resume").exit_code == 0
    assert given == [2998]  # IPOPT's 3000, less the 2 iterations done


def test_resume_takes_the_method_in_any_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, run = seed_spec(tmp_path, "{max_iter: 100}"), tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        assert cli("minimize", str(spec), "-q", "--out", str(run)).exit_code == 130
    resumed = cli("minimize", str(spec), "-q", "--out", str(run), "--resume", "--method", "IPOPT")
    assert resumed.exit_code == 0, resumed.output
    assert result_of(run)["status"] == "converged"

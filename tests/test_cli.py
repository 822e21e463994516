"""The placeholder CLI: CliRunner and the installed entry point, in a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def test_minimize_default_json() -> None:
    result = runner.invoke(app, ["minimize", "--method", "SLSQP", "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["success"] is True
    assert outcome["solution"]["v"] == pytest.approx([1.0, 1.0], abs=1e-6)
    assert outcome["fun"] == pytest.approx(2.0, abs=1e-6)


def test_minimize_unsupported_method_is_a_clean_usage_error() -> None:
    result = runner.invoke(app, ["minimize", "--method", "L-BFGS-B"])
    assert result.exit_code == 2
    assert "cannot handle equality or inequality constraints" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_minimize_failure_exit_code() -> None:
    result = runner.invoke(app, ["minimize", "--method", "SLSQP", "--maxiter", "1", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["success"] is False


def _entry_point() -> list[str]:
    exe = shutil.which("optrun", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "optrun"]


def test_installed_entry_point_subprocess() -> None:
    proc = subprocess.run(
        [*_entry_point(), "minimize", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["solution"]["v"] == pytest.approx([1.0, 1.0], abs=1e-6)
    bad = subprocess.run(
        [sys.executable, "-m", "optrun", "minimize", "--method", "bogus"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "got 'bogus'" in bad.stderr and "Traceback" not in bad.stderr


def test_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom cli.main import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
        "import optrun\nassert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr

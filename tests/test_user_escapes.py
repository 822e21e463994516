"""User code cannot escape the error boundary: sys.exit() and KeyboardInterrupt get the documented codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun_cli.main import app

runner = CliRunner()


def project(tmp: Path, builder: str, loss: str = "    return tf.reduce_sum(tf.square(v))\n") -> Path:
    (tmp / "m.py").write_text(
        f"import sys\nimport tensorflow as tf\ndef build():\n{builder}def loss(v):\n{loss}"
    )
    spec = tmp / "s.yaml"
    spec.write_text("name: esc\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    return spec


@pytest.mark.parametrize("command", ["validate", "minimize"])
def test_sys_exit_in_a_builder(tmp_path: Path, command: str) -> None:
    spec = project(tmp_path, "    sys.exit(3)\n")
    extra = [] if command == "validate" else ["--out", str(tmp_path / "run")]
    result = runner.invoke(app, [command, str(spec), "--json", *extra])
    assert result.exit_code == 2
    assert "m.py:build called sys.exit(3)" in result.stderr
    if command == "validate":  # a problem in the list, at the builder's line
        (problem,) = [e for e in json.loads(result.stdout) if e["severity"] != "skipped"]
        assert (problem["path"], problem["line"], problem["severity"]) == ("model.builder", 2, "error")
        assert "m.py:build called sys.exit(3)" in problem["message"]
    else:  # the run's answer places it as validate does
        answer = json.loads(result.stdout[result.stdout.index("{") :])
        assert answer["exit_code"] == 2
        (problem,) = answer["problems"]
        assert (problem["path"], problem["line"]) == ("model.builder", 2)
    assert not (tmp_path / "run").exists()


def test_keyboard_interrupt_while_loading(tmp_path: Path) -> None:
    spec = project(tmp_path, "    raise KeyboardInterrupt\n")
    result = runner.invoke(app, ["minimize", str(spec), "--json", "--out", str(tmp_path / "run")])
    assert result.exit_code == 130
    assert "interrupted in model.builder: m.py:build" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["exit_code"] == 130
    assert not (tmp_path / "run").exists()


def test_sys_exit_in_a_loss_is_named_by_its_frame(tmp_path: Path) -> None:
    spec = project(tmp_path, "    return tf.Variable([1.0], name='v')\n", "    sys.exit('bye')\n")
    result = runner.invoke(app, ["minimize", str(spec), "--json", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    # The loss is traced as written (it needs no AutoGraph rewrite): named by file, function and
    # line (m.py's sixth: two imports, build and its body, then loss and its body).
    assert "user code in m.py:loss (line 6) called sys.exit('bye')" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["success"] is False

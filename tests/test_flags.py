"""Flags behave as Typer/Click users expect: no value shown for flags, --version, -q everywhere."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from optrun.version import __version__
from optrun_cli.main import app

runner = CliRunner()


COMMANDS = ("train", "minimize", "validate", "schema", "version")


def test_flags_show_no_value_and_list_options_a_readable_one() -> None:
    for command in COMMANDS:
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"}).output
        for flag in ("--quiet", "--verbose", "--json", "--help"):  # the common flags, on every command
            line = next(line for line in text.splitlines() if flag in line)
            assert "<bool>" not in line, (command, line)
        assert "<list[str]>" not in text
    assert "KEY=VALUE" in runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"}).output
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "120"}).output
    for flag in ("--version", "--install-completion", "--show-completion", "--help"):  # Typer's own too
        line = next(line for line in top.splitlines() if flag in line)
        assert "<bool>" not in line, line


def test_version_flag_and_command() -> None:
    assert runner.invoke(app, ["--version"]).output.strip() == __version__
    assert runner.invoke(app, ["version"]).output.strip() == __version__
    assert json.loads(runner.invoke(app, ["version", "--json"]).stdout) == {"version": __version__}


def test_schema_write_is_atomic_and_speaks_json(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    done = runner.invoke(app, ["schema", "--write", str(target), "--json"])
    assert done.exit_code == 0
    assert json.loads(done.stdout) == {
        "written": str(target),
        "modeline": f"# yaml-language-server: $schema={target}",
    }
    assert json.loads(target.read_text())["title"] == "ExperimentSpec"
    quiet = runner.invoke(app, ["schema", "--write", str(target), "-q"])
    assert (quiet.exit_code, quiet.stdout) == (0, "")
    refused = runner.invoke(app, ["schema", "--write", str(tmp_path / "no" / "s.json"), "--json"])
    assert refused.exit_code == 2 and "cannot write the schema: No such file or directory" in refused.stderr
    assert json.loads(refused.stdout)["exit_code"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]  # no temporary file left


def test_a_flag_given_a_value_is_explained(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--force", "true"])
    assert result.exit_code == 2 and "flags take none: write --force, not --force true" in result.stderr


def test_validate_takes_quiet(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import tensorflow as tf\ndef build():\n    return tf.Variable([1.0], name='v')\n"
        "def loss(v):\n    return tf.reduce_sum(v * v)\n"
    )
    spec = tmp_path / "s.yaml"
    spec.write_text("name: q\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    result = runner.invoke(app, ["validate", str(spec), "-q"])
    assert result.exit_code == 0 and result.stdout == ""

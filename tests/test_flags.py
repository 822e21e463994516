"""Flags behave as Typer/Click users expect: no value shown for flags, --version, -q everywhere."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from optrun import __version__
from optrun_cli.main import app

runner = CliRunner()


def test_flags_show_no_value_and_list_options_a_readable_one() -> None:
    for command in ("train", "minimize", "validate"):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"}).output
        for flag in ("--quiet", "--verbose", "--json"):
            line = next(line for line in text.splitlines() if flag in line)
            assert "<bool>" not in line, line
        assert "<list[str]>" not in text and "KEY=VALUE" in text


def test_version_flag_and_command() -> None:
    assert runner.invoke(app, ["--version"]).output.strip() == __version__
    assert runner.invoke(app, ["version"]).output.strip() == __version__


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

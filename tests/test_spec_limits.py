"""Hostile specs are refused with the bound they pass and its line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from optrun.errors import ConfigError
from optrun.spec.load import load_spec
from optrun.spec.yaml_lines import MAX_DEPTH
from optrun_cli.main import app
from tests.hostile import write_all


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return write_all(tmp_path_factory.mktemp("hostile"))


def test_every_hostile_spec_is_refused_with_its_reason(hostile: dict[str, tuple[Path, str]]) -> None:
    for name, (path, says) in hostile.items():
        with pytest.raises(ConfigError) as caught:
            load_spec(path)
        assert says in str(caught.value), (name, str(caught.value))


def test_the_message_names_the_line(hostile: dict[str, tuple[Path, str]]) -> None:
    with pytest.raises(
        ConfigError, match=r"aliases expand the spec to more than 100000 values at column \d+ \(line 6\)"
    ):
        load_spec(hostile["bomb-top"][0])
    with pytest.raises(ConfigError, match=rf"nests deeper than {MAX_DEPTH} levels at column \d+ \(line 4\)"):
        load_spec(hostile["deep-nesting"][0])


def test_cli_exits_2_and_writes_nothing(hostile: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    runner = CliRunner()
    for command in ("validate", "train", "minimize"):
        for name in ("bomb-optimizer-args", "deep-nesting", "binary"):
            args = [command, str(hostile[name][0])] + (
                [] if command == "validate" else ["--out", str(tmp_path / "r")]
            )
            result = runner.invoke(app, args)
            assert result.exit_code == 2, (command, name, result.output)
            assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_aliases_within_bounds_still_work(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text(
        "name: ok\nargs: &args {learning_rate: 0.1}\nmodel: {builder: m.py:build}\nloss: m.py:loss\n"
        "train: {max_steps: 1, optimizer: {name: SGD, args: *args}}\n"
    )
    with pytest.raises(ConfigError) as caught:  # 'args' is not a spec key; the alias itself is fine
        load_spec(spec)
    assert "args: unknown key" in str(caught.value) and "spec refused" not in str(caught.value)

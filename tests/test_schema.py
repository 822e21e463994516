"""`optrun schema` describes exactly the files optrun accepts: checked with jsonschema (Draft 2020-12)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from optrun.errors import ConfigError
from optrun.spec.load import load_spec
from optrun.spec.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = jsonschema.Draft202012Validator(json_schema())
BASE = {"name": "s", "model": {"builder": "m.py:build"}, "loss": "mse"}


def spec_files() -> list[Path]:
    return sorted((ROOT / "configs").glob("*.yaml")) + sorted((ROOT / "optrun" / "defaults").glob("*.yaml"))


def readme_specs() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [data for data in map(yaml.safe_load, blocks) if isinstance(data, dict) and "model" in data]


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_every_sample_and_default_spec_is_valid(path: Path) -> None:
    VALIDATOR.validate(yaml.safe_load(path.read_text()))


def test_every_readme_spec_is_valid() -> None:
    found = readme_specs()
    assert found
    for data in found:
        VALIDATOR.validate(data)


@pytest.mark.parametrize(
    "extra",
    [
        {"loss": "mse"},
        {"loss": "examples/pinn.py:residual_loss"},
        {"loss": {"name": "huber", "args": {"delta": 0.5}}},
        {"loss": {"ref": "m.py:loss"}},
        {"loss": {"kind": "keras", "name": "mae"}},
        {"minimize": {"constraints": {"bounds": {"w": [0, 0.4], "b": {"low": None}, "c": [[0, 1], None]}}}},
    ],
)
def test_shorthands_the_loader_takes_are_valid(extra: dict[str, Any]) -> None:
    VALIDATOR.validate({**BASE, **extra})


@pytest.mark.parametrize(
    "bad",
    [
        {"extra_key": 1},
        {"name": "has space"},
        {"seed": -1},
        {"loss": {"kind": "nope", "name": "mse"}},
        {"loss": {"name": "mse", "ref": "m.py:f"}},
        {"loss": 3},
        {"train": {"epoch": 3}},
        {"train": {"max_steps": 0}},
        {
            "train": {
                "max_steps": 1,
                "optimizer": {"wrappers": [{"kind": "moving_average", "average_decay": 2}]},
            }
        },
        {"minimize": {"constraints": {"bounds": {"w": [0, 1, 2]}}}},
        {"checkpoint": {"export": "zip"}},
        {"minimize": {"blas_threads": 0}},
        {"logging": {"every_steps": 0}},
    ],
)
def test_known_bad_specs_are_rejected_by_both(bad: dict[str, Any], tmp_path: Path) -> None:
    data = {**BASE, **bad}
    assert not VALIDATOR.is_valid(data), bad
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError):
        load_spec(spec)


def test_every_property_has_a_description() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    missing = []
    for where, node in [("", schema), *defs.items()]:
        for name, child in node.get("properties", {}).items():
            if "description" not in child:
                missing.append(f"{where}.{name}")
    assert not missing, missing


def test_schema_write_writes_the_file_and_the_modeline(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from optrun_cli.main import app

    target = tmp_path / "optrun.schema.json"
    result = CliRunner().invoke(app, ["schema", "--write", str(target)])
    assert result.exit_code == 0
    assert f"# yaml-language-server: $schema={target}" in result.stdout
    assert json.loads(target.read_text()) == json_schema()
    refused = CliRunner().invoke(app, ["schema", "--write", str(tmp_path / "no" / "such" / "dir.json")])
    assert refused.exit_code == 2 and "cannot write the schema" in refused.stderr
    again = CliRunner().invoke(app, ["schema", "--write", str(target)])  # an earlier schema: updated
    assert again.exit_code == 0 and json.loads(target.read_text()) == json_schema()
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    kept = CliRunner().invoke(app, ["schema", "--write", str(spec)])  # a spec given by mistake
    assert kept.exit_code == 2 and "is not an optrun schema" in kept.stderr
    assert spec.read_text() == "name: x\n"

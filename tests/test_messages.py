"""Messages that say what to do: tabs, empty specs, which constraint raised, vector constraints."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from typer.testing import CliRunner

import optrun
from optrun.errors import ConfigError
from optrun.spec.load import load_spec
from optrun_cli.main import app


def test_tabs_and_empty_specs(tmp_path: Path) -> None:
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("name: x\nmodel:\n\tbuilder: m.py:b\n")
    with pytest.raises(ConfigError, match=r"YAML does not allow tabs for indentation; use spaces \(line 3\)"):
        load_spec(tabs)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="the spec is empty"):
        load_spec(empty)


def test_a_constraint_that_raises_is_named_by_its_position(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import tensorflow as tf\n"
        "def build():\n    return tf.Variable([1.0, 2.0], name='v')\n"
        "def loss(v):\n    return tf.reduce_sum(v * v)\n"
        "def fine(v):\n    return v[0]\n"
        "def uses_missing(v):\n    return v[0] - missing\n"
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: c\nmodel: {builder: m.py:build}\nloss: m.py:loss\n"
        "minimize: {constraints: {inequalities: [m.py:fine, m.py:uses_missing]}}\n"
    )
    result = CliRunner().invoke(app, ["minimize", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert (
        "minimize.constraints.inequalities[1] (m.py:uses_missing) raised on the start point" in result.stderr
    )
    assert "NameError" in result.stderr


def test_vector_constraints_are_split_never_summed() -> None:
    v = tf.Variable([1.0, 2.0])
    with pytest.raises(optrun.InvalidArgumentError) as caught:
        optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v * v), inequalities=[lambda: v - 1.0])
    assert "one constraint per element" in str(caught.value) and "reduce_sum" not in str(caught.value)
    with pytest.raises(optrun.InvalidArgumentError, match="Reduce it"):
        optrun.ScipyOptimizerInterface(lambda: v * v)

"""Did-you-mean: unknown spec keys, Keras optimizer and loss names, scipy methods and options."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from typer.testing import CliRunner

import optrun
from optrun.errors import ConfigError
from optrun.spec.load import load_spec
from optrun.suggest import suggest
from optrun_cli.main import app

MODULE = (
    "import numpy as np, tensorflow as tf, keras\n"
    "def build():\n    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])\n"
    "def data():\n    return tf.data.Dataset.from_tensors((np.ones((1, 1), np.float32),) * 2)\n"
)


def test_suggest() -> None:
    assert suggest("epoch", ["epochs", "max_steps"], "key") == "did you mean 'epochs'?"
    assert suggest("decay", ["average_decay", "kind"], "key") == "did you mean 'average_decay'?"
    assert suggest("zzz", ["keep", "swap"], "key") == "known keys: keep, swap"


def test_unknown_keys_get_the_closest_key_sorted_by_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: x\nmodel: {builder: m.py:build}\nloss: mse\n"
        "checkpoint: {zzz: 1}\n"
        "train:\n  epoch: 3\n  learning_rate: 0.1\n"
        "  optimizer: {wrappers: [{kind: moving_average, decay: 0.9}]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_spec(spec)
    lines = str(caught.value).splitlines()[1:]
    assert lines == [
        "  - checkpoint.zzz: unknown key; known keys: every_seconds, every_steps, export, keep, swap "
        "(line 4)",
        "  - train.epoch: unknown key; did you mean 'epochs'? (line 6)",
        "  - train.learning_rate: unknown key; learning_rate goes in train.optimizer.args (line 7)",
        "  - train.optimizer.wrappers[0].decay: unknown key; did you mean 'average_decay'? (line 8)",
    ]


@pytest.mark.parametrize(
    ("loss", "optimizer", "says"),
    [("msee", "SGD", "did you mean 'mse'?"), ("mse", "Adamm", "did you mean 'Adam'?")],
)
def test_keras_names(tmp_path: Path, loss: str, optimizer: str, says: str) -> None:
    (tmp_path / "m.py").write_text(MODULE)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"name: x\nmodel: {{builder: m.py:build}}\ndata: {{builder: m.py:data}}\nloss: {loss}\n"
        f"train: {{max_steps: 1, optimizer: {{name: {optimizer}}}}}\n"
    )
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2 and says in result.stderr


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"method": "L-BFGS"}, "did you mean 'l-bfgs-b'?"),
        ({"options": {"maxiterr": 3}}, "maxiterr: did you mean 'maxiter'?"),
        ({"method": "Nelder-Mead", "options": {"xtol": 1e-3}}, "xtol: did you mean 'xatol'?"),
    ],
)
def test_scipy_names(kwargs: dict, says: str) -> None:
    v = tf.Variable([1.0])
    with pytest.raises(optrun.InvalidArgumentError, match=says.replace("?", r"\?")):
        optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v * v), **kwargs)

"""A hypothesis-driven spec fuzzer, in process: 1,000 specs through ``validate``, a sample through
``minimize`` and ``train``. Every one must end in exit 0, 1 or 2 with a message and no traceback,
``--json`` must stay parseable, and nothing may be written where the spec was refused."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from optrun_cli.main import app

pytestmark = pytest.mark.slow
SPECS = 1_000
RUNS = 40  # of those, how many go on through train or minimize
runner = CliRunner()

MODULE = """
import numpy as np
import tensorflow as tf
import keras

def build(hidden=4):
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(int(hidden), activation='tanh', name='h'),
                             keras.layers.Dense(1, name='out')])

def var():
    return tf.Variable([3.0, -1.0], name='v')

def data(batch_size=8):
    x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(16, 2)
    return tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(int(batch_size))

def loss(model, batch=None):
    if isinstance(model, tf.Variable):
        return tf.reduce_sum(tf.square(model - 1.0))
    x, y = batch
    return tf.reduce_mean(tf.square(model(x) - y))

def ineq(model):
    return model[0] - 2.0 if isinstance(model, tf.Variable) else tf.constant(1.0)
"""

junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
refs = st.sampled_from(
    ["m.py:build", "m.py:var", "m.py:loss", "m.py:nope", "nope.py:x", "m.py", "", "os:getcwd"]
)
optimizer = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["SGD", "Adam", "Adamm", "", "RMSprop"]) | junk,
        "args": st.fixed_dictionaries(
            {}, optional={"learning_rate": st.sampled_from([0.1, 0.0, -1.0, "x", None, 1e-3])}
        )
        | junk,
        "wrappers": st.lists(
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["moving_average", "variable_clipping", "nope"])},
                optional={
                    "average_decay": st.sampled_from([0.5, 0.99, 1.5, -1, "x"]),
                    "vars": st.sampled_from([["h/kernel"], ["re:.*"], ["nope"], [], "h/kernel"]),
                    "dims": st.sampled_from([[0], [1], [5], [], "x"]),
                    "max_norm": st.sampled_from([1.0, 0.0, -2.0, "x"]),
                },
            ),
            max_size=2,
        ),
    },
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["fz", "", "a/b", "x" * 300]) | junk,
        "seed": st.integers(-5, 5) | junk,
        "model": st.fixed_dictionaries(
            {}, optional={"builder": refs | junk, "params": st.just({"hidden": 3}) | junk}
        )
        | junk,
        "data": st.fixed_dictionaries({}, optional={"builder": st.just("m.py:data") | refs, "params": junk})
        | junk,
        "loss": refs | st.sampled_from(["mse", "msee", {"kind": "keras", "name": "mse"}]) | junk,
        "train": st.fixed_dictionaries(
            {},
            optional={
                "max_steps": st.sampled_from([3, 0, -1, "x", None]),
                "epochs": st.sampled_from([1, 0, None]),
                "optimizer": optimizer,
                "on_nonfinite": st.sampled_from(["stop", "skip", "x"]),
            },
        )
        | junk,
        "minimize": st.fixed_dictionaries(
            {},
            optional={
                "method": st.sampled_from(["L-BFGS-B", "SLSQP", "TNC", "nope", None]),
                "options": st.fixed_dictionaries({}, optional={"maxiter": st.sampled_from([3, 0, "x"])})
                | junk,
                "constraints": st.fixed_dictionaries(
                    {},
                    optional={
                        "inequalities": st.lists(st.sampled_from(["m.py:ineq", "m.py:nope"]), max_size=2),
                        "bounds": st.dictionaries(st.sampled_from(["v", "nope"]), junk, max_size=2),
                    },
                ),
            },
        )
        | junk,
        "checkpoint": st.fixed_dictionaries({}, optional={"keep": st.sampled_from([1, 0, "x"])}) | junk,
        "logging": junk,
    },
)

BASES = [
    {
        "name": "fz",
        "model": {"builder": "m.py:build", "params": {"hidden": 3}},
        "data": {"builder": "m.py:data"},
        "loss": "m.py:loss",
        "train": {"max_steps": 3},
    },
    {"name": "fz", "model": {"builder": "m.py:var"}, "loss": "m.py:loss", "minimize": {"method": "L-BFGS-B"}},
]
# Half the specs are a working spec with one or two sections replaced by fuzz: they get past the
# schema, so the model, data, loss, optimizer and constraint checks are fuzzed too.
near_valid = st.tuples(st.sampled_from(BASES), specs, st.integers(1, 2)).map(
    lambda t: {**t[0], **dict(list(t[1].items())[: t[2]])}
)


def _ok_exit(result: Any, what: str) -> None:
    assert result.exit_code in (0, 1, 2), (what, result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output, (what, result.output[-2000:])
    if result.exit_code:
        assert result.stderr.strip(), what  # a message, never silence


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("fuzz")
    (where / "m.py").write_text(MODULE)
    return where


def test_fuzzed_specs(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    seen = {"specs": 0, "valid": 0, "runs": 0}

    @settings(
        max_examples=SPECS,
        deadline=None,
        derandomize=True,  # the same 1,000 specs on every run
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=specs | near_valid)
    def one(spec: dict[str, Any]) -> None:
        seen["specs"] += 1
        text = yaml.safe_dump(spec, allow_unicode=True) if all(_finite(spec)) else json.dumps(spec)
        path = folder / "spec.yaml"
        path.write_text(text)
        result = runner.invoke(app, ["validate", str(path), "--json"])
        _ok_exit(result, text)
        json.loads(result.stdout)  # --json answers even on failure
        if result.exit_code != 0:
            return
        seen["valid"] += 1
        if seen["runs"] >= RUNS:
            return
        seen["runs"] += 1
        out = folder / f"run{seen['runs']}"
        kind = "train" if isinstance(spec.get("train"), dict) else "minimize"
        extra = ["--set", "train.max_steps=3"] if kind == "train" else ["--set", "minimize.options.maxiter=3"]
        ran = runner.invoke(app, [kind, str(path), "-q", "--out", str(out), *extra])
        _ok_exit(ran, text)
        if ran.exit_code == 2:
            assert not out.exists(), text  # refused: nothing half-written
        else:
            assert (out / "result.json").is_file(), text

    one()
    print(f"\nspec fuzzer: {seen['specs']} specs through validate, {seen['valid']} valid, {seen['runs']} run")
    assert seen["specs"] >= SPECS


def _finite(value: Any) -> Any:
    """Yields False for a float YAML cannot round-trip (NaN is fine in YAML; this keeps both paths)."""
    if isinstance(value, float):
        yield not math.isnan(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _finite(item)
    elif isinstance(value, list):
        for item in value:
            yield from _finite(item)

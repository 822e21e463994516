"""Spec validation, --set overrides and error reports (no TensorFlow needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optrun.errors import ConfigError
from optrun.spec.experiment import ExperimentSpec
from optrun.spec.load import apply_overrides, load_spec, parse_override
from optrun.spec.schema import json_schema

FIVE_MISTAKES = """\
name: bad name
seed: -1
model:
  builder: examples/mlp.py
loss: {kind: keras}
train:
  max_steps: 10
  optimizer:
    wrappers:
      - kind: moving_avg
  learning_rate: 0.1
"""


def test_five_mistakes_reported_at_once_with_lines(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(FIVE_MISTAKES)
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    issues = info.value.issues
    assert len(issues) == 6, issues
    text = "\n".join(issues)
    assert "is not a run name: use letters, digits" in text and "(line 1)" in text
    assert "seed: Input should be greater than or equal to 0; got -1 (line 2)" in text
    assert "model.builder: " in text and "names no function; write 'path/to/file.py:function'" in text
    assert "loss.name: Field required (line 5)" in text
    assert (
        "train.optimizer.wrappers[0].kind: unknown kind 'moving_avg'; did you mean 'moving_average'?" in text
    )
    assert "(line 10)" in text
    assert "train.learning_rate: unknown key" in text and "(line 11)" in text


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text("name: ok\nmodel: {builder: m.py:build}\nloss: mse\ntrain: {max_steps: 5}\n")
    loaded = load_spec(spec, ["train.max_steps=7", "train.optimizer.args.learning_rate=0.5", "seed=3"])
    assert loaded.spec.train is not None and loaded.spec.train.max_steps == 7
    assert loaded.spec.train.optimizer.args == {"learning_rate": 0.5}
    assert loaded.spec.seed == 3
    with pytest.raises(
        ConfigError, match=r"train\.max_steps: Input should be greater than 0; got -5 \(from --set\)"
    ):
        load_spec(spec, ["train.max_steps=-5"])
    with pytest.raises(
        ConfigError, match=r"train\.optimizer\.args: learning_rate must be > 0; got -0\.1 \(from --set\)"
    ):
        load_spec(spec, ["train.optimizer.args.learning_rate=-0.1"])
    with pytest.raises(ConfigError, match=r"learning_rate must be > 0; got 0"):
        load_spec(spec, ["train.optimizer.args.learning_rate=0"])
    with pytest.raises(ConfigError, match=r"expected KEY\.PATH=VALUE"):
        load_spec(spec, ["max_steps"])
    with pytest.raises(ConfigError, match=r"'name\.x=1': name is not a mapping"):
        load_spec(spec, ["name.x=1"])
    # loss: mse is the short form of {name: mse}: the advice writes the whole loss out.
    with pytest.raises(ConfigError, match=r'--set "loss=\{name: mse, args: \{delta: 1\}\}"'):
        apply_overrides({"loss": "mse"}, ["loss.args.delta=1"])


def test_parse_override_types() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=SLSQP") == (["a"], "SLSQP")
    # PyYAML (YAML 1.1) reads 1e30 and 1e-3 as strings; optrun reads them as floats.
    assert parse_override("lr=1e-3") == (["lr"], 1e-3)
    assert parse_override("lr=1e30") == (["lr"], 1e30)
    # YAML 1.1 reads 12:30 in base 60, as 750; optrun reads it as the text it is.
    assert parse_override("seed=12:30") == (["seed"], "12:30")
    assert parse_override("x=-1:20:30.5") == (["x"], "-1:20:30.5")
    assert parse_override("n=1_000") == (["n"], 1000) and parse_override("n=0x1F") == (["n"], 31)
    data: dict = {}
    apply_overrides(data, ["x.y.z=true"])
    assert data == {"x": {"y": {"z": True}}}
    listed = {"w": [{"a": 1}, {"a": 2}]}
    apply_overrides(listed, ["w.1.a=5"])
    assert listed == {"w": [{"a": 1}, {"a": 5}]}
    with pytest.raises(ConfigError, match="is a list of 2; '7' is not an index"):
        apply_overrides(listed, ["w.7.a=5"])


def test_yaml_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML.*line 3"):
        load_spec(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(listing)
    with pytest.raises(ConfigError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    # safe_load only: a Python tag is an error, never executed.
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(evil)


def test_shorthands_and_defaults() -> None:
    spec = ExperimentSpec.model_validate(
        {
            "name": "x",
            "model": {"builder": "pkg.mod:f"},
            "loss": "pkg.mod:loss",
            "minimize": {"constraints": {"bounds": {"v": [0, None], "w": {"high": [1, 2]}}}},
        }
    )
    assert spec.loss.kind == "callable"
    assert spec.minimize is not None
    bounds = spec.minimize.constraints.bounds
    assert bounds["v"].low == 0 and bounds["v"].high is None  # type: ignore[union-attr]
    assert bounds["w"].high == [1, 2]  # type: ignore[union-attr]


def test_builtin_defaults_validate() -> None:
    assert load_spec(None, default="minimize").spec.name == "constrained-example"
    loaded = load_spec(None, default="train")
    assert [w.kind for w in loaded.spec.train.optimizer.wrappers] == ["variable_clipping", "moving_average"]  # type: ignore[union-attr]


def test_schema_is_json_and_complete() -> None:
    schema = json.loads(json.dumps(json_schema()))
    assert set(schema["properties"]) >= {
        "name",
        "seed",
        "model",
        "data",
        "loss",
        "train",
        "minimize",
        "checkpoint",
        "logging",
    }
    assert schema["additionalProperties"] is False


def test_a_flags_override_remembers_its_flag_through_copies_and_pickles() -> None:
    import copy
    import pickle

    from optrun.spec.overrides import FlagOverride, as_argv

    seed = FlagOverride("seed=3", "--seed", 3)
    for same in (copy.deepcopy(seed), pickle.loads(pickle.dumps(seed))):
        assert (same, same.flag, same.argv) == ("seed=3", "--seed", ("--seed", "3"))
    # A child `optrun validate` is given the flag itself, a plain override as --set.
    assert as_argv(seed) == ["--seed", "3"] and as_argv("a.b=1") == ["--set", "a.b=1"]
    data: dict = {"minimize": {"options": {"max_iter": 5}}}
    done = apply_overrides(data, [seed, FlagOverride("minimize.options.maxiter=9", "--maxiter", 9), "x=1"])
    assert done == {"seed": "--seed", "minimize.options.maxiter": "--maxiter", "x": "--set"}
    assert data == {"minimize": {"options": {"maxiter": 9}}, "seed": 3, "x": 1}  # max_iter replaced


def test_the_flag_named_is_that_of_the_override_applied_last() -> None:
    from optrun.errors import placed
    from optrun.spec.overrides import FlagOverride

    data: dict = {"minimize": {"options": {"maxiter": 10}}}
    done = apply_overrides(
        data, ["minimize.options={maxiter: 3}", FlagOverride("minimize.options.maxiter=-5", "--maxiter", -5)]
    )
    assert placed(("minimize", "options", "maxiter"), "bad", {}, done).message == "bad (from --maxiter)"
    data = {"strategy": {"kind": "default"}}
    done = apply_overrides(
        data, [FlagOverride("strategy.kind=mirrored", "--strategy", "mirrored"), "strategy={kind: x}"]
    )
    assert placed(("strategy", "kind"), "bad", {}, done).message == "bad (from --set)"

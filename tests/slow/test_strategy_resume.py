"""Resume a mirrored run with another replica count: 2 devices, then 1, then 4 == 30 steps on one.

Each leg is a fresh ``optrun`` process (logical CPUs are set before TensorFlow
starts). The data has a 1-row last batch, so some replicas get no rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_strategy import WRAPPERS, assert_same_run, train_in_subprocess, write_spec

pytestmark = pytest.mark.slow


def test_resume_on_2_then_1_then_4_devices_equals_one_device(tmp_path: Path) -> None:
    common = {"n": 41, "shuffle": True, "wrappers": WRAPPERS, "steps": 10}  # 6 batches a pass: 5x8, 1x1
    spec = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 2}, **common)
    run = tmp_path / "resumed"
    assert train_in_subprocess(spec, run)["replicas"] == 2
    middle = train_in_subprocess(
        spec, run, "--resume", "--strategy", "default", "--set", "train.max_steps=20"
    )
    assert (middle["strategy"], middle["replicas"], middle["steps"]) == ("default", 1, 20)
    last = train_in_subprocess(
        spec, run, "--resume", "--set", "strategy.logical_cpus=4", "--set", "train.max_steps=30"
    )
    assert (last["replicas"], last["steps"]) == (4, 30)

    single = write_spec(tmp_path, **{**common, "steps": 30})
    assert train_in_subprocess(single, tmp_path / "single")["steps"] == 30
    assert_same_run(run, tmp_path / "single")

"""optrun train under tf.distribute: the same numbers as one device, from the same spec.

Logical CPUs must be set before TensorFlow initializes its devices, so every
mirrored run is a fresh ``optrun`` process; one-device runs are in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tensorflow as tf
import yaml
from typer.testing import CliRunner

from optrun.errors import RunError
from optrun.scale.strategy import read_tf_config
from optrun.spec.load import apply_overrides
from optrun_cli.main import app

PROBLEM = Path(__file__).resolve().parent / "scripts" / "strategy_problem.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
WRAPPERS = [
    {"kind": "variable_clipping", "vars": ["hidden/kernel"], "dims": [0], "max_norm": 0.6},
    {"kind": "moving_average", "average_decay": 0.8, "num_updates": "iterations"},
]
runner = CliRunner()


def write_spec(
    where: Path,
    strategy: dict[str, Any] | None = None,
    *,
    n: int = 40,
    batch: int | None = 8,
    rows: int | None = None,
    steps: int = 10,
    linear: bool = False,
    shuffle: bool = False,
    wrappers: list[dict[str, Any]] | None = None,
    builder: str = "make_data",
) -> Path:
    data: dict[str, Any] = {
        "name": "strategy-test",
        "seed": 3,
        "model": {"builder": f"{PROBLEM}:build_model", "params": {"linear": linear}},
        "data": {"builder": f"{PROBLEM}:{builder}", "params": {"n": n, "batch_size": rows or batch or 8}},
        "loss": "mse",
        "train": {
            "max_steps": steps,
            "optimizer": {
                "name": "SGD",
                "args": {"learning_rate": 0.1, "momentum": 0.5},
                "wrappers": wrappers or [],
            },
        },
        "checkpoint": {"every_steps": 5, "export": "weights_h5"},
        "logging": {"every_steps": 5, "tensorboard": False},
    }
    if builder == "make_data":
        data["data"]["params"]["shuffle"] = shuffle
    if batch is not None:
        data["data"]["global_batch_size"] = batch
    if strategy is not None:
        data["strategy"] = strategy
    path = where / f"spec-{len(list(where.glob('spec-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def train_in_process(spec: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, ["train", str(spec), "--out", str(out), "--json", "-q", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def train_in_subprocess(spec: Path, out: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "optrun", "train", str(spec), "--out", str(out), "--json", "-q", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def checkpoint(path: Path | str) -> dict[str, np.ndarray]:
    """Every numeric value in a checkpoint (a directory: its latest), by key."""
    path = str(path)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(path) if os.path.isdir(path) else path)
    values = {}
    for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH" and np.asarray(value).dtype.kind in "fiub":
            values[key] = np.asarray(value)
    return values


def h5_values(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: found.update({name: item[()]}) if hasattr(item, "shape") else None)
    return found


def assert_same_values(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float = 1e-5) -> None:
    assert sorted(a) == sorted(b)
    for key, value in a.items():
        np.testing.assert_allclose(value, b[key], rtol=0, atol=atol, err_msg=key)


def assert_same_run(one: Path, other: Path) -> None:
    """Checkpoint (weights, momentum, averages, counters), averaged checkpoint and export agree."""
    assert_same_values(checkpoint(one / "checkpoints"), checkpoint(other / "checkpoints"))
    assert_same_values(checkpoint(one / "averaged" / "ckpt"), checkpoint(other / "averaged" / "ckpt"))
    assert_same_values(
        h5_values(one / "export" / "model.weights.h5"), h5_values(other / "export" / "model.weights.h5")
    )


def numpy_sgd(steps: int, n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The linear model trained with SGD (lr 0.1, momentum 0.5) on the mean squared error, in numpy."""
    sys.path.insert(0, str(PROBLEM.parent))
    try:
        from strategy_problem import arrays
    finally:
        sys.path.pop(0)
    x, y = (a.astype(np.float64) for a in arrays(n))
    params = [np.full((3, 2), 0.1), np.zeros(2)]  # kernel, bias
    velocity = [np.zeros((3, 2)), np.zeros(2)]
    starts = list(range(0, n, batch))
    for step in range(steps):
        start = starts[step % len(starts)]
        xb, yb = x[start : start + batch], y[start : start + batch]
        residual = xb @ params[0] + params[1] - yb
        grads = [2.0 * xb.T @ residual / residual.size, 2.0 * residual.sum(axis=0) / residual.size]
        for i, grad in enumerate(grads):
            velocity[i] = 0.5 * velocity[i] - 0.1 * grad
            params[i] = params[i] + velocity[i]
    return params[0], params[1]


def model_weights(run: Path) -> tuple[np.ndarray, np.ndarray]:
    weights = [v for k, v in checkpoint(run / "checkpoints").items() if "_trainable_variables" in k]
    [kernel] = [v for v in weights if v.shape == (3, 2)]
    [bias] = [v for v in weights if v.shape == (2,)]
    return kernel, bias


def test_three_replicas_match_numpy_sgd(tmp_path: Path) -> None:
    """8-row batches split 3/3/2 over 3 logical CPUs: the weights of plain SGD in numpy."""
    kernel, bias = numpy_sgd(steps=10, n=40, batch=8)
    mirrored = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 3}, linear=True)
    result = train_in_subprocess(mirrored, tmp_path / "mirrored")
    assert (result["strategy"], result["replicas"], result["global_batch"]) == ("mirrored", 3, 8)
    single = train_in_process(write_spec(tmp_path, linear=True), tmp_path / "single")
    assert (single["strategy"], single["replicas"]) == ("default", 1)
    for run in ("mirrored", "single"):
        got_kernel, got_bias = model_weights(tmp_path / run)
        np.testing.assert_allclose(got_kernel, kernel, atol=1e-5)
        np.testing.assert_allclose(got_bias, bias, atol=1e-5)
    assert result["final_loss"] == pytest.approx(single["final_loss"], abs=1e-6)


def test_two_replicas_with_both_wrappers_match_one_device(tmp_path: Path) -> None:
    """Clipping after the all-reduced update and one average per step: every saved value agrees."""
    common = {"n": 46, "shuffle": True, "wrappers": WRAPPERS, "steps": 12}  # the 6th batch has 6 rows
    mirrored = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 2}, **common)
    result = train_in_subprocess(mirrored, tmp_path / "mirrored")
    assert result["replicas"] == 2 and result["averaged_checkpoint"]
    train_in_process(write_spec(tmp_path, **common), tmp_path / "single")
    assert_same_run(tmp_path / "mirrored", tmp_path / "single")
    # The clipping held: each column of the hidden kernel has norm <= 0.6.
    values = checkpoint(tmp_path / "mirrored" / "checkpoints")
    [kernel] = [v for k, v in values.items() if "_trainable_variables" in k and v.shape == (3, 4)]
    assert np.linalg.norm(kernel, axis=0).max() <= 0.6 + 1e-6


def test_a_nonfinite_replica_skips_the_step_everywhere(tmp_path: Path) -> None:
    """A NaN in replica 0's rows of batch 1: with on_nonfinite skip, no replica applies that step."""
    extra = ("--set", "data.params.nan_row=2", "--set", "train.on_nonfinite=skip")
    mirrored = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 2}, wrappers=WRAPPERS)
    result = train_in_subprocess(mirrored, tmp_path / "mirrored", *extra)
    single = train_in_process(write_spec(tmp_path, wrappers=WRAPPERS), tmp_path / "single", *extra)
    assert result["skipped_nonfinite"] == single["skipped_nonfinite"] == 2  # 10 steps, 5 batches a pass
    assert result["status"] == "completed"
    assert_same_run(tmp_path / "mirrored", tmp_path / "single")


def test_spec_and_flag_choose_the_strategy(tmp_path: Path) -> None:
    """--strategy default over a mirrored section starts it afresh; validate reports the choice."""
    spec = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 5})
    result = runner.invoke(app, ["validate", str(spec), "--strategy", "default", "--json"])
    assert result.exit_code == 0, result.output
    [info] = [e for e in json.loads(result.stdout) if e["severity"] == "info"]
    assert info["report"]["strategy"] == "default"
    assert info["report"]["replicas"] == 1 and info["report"]["global_batch"] == 8


def test_validate_reports_mirrored_replicas_and_global_batch(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 3})
    proc = subprocess.run(
        [sys.executable, "-m", "optrun", "validate", str(spec), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [info] = [e for e in json.loads(proc.stdout) if e["severity"] == "info"]
    report = info["report"]
    assert (report["strategy"], report["replicas"], report["global_batch"]) == ("mirrored", 3, 8)
    assert report["per_replica_batch"] == "2-3"
    table = subprocess.run(
        [sys.executable, "-m", "optrun", "validate", str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        check=False,
    )
    assert table.returncode == 0 and "mirrored" in table.stdout and "replicas" in table.stdout


@pytest.mark.parametrize(
    ("strategy", "extra", "expected"),
    [
        ({"kind": "pipelined"}, {}, "'pipelined'"),
        ({"kind": "mirrored", "devices": ["GPU0"]}, {}, "['GPU0'] is not a device name"),
        ({"kind": "mirrored", "devices": ["CPU:0", "/cpu:0"]}, {}, "same device twice"),
        ({"kind": "mirrored", "devices": ["GPU:7"]}, {}, "'GPU:7'] is not visible"),
        ({"kind": "mirrored", "logical_cpus": 0}, {}, "strategy.logical_cpus"),
        ({"kind": "multi_worker"}, {}, "TF_CONFIG is not set"),
        ({"kind": "multi_worker", "heartbeat_timeout_s": 0}, {}, "heartbeat_timeout_s: Input should be"),
        ({"kind": "multi_worker", "startup_timeout_s": -5}, {}, "startup_timeout_s: Input should be greater"),
        ({"kind": "mirrored"}, {"batch": None}, "global_batch_size: required with strategy.kind mirrored"),
        ({"kind": "mirrored"}, {"batch": 16, "rows": 8}, "global_batch_size: 16, but the first batch"),
        ({"kind": "mirrored"}, {"builder": "as_list"}, "must return a tf.data.Dataset"),
    ],
)
def test_strategy_mistakes_exit_2_and_write_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    strategy: dict[str, Any],
    extra: dict[str, Any],
    expected: str,
) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    spec = write_spec(tmp_path, strategy, **extra)
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert expected in result.output.replace("\n", " ")
    assert not (tmp_path / "run").exists()


def test_unknown_strategy_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(write_spec(tmp_path)), "--strategy", "tpu"])
    assert result.exit_code == 2 and "mirrored" in result.output


def test_logical_cpus_after_tensorflow_started_is_refused(tmp_path: Path) -> None:
    tf.config.list_logical_devices()  # TensorFlow's devices are initialized in this process now
    spec = write_spec(tmp_path, {"kind": "mirrored", "logical_cpus": 3})
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "already initialized its devices" in result.output and "fresh process" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "has no 'cluster'"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
        ('{"cluster": {"worker": ["a:1"]}}', "has no 'task'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task.type 'ps'"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "0..1"),
    ],
)
def test_malformed_tf_config_is_explained(text: str, expected: str) -> None:
    with pytest.raises(RunError, match="TF_CONFIG") as caught:
        read_tf_config(text)
    assert expected in str(caught.value) and "README" in str(caught.value)


def test_tf_config_of_two_workers_is_read() -> None:
    text = '{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker", "index": 1}}'
    assert read_tf_config(text)["task"]["index"] == 1


def test_strategy_kind_override_starts_the_section_afresh() -> None:
    data: dict[str, Any] = {"strategy": {"kind": "mirrored", "logical_cpus": 2}}
    apply_overrides(data, ["strategy.kind=mirrored", "strategy.devices=[CPU:0]"])
    assert data["strategy"] == {"kind": "mirrored", "logical_cpus": 2, "devices": ["CPU:0"]}
    apply_overrides(data, ["strategy.kind=default"])
    assert data["strategy"] == {"kind": "default"}


def test_a_dead_peer_is_named_in_words_not_tensorflow_plumbing() -> None:
    from optrun.scale.strategy import Plan, peer_failure

    error = tf.errors.UnavailableError(
        None,
        None,
        "Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at ...\n"
        "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:1/device:CPU:0}} "
        "Collective ops is aborted by: recvmsg:Connection reset by peer\n[[{{node CollectiveReduceV2}}]]",
    )
    plan = Plan("multi_worker", None, False, "worker:1")
    message = peer_failure(plan, error, "The chief keeps the checkpoints.")
    assert message == (
        "multi_worker: another worker of the cluster died or stopped answering, so worker:1 stopped too "
        "(TensorFlow: UnavailableError: Collective ops is aborted by: recvmsg:Connection reset by peer). "
        "The chief keeps the checkpoints. Restart every worker with --resume to go on."
    )
    # Not a multi-worker run, or not a peer's failure: the caller's usual message.
    assert peer_failure(Plan("mirrored"), error, "") is None
    assert peer_failure(plan, ValueError("bad loss"), "") is None


def test_a_worker_that_is_not_the_chief_writes_a_scratch_directory_it_removes(tmp_path: Path) -> None:
    from optrun.runner.common import RunOptions
    from optrun.runner.workers import claim_place
    from optrun.scale.strategy import Plan
    from optrun.spec.load import load_spec

    (tmp_path / "s.yaml").write_text("name: w\nmodel: {builder: m.py:build}\nloss: m.py:loss\n")
    loaded = load_spec(tmp_path / "s.yaml")
    worker = Plan("multi_worker", None, False, "worker:1")
    run = tmp_path / "run"
    with claim_place(loaded, RunOptions(out=run), "train", worker) as place:
        assert not place.kept and place.run == run and place.out.is_dir()
        (place.out / "checkpoints").mkdir()
        assert place.as_kept(str(place.out / "checkpoints" / "ckpt-3")) == str(run / "checkpoints" / "ckpt-3")
    assert not place.out.exists() and not run.exists()  # nothing left, nothing made in the chief's place
    with pytest.raises(RuntimeError), claim_place(loaded, RunOptions(out=run), "train", worker) as place:
        raise RuntimeError("a step failed")
    assert not place.out.exists()
    # --resume reads the chief's checkpoints: refused, before anything, when they are not visible.
    resume = RunOptions(out=run, resume=True)
    with pytest.raises(RunError, match=r"--resume on worker:1: .* a filesystem all workers share"):  # noqa: SIM117
        with claim_place(loaded, resume, "train", worker):
            pass
    # The chief claims the run directory itself.
    with claim_place(loaded, RunOptions(out=run), "train", Plan("multi_worker")) as place:
        assert place.kept and place.out == run and (run / ".optrun-run").is_file()


def test_a_problem_with_a_flags_value_names_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    spec = write_spec(tmp_path)
    for command, flags, said in (
        ("validate", ["--strategy", "multi_worker"], "strategy.kind: multi_worker: the environment variable"),
        ("train", ["--seed", str(2**32)], "seed: Input should be less than or equal to 4294967295"),
    ):
        out_dir = [] if command == "validate" else ["--out", str(tmp_path / "run")]
        result = runner.invoke(app, [command, str(spec), *out_dir, *flags])
        text = " ".join(result.output.split())
        assert result.exit_code == 2 and said in text and f"(from {flags[0]})" in text, text
        assert "(from --set)" not in text and not (tmp_path / "run").exists()

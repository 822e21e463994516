"""Full-batch objectives over a dataset: summed batch by batch, equal to the one-batch evaluation."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

import optrun
from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun_cli.main import app

RNG = np.random.default_rng(7)
X = RNG.normal(size=(203, 4))  # 203 rows: the last batch of 50 is short
Y = X @ np.array([1.0, -2.0, 3.0, 0.5]) + 0.1 * RNG.normal(size=203)


def _least_squares(w: tf.Variable):  # type: ignore[no-untyped-def]
    def per_batch(batch):  # type: ignore[no-untyped-def]
        x, y = batch
        return tf.reduce_sum((tf.linalg.matvec(x, w) - y) ** 2)

    return per_batch


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_value_and_gradient_equal_numpy_at_fixed_points(reduction: str) -> None:
    w = tf.Variable(np.zeros(4))
    data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(51)  # 4 batches
    full = optrun.dataset_loss(_least_squares(w), data, reduction=reduction)
    for point in (np.zeros(4), RNG.normal(size=4), 10 * RNG.normal(size=4)):
        w.assign(point)
        with tf.GradientTape() as tape:
            value = full()
        grad = tape.gradient(value, w).numpy()
        r = X @ point - Y  # by hand: f = |Xw - y|^2, grad = 2 X^T (Xw - y); mean divides by 4 batches
        scale = 1.0 if reduction == "sum" else 1.0 / 4
        np.testing.assert_allclose(float(value), scale * (r @ r), rtol=1e-12)
        np.testing.assert_allclose(grad, scale * 2 * X.T @ r, rtol=1e-10, atol=1e-9)


def test_minimize_over_batches_matches_one_batch() -> None:
    w = tf.Variable(np.zeros(4))
    results = []
    for batch in (203, 40):  # one batch, then six
        data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(batch)
        opt = optrun.ScipyOptimizerInterface(
            optrun.dataset_loss(_least_squares(w), data), var_list=[w], jit_compile=False
        )
        w.assign(np.zeros(4))
        r = opt.minimize()
        results.append((w.numpy().copy(), r.nfev))
    (x1, nfev1), (x6, nfev6) = results
    np.testing.assert_allclose(x6, x1, atol=1e-6)
    np.testing.assert_allclose(x1, np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-5)
    assert nfev6 == nfev1


def test_the_default_runs_a_dataset_loss_without_xla(caplog: pytest.LogCaptureFixture) -> None:
    w = tf.Variable(np.zeros(4))
    data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(64)
    opt = optrun.ScipyOptimizerInterface(optrun.dataset_loss(_least_squares(w), data), var_list=[w])
    with caplog.at_level(logging.INFO, logger="optrun"):
        r = opt.minimize()
    assert not opt.xla and set(r.tiers["evaluations"]) == {"plain"}  # as with jit_compile=False
    assert not [m for m in caplog.messages if "xla" in m.lower()]  # no XLA build tried and logged
    np.testing.assert_allclose(w.numpy(), np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-5)


def test_a_dataset_sum_as_a_constraint() -> None:
    # min |w|^2 subject to sum over rows of x.w == 6 (in batches): w = 6 s / |s|^2 with s = sum of rows.
    w = tf.Variable(np.ones(4))
    data = tf.data.Dataset.from_tensor_slices(X).batch(64)
    total = optrun.dataset_loss(lambda x: tf.reduce_sum(tf.linalg.matvec(x, w)), data, var_list=[w])
    opt = optrun.ScipyOptimizerInterface(
        lambda: tf.reduce_sum(w**2), equalities=[lambda: total() - 6.0], method="SLSQP", jit_compile=False
    )
    opt.minimize()
    s = X.sum(axis=0)
    np.testing.assert_allclose(w.numpy(), 6 * s / (s @ s), atol=1e-7)


def test_bad_arguments_say_what_to_do() -> None:
    w = tf.Variable(np.zeros(4))
    data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(50)
    with pytest.raises(InvalidArgumentError, match="reduction must be 'sum' or 'mean'; got 'avg'"):
        optrun.dataset_loss(_least_squares(w), data, reduction="avg")
    with pytest.raises(InvalidTypeError, match=r"data must be a tf.data.Dataset of batches; got list"):
        optrun.dataset_loss(_least_squares(w), [(X, Y)])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="data yields no batches"):
        optrun.dataset_loss(_least_squares(w), data.take(0))
    with pytest.raises(InvalidArgumentError, match="reads no trainable variable on the first batch"):
        optrun.dataset_loss(lambda b: tf.reduce_sum(b[0]), data)
    with pytest.raises(InvalidArgumentError, match=r"must return a scalar; got shape \[50\]"):
        optrun.dataset_loss(lambda b: tf.linalg.matvec(b[0], w), data)


SCRIPTS = Path(__file__).resolve().parent / "scripts"


def test_the_cli_runs_full_batch_from_the_spec(tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "least_squares.py", tmp_path / "m.py")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: fb\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data, params: {batch: 203}}\n"
        "loss: m.py:loss\nminimize: {data: {reduction: sum}}\ncheckpoint: {export: none}\n"
    )
    runner = CliRunner()
    found = []
    for batch in (203, 30):
        done = runner.invoke(
            app,
            [
                "minimize",
                str(spec),
                "--out",
                str(tmp_path / f"r{batch}"),
                "--json",
                "--set",
                f"data.params.batch={batch}",
            ],
        )
        assert done.exit_code == 0, done.output
        found.append(json.loads(done.stdout))
    one, seven = found
    assert seven["nfev"] == one["nfev"]
    # A full-batch loss is evaluated without tiers: the interface runs it with jit_compile=False.
    assert one["tiers"]["first"] == "plain" and one["tiers"]["second"] == ""
    np.testing.assert_allclose(seven["solution"]["w"], one["solution"]["w"], atol=1e-6)
    np.testing.assert_allclose(one["solution"]["w"], np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-5)
    checked = runner.invoke(app, ["validate", str(spec), "--json"])
    assert checked.exit_code == 0, checked.output
    report = json.loads(checked.stdout)[-1]["report"]
    assert report["loss"] == pytest.approx(float(Y @ Y))  # at w = 0: |y|^2
    no_data = runner.invoke(app, ["minimize", str(spec), "--set", "data=null", "--out", str(tmp_path / "x")])
    assert no_data.exit_code == 2 and "data: required here" in no_data.stderr
    assert not (tmp_path / "x").exists()


def _kkt_solution() -> np.ndarray:
    """min |Xw - y|^2 subject to sum(Xw - y) = 0, by its KKT system (numpy)."""
    ones = np.ones(len(Y))
    a = np.block([[2 * X.T @ X, (X.T @ ones)[:, None]], [(ones @ X)[None, :], np.zeros((1, 1))]])
    b = np.concatenate([2 * X.T @ Y, [ones @ Y]])
    return np.linalg.solve(a, b)[:4]


def test_a_constraint_summed_over_the_data_like_the_loss(tmp_path: Path) -> None:
    """minimize.data.equalities: fn(model, batch) summed over every batch, held == 0."""
    shutil.copy(SCRIPTS / "least_squares.py", tmp_path / "m.py")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: fbc\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data, params: {batch: 30}}\n"
        "loss: m.py:loss\nminimize: {data: {reduction: sum, equalities: [m.py:residual_sum]}}\n"
        "checkpoint: {export: none}\n"
    )
    runner = CliRunner()
    done = runner.invoke(app, ["minimize", str(spec), "--out", str(tmp_path / "r"), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["method"] == "SLSQP"  # the default with constraints
    w = np.array(result["solution"]["w"])
    np.testing.assert_allclose(w, _kkt_solution(), atol=1e-5)
    (residual,) = result["constraint_residuals"]["equalities"]
    assert residual == pytest.approx(float(np.sum(X @ w - Y)), abs=1e-9)  # the sum over all 203 rows
    assert abs(residual) < 1e-6
    # Written as a constraint of the model alone, it is refused where it stands, before any run.
    spec.write_text(spec.read_text().replace("m.py:residual_sum", "m.py:model_only"))
    checked = runner.invoke(app, ["validate", str(spec), "--json"])
    assert checked.exit_code == 2
    problems = {p["path"]: p["message"] for p in json.loads(checked.stdout)}
    assert "(model, batch)" in problems["minimize.data.equalities[0]"], problems


STRATEGIES = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 3)
import optrun

rng = np.random.default_rng(7)
x = rng.normal(size=(203, 4))
y = x @ np.array([1.0, -2.0, 3.0, 0.5]) + 0.1 * rng.normal(size=203)
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(50)  # the last batch, 3 rows, leaves a replica empty
point = rng.normal(size=4)
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
out = {}
for n in (1, 2, 3):
    strategy = tf.distribute.MirroredStrategy(devices[:n])
    with strategy.scope():
        w = tf.Variable(np.zeros(4))

    def per_batch(batch, w=w):
        return tf.reduce_sum((tf.linalg.matvec(batch[0], w) - batch[1]) ** 2)

    full = optrun.dataset_loss(per_batch, data, var_list=[w], strategy=strategy)
    opt = optrun.ScipyOptimizerInterface(full, var_list=[w], jit_compile=False)
    w.assign(point)
    at = opt.evaluate(point)["loss"]
    grad = opt.gradient(point).tolist()
    w.assign(np.zeros(4))
    result = opt.minimize()
    out[n] = {"loss": at, "grad": grad, "x": w.numpy().tolist(), "nfev": int(result.nfev)}
print(json.dumps(out))
"""


def test_mirrored_replicas_give_the_one_device_numbers() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", STRATEGIES], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    point = np.random.default_rng(7)
    point.normal(size=(203, 4)), point.normal(size=203)  # the script's draws, in order
    at = point.normal(size=4)
    r = X @ at - Y
    for n in ("1", "2", "3"):  # by hand at the fixed point: |Xw - y|^2 and 2 X^T (Xw - y)
        assert found[n]["loss"] == pytest.approx(r @ r, rel=1e-12)
        np.testing.assert_allclose(found[n]["grad"], 2 * X.T @ r, rtol=1e-10)
        np.testing.assert_allclose(found[n]["x"], found["1"]["x"], atol=1e-6)
        assert found[n]["nfev"] == found["1"]["nfev"]


def test_the_cli_minimizes_full_batch_over_mirrored_replicas(tmp_path: Path) -> None:
    import subprocess
    import sys

    shutil.copy(SCRIPTS / "least_squares.py", tmp_path / "m.py")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: fbm\nmodel: {builder: m.py:build}\n"
        "data: {builder: m.py:data, params: {batch: 50}, global_batch_size: 50}\nloss: m.py:loss\n"
        "strategy: {kind: mirrored, logical_cpus: 3}\nminimize: {data: {reduction: sum}}\n"
        "checkpoint: {export: none}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "optrun", "minimize", str(spec), "--out", str(tmp_path / "r"), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert (result["strategy"], result["replicas"]) == ("mirrored", 3)
    assert result["tiers"]["second"] == ""  # no tiers under a strategy
    np.testing.assert_allclose(result["solution"]["w"], np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-5)
    # Without minimize.data there is nothing to spread over replicas: refused before any write.
    # validate reports the strategy, its replicas and the global batch (50 rows: 17/17/16).
    checked = subprocess.run(
        [sys.executable, "-m", "optrun", "validate", str(spec), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr[-2000:]
    report = json.loads(checked.stdout)[-1]["report"]
    assert (report["strategy"], report["replicas"], report["global_batch"]) == ("mirrored", 3, 50)
    assert report["per_replica_batch"] == "16-17"
    assert report["loss"] == pytest.approx(float(Y @ Y), rel=1e-12)  # at w = 0: |y|^2
    # With a loss of the model alone (a plain minimize), the strategy has nothing to split.
    spec.write_text(
        spec.read_text()
        .replace("minimize: {data: {reduction: sum}}", "minimize: {}")
        .replace("loss: m.py:loss", "loss: m.py:model_only")
    )
    for command in (["minimize", str(spec), "--out", str(tmp_path / "x")], ["validate", str(spec)]):
        refused = subprocess.run(
            [sys.executable, "-m", "optrun", *command],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert refused.returncode == 2
        assert "minimize spreads work over replicas only for a full-batch objective" in refused.stderr
    assert not (tmp_path / "x").exists()


def test_the_sample_pinn_shares_add_up_to_the_whole_residual_loss() -> None:
    """configs/pinn_ode_mirrored.yaml: residual_share summed over batches of the 64 points of
    examples/pinn.py equals residual_loss on them at once (short last batch included)."""
    from optrun.spec.user_code import load_callable

    examples = Path(__file__).resolve().parents[1] / "examples"
    network = load_callable("pinn.py:network", examples, "model")
    whole = load_callable("pinn.py:residual_loss", examples, "loss")
    share = load_callable("pinn.py:residual_share", examples, "loss")
    collocation = load_callable("pinn.py:collocation", examples, "data")
    tf.keras.utils.set_random_seed(3)
    model = network(hidden=4)
    summed = sum(float(share(model, t, n=64)) for t in collocation(n=64, batch=20))
    assert summed == pytest.approx(float(whole(model)), rel=1e-12)


def test_a_full_batch_minimize_under_a_strategy_states_its_batch_only_if_it_likes(tmp_path: Path) -> None:
    """Summed over every batch, the objective does not depend on the rows per batch: with a strategy,
    validate and minimize agree that data.global_batch_size is optional; result.json records the
    global batch as train does when it is stated or the dataset's static batch dimension says it,
    and a stated size the batches do not have is refused by both, before anything is written."""
    shutil.copy(SCRIPTS / "least_squares.py", tmp_path / "m.py")
    with (tmp_path / "m.py").open("a") as module:  # 203 = 7 * 29: drop_remainder keeps every row
        module.write(
            "\n\ndef whole(batch):\n    return data(batch).unbatch().batch(batch, drop_remainder=True)\n"
        )
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: fbs\nmodel: {builder: m.py:build}\ndata: {builder: m.py:data, params: {batch: 50}}\n"
        "loss: m.py:loss\nstrategy: {kind: mirrored}\nminimize: {data: {reduction: sum}}\n"
        "checkpoint: {export: none}\n"
    )
    runner = CliRunner()

    def run(out: str, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        done = runner.invoke(app, ["minimize", str(spec), "--out", str(tmp_path / out), "--json", *extra])
        return done.exit_code, json.loads(done.stdout)

    checked = runner.invoke(app, ["validate", str(spec), "--json"])
    assert checked.exit_code == 0, checked.output  # batches of 50, 50, 50, 50, 3: no static size
    report = json.loads(checked.stdout)[-1]["report"]
    assert (report["strategy"], report["global_batch"], report["loss"]) == (
        "mirrored",
        None,
        pytest.approx(Y @ Y),
    )
    code, result = run("unstated")
    assert code == 0 and "global_batch" not in result, result
    np.testing.assert_allclose(result["solution"]["w"], np.linalg.lstsq(X, Y, rcond=None)[0], atol=1e-5)
    code, result = run("stated", "--set", "data.global_batch_size=50")
    assert code == 0 and (result["global_batch"], result["global_batch_from"]) == (
        50,
        "data.global_batch_size",
    )
    code, result = run("static", "--set", "data.builder=m.py:whole", "--set", "data.params.batch=29")
    assert code == 0 and (result["global_batch"], result["global_batch_from"]) == (29, "dataset")
    wrong = "data.global_batch_size: 40, but the first batch data.builder yields has 50 rows"
    code, result = run("wrong", "--set", "data.global_batch_size=40")
    assert code == 2 and wrong in result["error"] and not (tmp_path / "wrong").exists()
    refused = runner.invoke(app, ["validate", str(spec), "--set", "data.global_batch_size=40"])
    assert refused.exit_code == 2 and wrong in refused.stderr


def test_many_full_batch_losses_in_one_process_set_off_no_retracing_warning() -> None:
    # A sweep's trials, or validate over several specs: each builds its own dataset_loss.
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    keep = Keep()
    tf.get_logger().addHandler(keep)
    try:
        for _ in range(7):
            w = tf.Variable(np.zeros(4))
            data = tf.data.Dataset.from_tensor_slices((X, Y)).batch(100)
            full = optrun.dataset_loss(_least_squares(w), data)
            # sum over the rows of Y^2 at w = 0, as NumPy adds it up
            assert float(full()) == pytest.approx(float(np.sum(Y**2)))
    finally:
        tf.get_logger().removeHandler(keep)
    assert not [s for s in said if "retracing" in s], said

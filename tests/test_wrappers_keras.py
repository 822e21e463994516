"""The wrappers inside real Keras training: model.fit, a tf.function loop, checkpoints and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from optrun import MovingAverageOptimizer, VariableClippingOptimizer

MAX_NORM = 0.5
DECAY = 0.8


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")
    return x, y


def model() -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(1, name="out")]
    )


def wrapped(inner: keras.optimizers.Optimizer | None = None) -> MovingAverageOptimizer:
    inner = inner or keras.optimizers.SGD(0.05, momentum=0.9)
    return MovingAverageOptimizer(
        VariableClippingOptimizer(inner, {"hidden/kernel": [0]}, MAX_NORM), average_decay=DECAY
    )


class Recorder(keras.callbacks.Callback):
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.history.append([w.numpy().copy() for w in self.model.trainable_weights])

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.history = [[w.numpy().copy() for w in self.model.trainable_weights]]


def numpy_ema(history: list[list[np.ndarray]], decay: float) -> list[np.ndarray]:
    """Independent EMA of the recorded post-update weights, from the start values."""
    averages = [w.copy() for w in history[0]]
    for weights in history[1:]:
        averages = [a - (1 - decay) * (a - w) for a, w in zip(averages, weights, strict=True)]
    return averages


def test_model_fit_with_chained_wrappers() -> None:
    x, y = data()
    net = model()
    opt = wrapped()
    net.compile(optimizer=opt, loss="mse")
    recorder = Recorder()
    history = net.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False, callbacks=[recorder])
    assert np.isfinite(history.history["loss"]).all()
    assert len(recorder.history) == 1 + 3 * 4
    # Clipping: every column of hidden/kernel has norm <= max_norm after every step.
    for weights in recorder.history[1:]:
        assert np.all(np.linalg.norm(weights[0], axis=0) <= MAX_NORM + 1e-5)
    # Averaging: equals a numpy EMA over the weights seen after each step.
    expected = numpy_ema(recorder.history, DECAY)
    for var, want in zip(net.trainable_weights, expected, strict=True):
        np.testing.assert_allclose(opt.average(var).numpy(), want, atol=1e-6)
    assert int(opt.iterations.numpy()) == 12


def test_custom_tf_function_loop_matches_eager() -> None:
    x, y = data()
    results = []
    for compiled in (False, True):
        net = model()
        opt = wrapped()

        def step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(net(xb) - yb))
            opt.apply_gradients(
                zip(tape.gradient(loss, net.trainable_weights), net.trainable_weights, strict=True)
            )
            return loss

        fn = tf.function(step) if compiled else step
        for i in range(4):
            fn(tf.constant(x[i * 16 : (i + 1) * 16]), tf.constant(y[i * 16 : (i + 1) * 16]))
        results.append(
            [w.numpy() for w in net.trainable_weights]
            + [opt.average(w).numpy() for w in net.trainable_weights]
        )
    for eager, graph in zip(*results, strict=True):
        np.testing.assert_allclose(eager, graph, atol=1e-6)


def _train(net: keras.Model, opt: MovingAverageOptimizer, batches: range) -> None:
    x, y = data()

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor) -> None:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(xb) - yb))
        opt.apply_gradients(
            zip(tape.gradient(loss, net.trainable_weights), net.trainable_weights, strict=True)
        )

    for i in batches:
        j = i % 4
        step(tf.constant(x[j * 16 : (j + 1) * 16]), tf.constant(y[j * 16 : (j + 1) * 16]))


def test_checkpoint_resume_is_exact(tmp_path) -> None:
    net, opt = model(), wrapped(keras.optimizers.Adam(0.01))
    _train(net, opt, range(8))
    straight = [w.numpy() for w in net.trainable_weights] + [
        opt.average(w).numpy() for w in net.trainable_weights
    ]

    first, first_opt = model(), wrapped(keras.optimizers.Adam(0.01))
    _train(first, first_opt, range(4))
    path = tf.train.Checkpoint(model=first, optimizer=first_opt).save(str(tmp_path / "ckpt"))

    resumed, resumed_opt = model(), wrapped(keras.optimizers.Adam(0.01))
    resumed_opt.build(resumed.trainable_weights)
    tf.train.Checkpoint(model=resumed, optimizer=resumed_opt).restore(path).assert_consumed()
    assert int(resumed_opt.iterations.numpy()) == 4
    _train(resumed, resumed_opt, range(4, 8))
    got = [w.numpy() for w in resumed.trainable_weights] + [
        resumed_opt.average(w).numpy() for w in resumed.trainable_weights
    ]
    for a, b in zip(straight, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_swapped_checkpoint_loads_into_plain_model(tmp_path) -> None:
    net, opt = model(), wrapped()
    _train(net, opt, range(6))
    averages = [opt.average(w).numpy() for w in net.trainable_weights]
    raw = [w.numpy() for w in net.trainable_weights]
    path = opt.swapping_saver(model=net).save(str(tmp_path / "swapped"))
    np.testing.assert_array_equal(net.trainable_weights[0].numpy(), raw[0])

    plain = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(1, name="out")]
    )
    tf.train.Checkpoint(model=plain).restore(path).expect_partial()
    for var, want in zip(plain.trainable_weights, averages, strict=True):
        np.testing.assert_array_equal(var.numpy(), want)


def test_keras_save_and_load_keep_wrappers_and_state(tmp_path) -> None:
    x, y = data()
    net = model()
    net.compile(optimizer=wrapped(), loss="mse")
    net.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    path = tmp_path / "model.keras"
    net.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, MovingAverageOptimizer)
    assert isinstance(loaded.optimizer.inner_optimizer, VariableClippingOptimizer)
    before = [v.numpy() for v in net.optimizer.variables]
    after = [v.numpy() for v in loaded.optimizer.variables]
    for a, b in zip(before, after, strict=True):  # same structure, same order
        np.testing.assert_array_equal(a, b)
    # The restored flag says the averages have started: they are usable at once.
    for var, original in zip(loaded.trainable_weights, net.trainable_weights, strict=True):
        np.testing.assert_array_equal(
            loaded.optimizer.average(var).numpy(), net.optimizer.average(original).numpy()
        )


LOAD_IN_A_NEW_PROCESS = """
import json, sys
{imports}
loaded = keras.models.load_model(sys.argv[1])
inner = loaded.optimizer.inner_optimizer
average = loaded.optimizer.average(loaded.get_layer("hidden").kernel)
print(json.dumps({{"outer": type(loaded.optimizer).__name__, "inner": type(inner).__name__,
                  "max_norm": inner.get_config()["max_norm"], "average": average.numpy().tolist()}}))
"""


@pytest.mark.parametrize(
    "imports",
    ["import optrun, keras", "import tensorflow as tf, optrun\nkeras = tf.keras"],
    ids=["optrun-first", "tensorflow-first"],
)
def test_a_new_process_loads_a_saved_model_after_import_optrun(tmp_path, imports: str) -> None:
    # Loading must not need the wrappers to be named first (import optrun imports no TensorFlow).
    x, y = data()
    net = model()
    net.compile(optimizer=wrapped(), loss="mse")
    net.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    net.save(tmp_path / "model.keras")
    code = LOAD_IN_A_NEW_PROCESS.format(imports=imports)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model.keras")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert (found["outer"], found["inner"], found["max_norm"]) == (
        "MovingAverageOptimizer",
        "VariableClippingOptimizer",
        MAX_NORM,
    )
    expected = net.optimizer.average(net.get_layer("hidden").kernel).numpy()
    np.testing.assert_array_equal(np.array(found["average"], np.float32), expected)


def test_keras_save_and_load_keep_a_step_counted_average(tmp_path) -> None:
    x, y = data()
    net, inner = model(), keras.optimizers.SGD(0.05)
    net.compile(optimizer=MovingAverageOptimizer(inner, 0.99, num_updates=inner.iterations), loss="mse")
    net.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    assert net.optimizer.get_config()["num_updates"] == "iterations"
    net.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.optimizer.has_averages and int(loaded.optimizer.iterations.numpy()) == 4
    # One more step on each: the same decay, (1 + 5) / (10 + 5), gives the same averages.
    for net_ in (net, loaded):
        net_.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0, shuffle=False)
    for var, original in zip(loaded.trainable_weights, net.trainable_weights, strict=True):
        np.testing.assert_allclose(
            loaded.optimizer.average(var).numpy(), net.optimizer.average(original).numpy(), rtol=1e-6
        )


def test_mirrored_strategy_matches_single_device() -> None:
    """Averages and clipping under tf.distribute: 2 replicas give the single-device numbers."""
    import json
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).parent / "scripts" / "mirrored_wrappers.py"

    def run(*args: str) -> dict:
        proc = subprocess.run(
            [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        found: dict = json.loads(proc.stdout.strip().splitlines()[-1])
        return found

    result = run()
    for mirrored, single in zip(result["mirrored"], result["single"], strict=True):
        np.testing.assert_allclose(mirrored, single, atol=1e-6)
    # Sparse clipping: each replica saw rows {0, 1} or {4, 5}; both copies clip all four.
    result = run("sparse")
    copies, (single,) = np.array(result["mirrored"]), np.array(result["single"])
    start = np.array(result["start"])
    assert len(copies) == 2
    np.testing.assert_array_equal(copies[0], copies[1])
    np.testing.assert_allclose(copies[0], single, atol=1e-6)
    touched = [0, 1, 4, 5]
    np.testing.assert_allclose(np.linalg.norm(copies[0][touched], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(copies[0][[2, 3, 6, 7]], start[[2, 3, 6, 7]])  # untouched: as they were


def test_sparse_clipping_across_workers_clips_every_workers_rows() -> None:
    """Two real workers: each clips the rows either touched (and an empty device scope does not
    leave the gather of those rows with nowhere to go)."""
    import json
    import os
    import pathlib
    import socket
    import subprocess
    import sys

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    script = pathlib.Path(__file__).parent / "scripts" / "multi_worker_clip.py"
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script)],
            env={
                **os.environ,
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    start = np.linalg.norm((np.random.default_rng(1).normal(size=(8, 3)) * 3).astype("float32"), axis=1)
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err[-2000:]
        norms = np.array(json.loads(out.strip().splitlines()[-1]))
        np.testing.assert_allclose(norms[[0, 1, 4, 5]], 1.0, rtol=1e-6)
        np.testing.assert_array_equal(norms[[2, 3, 6, 7]], start[[2, 3, 6, 7]])

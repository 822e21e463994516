"""A loss with an op XLA has no kernel for is refused before any compile: the default says so
in one line and goes on without XLA, ``jit_compile=True`` raises in the same words, and
TensorFlow's C++ error block never reaches stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun.evaluation.xla_kernels import check_compiles, has_xla_kernel

PROGRAM = textwrap.dedent(
    """
    import threading
    import numpy as np, tensorflow as tf, optrun
    v = tf.Variable(np.zeros(4))
    def loss():
        text = tf.strings.as_string(v[0])  # AsString: XLA has no kernel for it
        return tf.reduce_sum(tf.square(v - 1.0)) + 0.0 * tf.strings.to_number(text, tf.float64)
    def after_build(*_):  # waits for the tier-2 build, so that the run sees how it ended
        for thread in threading.enumerate():
            if thread.name == "optrun-tier2":
                thread.join()
    result = optrun.ScipyOptimizerInterface(loss, [v]).minimize(loss_callback=after_build)
    print(result.tiers["note"], "|", np.round(result.x, 6).tolist())
    """
)


def test_the_default_refuses_xla_without_tensorflows_cpp_log() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "OPTRUN_TIER2": "now"}  # TF's logs all shown
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "xla not used: XLA cannot compile AsString" in done.stdout, done.stdout
    assert done.stdout.strip().endswith("| [1.0, 1.0, 1.0, 1.0]"), done.stdout
    assert "OP_REQUIRES failed" not in done.stderr and "tf2xla conversion failed" not in done.stderr
    assert done.stderr.count("XLA cannot compile AsString") == 1, done.stderr  # the one warning


def test_jit_compile_true_names_the_op_xla_cannot_compile() -> None:
    v = tf.Variable(np.zeros(3))

    def loss() -> tf.Tensor:
        return tf.reduce_sum(tf.square(v)) + 0.0 * tf.strings.to_number(
            tf.strings.as_string(v[0]), tf.float64
        )

    with pytest.raises(
        optrun.OptrunError, match=r"jit_compile=True, but XLA cannot compile AsString \(the loss"
    ):
        optrun.ScipyOptimizerInterface(loss, [v], jit_compile=True).minimize()


def test_the_registry_check_passes_what_xla_compiles() -> None:
    assert has_xla_kernel("MatMul") and has_xla_kernel("Tanh") and not has_xla_kernel("AsString")
    spec = [tf.TensorSpec([3], tf.float64)]
    good = tf.function(lambda x: tf.reduce_sum(tf.tanh(x)), input_signature=spec, jit_compile=True)
    check_compiles(good, spec)  # nothing raised, and it still compiles
    assert float(good(tf.constant([0.0, 0.0, 0.0], tf.float64))) == 0.0

"""``OPTRUN_GRAPPLER`` per call: ``off`` calls the plain evaluation without Grappler while other
functions of the process keep it; unset (``auto``), a small graph keeps TensorFlow's default and a
large one goes without.

TensorFlow logs "Starting optimization for grappler item: <function>" for every function Grappler
rewrites (``TF_CPP_VMODULE=meta_optimizer=1``), so a fresh process says which functions it ran on.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from optrun.errors import InvalidArgumentError
from optrun.evaluation.grappler import MAX_NODES, plain_call_options, wanted
from optrun.evaluation.switches import GRAPPLER as GRAPPLER_VARIABLE

SCRIPT = """
import os
os.environ["OPTRUN_TIER2"] = "never"
os.environ["OPTRUN_GRAPPLER"] = "off"
import numpy as np
import tensorflow as tf
import optrun
from optrun.evaluation.fastcall import FastCaller
from optrun.evaluation.grappler import plain_call_options

spec = [tf.TensorSpec([3], tf.float64)]
def body(x):
    return tf.reduce_sum(tf.square(x)) * tf.ones([1], tf.float64), [tf.reduce_sum(x)]
ours = tf.function(body, input_signature=spec, autograph=False).get_concrete_function()
theirs = tf.function(body, input_signature=spec, autograph=False).get_concrete_function()
print("names", ours.name.decode(), theirs.name.decode(), flush=True)
with_options, without = FastCaller(ours, options=plain_call_options(ours)), FastCaller(theirs)
for x in ([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0]):  # the public call, then the thin one
    print("values", with_options(np.array(x))[0][0], without(np.array(x))[0][0], flush=True)

# Through the interface, in both modes that run the plain function.
v = tf.Variable([3.0, -1.0])
for jit in (None, False):
    result = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum((v - 1.0) ** 2), jit_compile=jit).minimize()
    print("minimum", jit, f"{result.fun:.6f}", flush=True)
"""


def _run() -> tuple[list[str], list[str]]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "meta_optimizer=1"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    items = [line.rsplit(": ", 1)[1] for line in done.stderr.splitlines() if "for grappler item:" in line]
    return done.stdout.splitlines(), items


def test_off_skips_grappler_for_the_plain_evaluation_only() -> None:
    out, items = _run()
    ours, theirs = out[0].split()[1:]
    assert theirs in items and ours not in items
    # The same numbers either way: 1+4+9, 0+1+4, 1+1+1.
    assert [line.split()[1:] for line in out[1:4]] == [["14.0", "14.0"], ["5.0", "5.0"], ["3.0", "3.0"]]
    # The interface's traced evaluation (``body`` in optrun/evaluation/eager.py) never went through it.
    assert [line for line in out if line.startswith("minimum")] == [
        "minimum None 0.000000",
        "minimum False 0.000000",
    ]
    assert not [item for item in items if item.startswith("__inference_body_") and item != theirs]


AUTO_SCRIPT = """
import os
os.environ["OPTRUN_TIER2"] = "never"
import tensorflow as tf
import optrun

v = tf.Variable([3.0, -1.0])
def large():  # 60 terms: with their gradients, well over 250 ops
    return tf.add_n([tf.reduce_sum(tf.sin(k * v) ** 2) for k in range(1, 61)]) + tf.reduce_sum(v**2)
for name, loss in (("small", lambda: tf.reduce_sum((v - 1.0) ** 2)), ("large", large)):
    opt = optrun.ScipyOptimizerInterface(loss, jit_compile=False)
    result = opt.minimize()
    concrete = opt._backend.trace()[1]
    print(name, concrete.name.decode(), len(concrete.graph.get_operations()), result.success, flush=True)
"""


def test_auto_keeps_grappler_for_a_small_graph_and_skips_it_for_a_large_one() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "meta_optimizer=1"}
    env.pop(GRAPPLER_VARIABLE, None)
    done = subprocess.run(
        [sys.executable, "-c", AUTO_SCRIPT], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    items = [line.rsplit(": ", 1)[1] for line in done.stderr.splitlines() if "for grappler item:" in line]
    (small, small_name, small_ops, small_ok), (large, large_name, large_ops, large_ok) = (
        line.split() for line in done.stdout.splitlines()
    )
    assert (small, large, small_ok, large_ok) == ("small", "large", "True", "True")
    assert int(small_ops) <= MAX_NODES < int(large_ops)
    assert small_name in items and large_name not in items


def test_the_rule_and_a_bad_setting_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = [tf.TensorSpec([3], tf.float64)]
    small = tf.function(lambda x: tf.reduce_sum(x**2), input_signature=spec).get_concrete_function()
    large = tf.function(
        lambda x: tf.add_n([tf.reduce_sum(tf.sin(k * x)) for k in range(1, 100)]), input_signature=spec
    ).get_concrete_function()
    assert len(small.graph.get_operations()) <= MAX_NODES < len(large.graph.get_operations())

    def skipped(concrete: object) -> bool:
        options = plain_call_options(concrete)
        if options is None:
            return False
        config = config_pb2.ConfigProto.FromString(options.config_proto_serialized)
        return config.graph_options.rewrite_options.disable_meta_optimizer

    monkeypatch.delenv(GRAPPLER_VARIABLE, raising=False)  # auto
    assert (skipped(small), skipped(large)) == (False, True)
    assert (wanted(MAX_NODES), wanted(MAX_NODES + 1)) == (True, False)
    monkeypatch.setenv(GRAPPLER_VARIABLE, "on")
    assert (skipped(small), skipped(large)) == (False, False)
    monkeypatch.setenv(GRAPPLER_VARIABLE, "off")
    assert (skipped(small), skipped(large)) == (True, True)
    monkeypatch.setenv(GRAPPLER_VARIABLE, "no")
    with pytest.raises(
        InvalidArgumentError, match=r"OPTRUN_GRAPPLER must be auto, on or off; got 'no'\. Unset"
    ):
        plain_call_options(small)

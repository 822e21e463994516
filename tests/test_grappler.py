"""``OPTRUN_GRAPPLER`` per call: ``once`` (the default) runs Grappler's passes once on the plain
evaluation, ``tensorflow`` as TensorFlow does (twice), ``off`` not at all; other functions of the
process keep TensorFlow's own settings whatever the setting.

TensorFlow logs "Starting optimization for grappler item: <function>" for every function Grappler
rewrites, then a line per pass (``TF_CPP_VMODULE=meta_optimizer=1``), so a fresh process says
which functions it ran on and how many times each pass ran.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

from optrun.errors import InvalidArgumentError
from optrun.evaluation.grappler import plain_call_options
from optrun.evaluation.switches import GRAPPLER as GRAPPLER_VARIABLE

SCRIPT = """
import os
os.environ["OPTRUN_TIER2"] = "never"
os.environ["OPTRUN_TIER1"] = "function"  # the default's first tier as a function (a session below)
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
with_options, without = FastCaller(ours, options=plain_call_options()), FastCaller(theirs)
for x in ([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0]):  # the public call, then the thin one
    print("values", with_options(np.array(x))[0][0], without(np.array(x))[0][0], flush=True)

# Through the interface, in both modes that run the plain function.
v = tf.Variable([3.0, -1.0])
for jit in (None, False):
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum((v - 1.0) ** 2), jit_compile=jit)
    result = opt.minimize()
    print("minimum", jit, f"{result.fun:.6f}", opt._backend.trace()[1].name.decode(), flush=True)

# The default's first tier on a small graph: a session, whose graph Grappler knows as tf_graph.
os.environ["OPTRUN_TIER1"] = "auto"
opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum((v - 1.0) ** 2))
v.assign([3.0, -1.0])
print("session", f"{opt.minimize().fun:.6f}", flush=True)
"""


def _run(setting: str | None) -> tuple[list[str], dict[str, list[str]]]:
    """The script's output, and for each function Grappler rewrote, the passes it ran, in order."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_VMODULE": "meta_optimizer=1"}
    env.pop(GRAPPLER_VARIABLE, None)
    if setting is not None:
        env[GRAPPLER_VARIABLE] = setting
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    passes: dict[str, list[str]] = {}
    current: list[str] = []
    for line in done.stderr.splitlines():
        if "for grappler item:" in line:
            current = passes.setdefault(line.rsplit(": ", 1)[1], [])
        elif "meta_optimizer.cc" in line and ": Graph size after" in line:
            current.append(line.split("] ", 1)[1].split(":", 1)[0])
    return done.stdout.splitlines(), passes


@pytest.mark.parametrize(("setting", "rounds"), [(None, 1), ("tensorflow", 2), ("off", 0)])
def test_the_plain_evaluation_gets_the_rounds_asked_for_and_other_functions_keep_two(
    setting: str | None, rounds: int
) -> None:
    out, passes = _run(setting)
    ours, theirs = out[0].split()[1:]
    assert passes[theirs].count("constant_folding") == 2  # TensorFlow's own: two rounds
    assert passes.get(ours, []).count("constant_folding") == rounds
    # The same numbers either way: 1+4+9, 0+1+4, 1+1+1.
    assert [line.split()[1:] for line in out[1:4]] == [["14.0", "14.0"], ["5.0", "5.0"], ["3.0", "3.0"]]
    minima = [line.split() for line in out if line.startswith("minimum")]
    assert [m[1:3] for m in minima] == [["None", "0.000000"], ["False", "0.000000"]]
    for _, _, _, body in minima:  # the interface's traced evaluation, in both modes
        assert passes.get(body, []).count("constant_folding") == rounds
    assert [line.split()[1] for line in out if line.startswith("session")] == ["0.000000"]
    assert passes.get("tf_graph", []).count("constant_folding") == rounds  # the session's graph


def test_each_setting_gives_its_options_and_a_bad_one_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def rewrites(setting: str | None) -> object:
        if setting is None:
            monkeypatch.delenv(GRAPPLER_VARIABLE, raising=False)
        else:
            monkeypatch.setenv(GRAPPLER_VARIABLE, setting)
        options = plain_call_options()
        if options is None:
            return None
        return config_pb2.ConfigProto.FromString(
            options.config_proto_serialized
        ).graph_options.rewrite_options

    once = rewrites(None)
    assert once.meta_optimizer_iterations == rewriter_config_pb2.RewriterConfig.ONE
    assert not once.disable_meta_optimizer
    assert rewrites("once") == once
    assert rewrites("tensorflow") is None
    assert rewrites("off").disable_meta_optimizer
    with pytest.raises(
        InvalidArgumentError, match=r"OPTRUN_GRAPPLER must be once, tensorflow or off; got 'on'\. Unset"
    ):
        rewrites("on")

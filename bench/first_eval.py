"""Time to the first evaluation of the eager Burgers PINN, each measured in a new process.

Rows: optrun with ``jit_compile=True`` and a cold compilation cache
(construction, then the first evaluation), with a warm cache, without XLA,
and the bare ``tf.function(jit_compile=True)`` split into tracing and
compiling, ``jit_compile=False`` with ``OPTRUN_GRAPPLER=tensorflow`` (TensorFlow's two
rounds of Grappler's rewrites, where optrun's default runs one), and ``jit_compile=False``
with the loss behind an ``if`` on a tensor (which needs AutoGraph: the trace as written fails
and the loss is traced again through AutoGraph, which rewrites it and the functions it calls:
what a loss with Python control flow on tensors pays). As in the end-to-end case,
the imports (TensorFlow, scipy.optimize and optrun's interface) and the problem's data are made
before the clock starts.
"""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf

import optrun
from bench.pinn_bench import Row, burgers
from bench.timing import fresh_process


def first_evaluation_seconds(jit_compile: bool | None, autograph: bool = False) -> dict[str, float]:
    """From a new interface to its first evaluated point: construction (given var_list, the trace,
    which checks shapes and finds the variables with no gradient), then the first evaluation
    (compiling, one run). ``autograph=True``: the loss sits behind an ``if`` on a tensor, which
    only AutoGraph's rewrite can trace."""
    weights, pinn_loss = burgers(tf.float32)
    loss = pinn_loss
    if autograph:

        def loss() -> Any:
            value = pinn_loss()
            if value >= 0:  # always true, but a tensor condition: only AutoGraph can trace it
                return value
            return -value

    interface = optrun.ScipyOptimizerInterface  # its lazy import (scipy.optimize), outside the clock
    started = time.perf_counter()
    opt = interface(loss, var_list=weights, jit_compile=jit_compile)
    built = time.perf_counter()
    opt.evaluate(opt.start_point())
    done = time.perf_counter()
    return {"construct": built - started, "first": done - built, "total": done - started}


def bare_trace_and_compile() -> dict[str, float]:
    """The floor's function alone: seconds to trace it, then to XLA-compile and run it once."""
    weights, loss = burgers(tf.float32)

    @tf.function(jit_compile=True)
    def value_and_gradient() -> Any:
        with tf.GradientTape() as tape:
            value = loss()
        return value, tape.gradient(value, weights)

    started = time.perf_counter()
    value_and_gradient.get_concrete_function()
    traced = time.perf_counter()
    value_and_gradient()
    return {"trace": traced - started, "compile": time.perf_counter() - traced}


_FIRST = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import optrun
from bench import first_eval
if sys.argv[1] != "-":
    optrun.enable_compile_cache(sys.argv[1])
if sys.argv[2] == "bare":
    print(json.dumps(first_eval.bare_trace_and_compile()))
elif sys.argv[2] == "plain-autograph":
    print(json.dumps(first_eval.first_evaluation_seconds(False, autograph=True)))
elif sys.argv[2] == "grappler-twice":
    os.environ["OPTRUN_GRAPPLER"] = "tensorflow"
    print(json.dumps(first_eval.first_evaluation_seconds(False)))
else:
    print(json.dumps(first_eval.first_evaluation_seconds({"xla": True, "plain": False}[sys.argv[2]])))
"""


def _fresh(cache: str, mode: str) -> dict[str, float]:
    return fresh_process(_FIRST, [cache, mode])


def _best(runs: list[dict[str, float]], key: str = "total") -> dict[str, float]:
    return min(runs, key=lambda r: r[key])


def time_to_first_evaluation() -> list[Row]:
    """Seconds to the first evaluation of the float32 PINN, each measured in a new process."""
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        cold = _best([_fresh(tempfile.mkdtemp(dir=cache), "xla") for _ in range(2)])
        _fresh(cache, "xla")  # fills the cache
        warm = _best([_fresh(cache, "xla") for _ in range(2)])
        plain = _best([_fresh("-", "plain") for _ in range(2)])
        grappler = _best([_fresh("-", "grappler-twice") for _ in range(2)])
        converted = _best([_fresh("-", "plain-autograph") for _ in range(2)])
        bare = _best([_fresh(tempfile.mkdtemp(dir=cache), "bare") for _ in range(2)], "compile")

    def row(setup: str, seconds: float, case: str = "") -> Row:
        return {
            "case": case,
            "setup": setup,
            "us": seconds * 1e6,
            "ratio": seconds / cold["total"],
            "target": "",
        }

    return [
        row(
            "optrun, jit_compile=True, cold cache: in all",
            cold["total"],
            "PINN float32: time to first evaluation",
        ),
        row("  of which: construction (the trace)", cold["construct"]),
        row("  of which: first evaluation (XLA compile, run)", cold["first"]),
        row("optrun, jit_compile=True, warm cache (optrun.enable_compile_cache)", warm["total"]),
        row("optrun, jit_compile=False", plain["total"]),
        row("  of which: construction (the trace)", plain["construct"]),
        row("  of which: first evaluation (one round of Grappler's rewrites, run)", plain["first"]),
        row("optrun, jit_compile=False, the loss behind an if on a tensor", converted["total"]),
        row(
            "  of which: construction (a trace as written, which fails, then one through AutoGraph)",
            converted["construct"],
        ),
        row("optrun, jit_compile=False, OPTRUN_GRAPPLER=tensorflow", grappler["total"]),
        row("  of which: first evaluation (two rounds of rewrites, run)", grappler["first"]),
        row("bare tf.function(jit_compile=True): tracing", bare["trace"]),
        row("bare tf.function(jit_compile=True): XLA compile + first run", bare["compile"]),
    ]

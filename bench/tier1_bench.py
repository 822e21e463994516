"""The TF2 default's first tier: a session over the pure graph against the plain ``tf.function``.

A chain of ``K`` dense tanh layers (400 x 50 data, one 50 x 50 weight matrix),
at three sizes. ``session``: the default's first tier
(:mod:`optrun.evaluation.pure_graph`), here with no limit on the graph's size;
``function``: ``OPTRUN_TIER1=function``. XLA is held off (``OPTRUN_TIER2=never``).

* **start**: from the interface's construction to the first evaluation's
  result (the trace, then the copy of the graph into a session, or the
  function's first call), each in a fresh process; best of :data:`REPEATS`
  processes each, in turns.
* **per point**: one process holds both, and evaluates :data:`POINTS` distinct
  points on each in turns, which goes first alternating, so that a slow spell
  of the machine falls on both; the median of each.
  (Timed in separate processes, one process's median moved by 30% from the
  next's, whichever evaluation it ran.)

A run of ``N`` points gains ``N * (function - session per point) - (session -
function start)``; the break-even ``N`` is printed beside each size.
"""

from __future__ import annotations

from typing import Any

from bench.timing import fresh_process

REPEATS = 3
POINTS = 200
#: Layers of the chain: about 600, 2,000 and 13,000 operations in the traced evaluation.
DEPTHS = [45, 150, 1000]

_CHILD = r"""
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["OPTRUN_TIER2"] = "never"
what, depth, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if what == "function":
    os.environ["OPTRUN_TIER1"] = "function"
import numpy as np
import scipy.optimize
import tensorflow as tf
import optrun
optrun.ScipyOptimizerInterface
from optrun.evaluation import pure_graph
pure_graph.MAX_OPS = 10**9  # measure past the limit too

rng = np.random.default_rng(0)
w = tf.Variable((0.1 * rng.normal(size=(50, 50))).astype(np.float32))
data = tf.constant(rng.normal(size=(400, 50)).astype(np.float32))

def loss():
    h = data
    for _ in range(depth):
        h = tf.tanh(h @ w) + 0.1 * h
    return tf.reduce_sum(h**2)

xs = [w.numpy().ravel().astype(np.float64) + 1e-3 * rng.normal(size=2500) for _ in range(points + 1)]
started = time.perf_counter()
opt = optrun.ScipyOptimizerInterface(loss, var_list=[w])
session = opt._backend.evaluator(())
session(xs[0])
found = {"start": time.perf_counter() - started}
tier = getattr(session, "_first", session)
found.update(kind=type(tier).__name__, inline=bool(getattr(tier, "inline", False)))
if what == "pair":
    function = optrun.ScipyOptimizerInterface(loss, var_list=[w], jit_compile=False)._backend.evaluator(())
    function(xs[0])
    times = {"session": [], "function": []}
    for i, x in enumerate(xs[1:]):
        for who in ("session", "function") if i % 2 else ("function", "session"):
            began = time.perf_counter()
            (tier if who == "session" else function)(x)
            times[who].append(time.perf_counter() - began)
    s, f = np.array(times["session"]), np.array(times["function"])
    found.update(session=float(np.median(s)), function=float(np.median(f)))
_, concrete, _ = opt._backend.trace()
found["ops"] = len(concrete.graph.get_operations())
print(json.dumps(found))
"""


def _measure(depth: int) -> dict[str, Any]:
    starts: dict[str, list[float]] = {"session": [], "function": []}
    for round_ in range(REPEATS):
        for who in ("session", "function") if round_ % 2 == 0 else ("function", "session"):
            starts[who].append(fresh_process(_CHILD, [who, str(depth), "0"])["start"])
    pair = fresh_process(_CHILD, ["pair", str(depth), str(POINTS)])
    return {**pair, "start_session": min(starts["session"]), "start_function": min(starts["function"])}


def session_tier() -> list[dict[str, Any]]:
    """Start and per-point time of the session tier against the plain function, by graph size."""
    rows = []
    for depth in DEPTHS:
        m = _measure(depth)
        cost = m["start_session"] - m["start_function"]
        gain = m["function"] - m["session"]
        if gain <= 0:
            even = "the session is no faster per point here"
        else:
            even = "faster from the start" if cost <= 0 else f"pays after {cost / gain:.0f} points"
        where = "calling thread" if m["inline"] else "thread pool"
        case = f"First tier: tanh chain, {m['ops']} ops ({m['kind']}, {where})"
        rows += [
            _row(case, "session over the pure graph: start", m["start_session"], m["start_session"]),
            _row("", "plain tf.function: start", m["start_function"], m["start_session"]),
            _row("", "session over the pure graph: per point (median)", m["session"], m["session"]),
            _row("", "plain tf.function: per point (median)", m["function"], m["session"], even),
        ]
    return rows


def _row(case: str, setup: str, seconds: float, base: float, target: str = "") -> dict[str, Any]:
    return {"case": case, "setup": setup, "us": seconds * 1e6, "ratio": seconds / base, "target": target}

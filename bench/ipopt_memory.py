"""What one entry of IPOPT's dense constraint Jacobian costs in memory, against the size check's count.

``IpoptInterface`` refuses a dense Jacobian that would need more memory than
is available, counting :data:`optrun.interfaces.ipopt.jacobian.BYTES_PER_ENTRY`
bytes per entry. This case measures that cost. The problem::

    min  x . x    s.t.  A x = b    (A: m x n, dense, random; b = A 0.3)

runs 2 IPOPT iterations with optrun's default options, in a fresh process per
run. Two contenders:

* ``cyipopt.Problem`` with numpy derivatives: IPOPT's and MUMPS's own
  structures (KKT matrix, factor, index arrays);
* ``optrun.IpoptInterface``: the same, plus optrun's evaluation (its rows,
  joined output and TensorFlow's buffers).

Each run's memory is its peak RSS growth from just before construction (the
imports and the problem's data already in place): the peak (``VmHWM``) is reset
to the resident size there, so memory freed earlier and reused counts. Per entry: the growth from
m = 10 to m = 100 rows over the 90 n entries added (the cost of one more
entry, start-up left out), and the growth at m = 100 over its 100 n entries
(the cost in all, start-up included).
"""

from __future__ import annotations

import math
from typing import Any

from bench.timing import fresh_process

Row = dict[str, Any]

SIZES = (20_000, 100_000)
ROWS = (10, 100)

_RUN = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


def start():
    # Resets the peak (VmHWM) to the resident size now: freed memory the run may reuse is not
    # counted as its own, and returns that size (bytes).
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return status("VmRSS")


def status(key):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key + ":"))


import numpy as np, tensorflow as tf, cyipopt
import optrun
from optrun.interfaces.ipopt.defaults import DEFAULT_OPTIONS
optrun.IpoptInterface  # the lazy import, outside the measurement
who, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
a = rng.standard_normal((m, n)) / np.sqrt(n)
b = a @ np.full(n, 0.3)
options = {**DEFAULT_OPTIONS, "max_iter": 2}
if who == "anchor":
    class Callbacks:
        def objective(self, x): return float(x @ x)
        def gradient(self, x): return 2.0 * x
        def constraints(self, x): return a @ x - b
        def jacobianstructure(self):
            return np.repeat(np.arange(m, dtype=np.int32), n), np.tile(np.arange(n, dtype=np.int32), m)
        def jacobian(self, x): return a.ravel()
    base = start()
    started = time.perf_counter()
    nlp = cyipopt.Problem(n=n, m=m, problem_obj=Callbacks(), lb=np.full(n, -2e19), ub=np.full(n, 2e19),
                          cl=np.zeros(m), cu=np.zeros(m))
    for key, value in options.items():
        nlp.add_option(key, value)
    _, info = nlp.solve(np.zeros(n))
    code = int(info["status"])
else:
    rows = tf.constant(a)
    del a
    row = [rows[k] for k in range(m)]  # views of the one copy
    target = b.tolist()
    v = tf.Variable(np.zeros(n))
    base = start()
    started = time.perf_counter()
    equalities = [lambda k=k: tf.reduce_sum(row[k] * v) - target[k] for k in range(m)]
    opt = optrun.IpoptInterface(lambda: tf.reduce_sum(v * v), [v], equalities, options={"max_iter": 2})
    code = int(opt.minimize().status)
seconds = time.perf_counter() - started
print(json.dumps({"bytes": status("VmHWM") - base, "seconds": seconds, "status": code}))
"""

LABELS = {"anchor": "cyipopt.Problem, numpy derivatives", "optrun": "optrun IpoptInterface"}


def _run(who: str, n: int, m: int) -> dict[str, Any]:
    """One fresh process: its peak RSS growth in bytes, seconds and IPOPT status."""
    found = fresh_process(_RUN, [who, str(n), str(m)])
    if found["status"] not in (-1, 0, 1):  # 2 iterations: stopped at max_iter, or already solved
        raise RuntimeError(f"{who} n={n} m={m}: IPOPT status {found['status']}")
    return found


def jacobian_memory() -> list[Row]:
    """One row per size and contender: bytes per Jacobian entry, added and in all.

    Returns:
        The bench's rows; Time is the 100-row run's, construction to result.
    """
    from optrun.interfaces.ipopt.jacobian import BYTES_PER_ENTRY

    rows: list[Row] = []
    for n in SIZES:
        for who in ("anchor", "optrun"):
            low, high = (_run(who, n, m) for m in ROWS)
            added = (high["bytes"] - low["bytes"]) / ((ROWS[1] - ROWS[0]) * n)
            in_all = high["bytes"] / (ROWS[1] * n)
            setup = (
                f"{LABELS[who]}: peak RSS +{low['bytes'] / 2**20:.0f} MB at m={ROWS[0]}, "
                f"+{high['bytes'] / 2**20:.0f} MB at m={ROWS[1]}; {added:.0f} bytes per added entry, "
                f"{in_all:.0f} bytes per entry in all at m={ROWS[1]} (time: the m={ROWS[1]} run)"
            )
            rows.append(
                {
                    "case": f"IPOPT Jacobian memory: n={n:,}, 2 iterations" if who == "anchor" else "",
                    "setup": setup,
                    "us": high["seconds"] * 1e6,
                    "ratio": math.nan,
                    "target": f"the size check counts {BYTES_PER_ENTRY} bytes per entry"
                    if who == "optrun"
                    else "",
                }
            )
    return rows

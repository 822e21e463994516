"""TensorFlow's own runtimes on one compute-bound problem: a TF1 session against a ``tf.function``.

The Burgers PINN's loss and gradient (see :mod:`bench.pinn_bench` and
:func:`bench.graph_bench.burgers_pinn`, the same network and sizes) evaluated
warm, without XLA, in four fresh processes:

* TF1: one ``Session.make_callable`` fetching the loss and ``tf.gradients``;
* TF2: one ``tf.function`` of the loss and its ``GradientTape`` gradient,
  gradients read back to NumPy, as any optimizer must;
* optrun's plain tier: ``ScipyOptimizerInterface(jit_compile=False).evaluate``
  on the TF2 problem (the ``tf.function``);
* optrun's default first tier (``jit_compile=None``, XLA held off with
  ``OPTRUN_TIER2=never``): the traced graph, made pure, run by a session
  (:mod:`optrun.evaluation.pure_graph`).

Each process takes the median of :data:`POINTS` evaluations after :data:`WARMUP`;
each row is the fastest of :data:`ROUNDS` processes, the four taking turns
(one process's median moved by up to 30% from the next's).
The gap between the first two is TensorFlow's: the function's runtime costs
more per call than a session's, which the default's first tier avoids.
"""

from __future__ import annotations

from typing import Any

from bench.timing import fresh_process

Row = dict[str, Any]
POINTS = 60
WARMUP = 5
ROUNDS = 5

_RUN = """
import json, os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
import optrun
who, points, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def median(call):
    for _ in range(warmup):
        call(0)
    times = []
    for i in range(points):
        began = time.perf_counter()
        call(i + 1)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


if who == "session":
    from bench import graph_bench
    tf.compat.v1.disable_eager_execution()
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        loss, variables = graph_bench.burgers_pinn()
        session.run(tf.compat.v1.global_variables_initializer())
        run = session.make_callable([loss, *tf.gradients(loss, variables)])
        seconds = median(lambda i: run())
else:
    from bench.pinn_bench import burgers
    weights, loss = burgers(tf.float32)
    if who == "default":
        os.environ["OPTRUN_TIER2"] = "never"
    if who == "function":
        @tf.function
        def value_and_gradient():
            with tf.GradientTape() as tape:
                value = loss()
            return value, tape.gradient(value, weights)

        seconds = median(lambda i: [g.numpy() for g in value_and_gradient()[1]])
    else:
        jit = None if who == "default" else False
        opt = optrun.ScipyOptimizerInterface(loss, var_list=weights, jit_compile=jit)
        if who == "default":  # the row's label says a session serves: check it
            assert type(opt._backend.evaluator(())._first).__name__ == "SessionCall"
        start = opt.start_point()
        seconds = median(lambda i: opt.evaluate(start + 1e-7 * i))
print(json.dumps({"seconds": seconds}))
"""

LABELS = {
    "session": "TF1 Session.make_callable, loss and tf.gradients",
    "function": "TF2 tf.function, loss and GradientTape gradient",
    "optrun": "optrun jit_compile=False (the tf.function), evaluate",
    "default": "optrun default's first tier (a session over the pure graph), evaluate",
}


def runtimes() -> list[Row]:
    """One row per runtime, ratios against the TF1 session.

    Returns:
        The bench's rows.
    """
    seen: dict[str, list[float]] = {who: [] for who in LABELS}
    for _ in range(ROUNDS):
        for who in LABELS:
            seen[who].append(fresh_process(_RUN, [who, str(POINTS), str(WARMUP)])["seconds"])
    found = {who: min(times) for who, times in seen.items()}
    base = found["session"]
    return [
        {
            "case": "TensorFlow's runtimes: Burgers PINN float32, warm, no XLA" if who == "session" else "",
            "setup": label,
            "us": found[who] * 1e6,
            "ratio": found[who] / base,
            "target": "",
        }
        for who, label in LABELS.items()
    ]

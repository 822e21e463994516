"""Whether a session callable runs its ops on the calling thread.

A ``Session`` hands each run to its inter-op thread pool and waits for it:
two thread switches per call, and, between the solver's calls, pool threads
that have gone to sleep and must be woken. On a graph of small tensors that
costs more than its arithmetic: on Rosenbrock N=100 an evaluation of an
L-BFGS-B run, scipy's work included, took 101 us through the pool and 54 us
on the calling thread (``python -m bench tf1rosen``). A graph with large
tensors gains from the pool running independent ops side by side, so a call
runs inline when what it computes is a small graph
(:mod:`optrun.evaluation.small_graph`), walked from the fetches and targets
over every op they depend on, fed or not (the walk errs towards the pool).

The TF2 default's first tier, a session too (:mod:`optrun.evaluation.pure_graph`),
decides in the same way. Kernels keep their intra-op threads either way, and
each op computes the same values: only which thread runs it changes.
``OPTRUN_SESSION_RUN=inline`` or ``pool`` fixes the choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from optrun.evaluation import switches
from optrun.evaluation.small_graph import small_graph


def runs_inline(fetches: Iterable[Any], targets: Iterable[Any] = ()) -> bool:
    """Whether a call computing ``fetches`` and running ``targets`` (ops) should run inline."""
    setting = switches.read(switches.SESSION_RUN)
    if setting != "auto":
        return setting == "inline"
    return small_graph([*(t.op for t in fetches), *targets])

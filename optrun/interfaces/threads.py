"""BLAS thread pools while an external optimizer runs, so TensorFlow keeps the cores.

scipy's L-BFGS-B (C since scipy 1.15) and friends call BLAS between
evaluations; OpenBLAS's worker threads then spin for a while after each call
and compete with TensorFlow's own threads for the cores during the next
evaluation. ``make bench`` (case "TF1 graph: Burgers PINN") shows what
limiting them to one thread for the length of ``minimize`` buys. TensorFlow's
threads are never touched, and the limit is lifted when ``minimize`` returns.

``blas_threads`` takes ``"auto"`` (one thread, except for SLSQP, whose
least-squares subproblem is dense linear algebra in n), a whole number >= 1,
or ``"unlimited"`` (leave the pools as they are). The policy is measured
(``python -m bench blas``): with one thread, SLSQP took 1.23x as long per
iteration at n = 1,000 and 1.70x at n = 5,000; trust-constr took 0.52x at
n = 1,000 and 1.00x at n = 5,000, so it gets one thread like the rest.

Finding the BLAS libraries means inspecting every library the process has
loaded: 5 ms or more with TensorFlow loaded, once per process. With ``"auto"``
the first limit of a process takes effect only once the run has lasted
:data:`DEFER_S` and its evaluations come at least :data:`HEAVY_S` apart (the
first, which traces or compiles, not counted), or as soon as a tier-2 build
runs in the background (:func:`optrun.evaluation.tiers.building`, of this or
an earlier ``minimize``): the build needs a core of its own, and spinning
workers took it, slowing both the build and the solver (case "blas": 0.74x
per evaluation of a run that builds XLA, with one thread). Light evaluations
gain too (0.82x in case "blas"), but a first run of them in a process is left
alone, as the lookup would not pay for a short one: ``blas_threads=1`` limits
it from its start. Later runs, with the libraries known, are limited from
their first evaluation; a number given as ``blas_threads`` is set from the
first evaluation of every run.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from time import perf_counter
from typing import Any

from optrun.errors import InvalidArgumentError
from optrun.evaluation.tiers import building

#: Methods whose own linear algebra may profit from BLAS threads; ``auto`` leaves them alone.
DENSE_METHODS = frozenset({"slsqp"})
#: How long a run goes unlimited before the first limit of a process is set.
DEFER_S = 0.05
#: ... and only where evaluations come at least this far apart on average.
HEAVY_S = 0.001


def check_blas_threads(value: Any) -> int | str:
    """Validates a ``blas_threads`` setting; returns it normalized."""
    if isinstance(value, str) and value.lower() in ("auto", "unlimited"):
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise InvalidArgumentError(
        f"blas_threads must be 'auto', 'unlimited' or a whole number >= 1; got {value!r}"
    )


def deferred(setting: int | str) -> bool:
    """Whether the first limit of a process waits until it pays (``"auto"``); a number the user
    asked for is set from the first evaluation."""
    return setting == "auto"


def blas_limit_for(setting: int | str, method: str | None) -> int | None:
    """The thread limit for ``method`` under ``setting``; None means no limit."""
    if setting == "unlimited":
        return None
    if setting == "auto":
        return None if method in DENSE_METHODS else 1
    return int(setting)


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    # Inspecting the loaded libraries costs 5 ms or more with TensorFlow loaded: do it once.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _known() -> bool:
    return _controller.cache_info().currsize > 0


class _Limit:
    """Sets the limit at once (libraries known, or ``defer=False``), else once the run has lasted
    DEFER_S with evaluations HEAVY_S apart, or as soon as a tier-2 build runs."""

    def __init__(self, threads: int, stack: contextlib.ExitStack, defer: bool = True) -> None:
        self._threads = threads
        self._stack = stack
        self._started = perf_counter()
        self._ticks = 0
        self._second = self._started  # when the first evaluation was over
        self.pending = True
        if _known() or not defer:
            self.apply()

    def apply(self) -> None:
        self.pending = False
        self._stack.enter_context(_controller().limit(limits=self._threads, user_api="blas"))

    def tick(self) -> None:
        if not self.pending:
            return
        now = perf_counter()
        self._ticks += 1
        if self._ticks == 2:
            self._second = now
        if building():  # a background build wants a core of its own, which spinning workers take
            self.apply()
            return
        if now - self._started < DEFER_S or self._ticks < 3:
            return
        # The pace of the evaluations after the first (which traces or compiles): light ones
        # gain nothing from the limit that would pay for finding the libraries.
        if (now - self._second) / (self._ticks - 2) >= HEAVY_S:
            self.apply()


@contextlib.contextmanager
def limited_blas(threads: int | None, defer: bool = True) -> Iterator[Callable[[], None] | None]:
    """Within the block, BLAS libraries use at most ``threads`` threads (None: unchanged).

    Yields a function to call at each evaluation, which sets a deferred first
    limit once the run has lasted :data:`DEFER_S` with evaluations at least
    :data:`HEAVY_S` apart or a tier-2 build runs, or None when there is nothing
    to defer. ``defer=False`` (a limit the user asked for) sets it at once. The
    pools are restored when the block ends, however it ends.
    """
    if threads is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        limit = _Limit(threads, stack, defer)
        yield limit.tick if limit.pending else None

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
(``make bench``, case "blas"): with one thread, SLSQP took 1.32x as long per
iteration at n = 1,000 and 1.63x at n = 5,000; trust-constr took 0.36x at
n = 1,000 and 1.05x at n = 5,000, so it gets one thread like the rest.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from optrun.errors import InvalidArgumentError

#: Methods whose own linear algebra may profit from BLAS threads; ``auto`` leaves them alone.
DENSE_METHODS = frozenset({"slsqp"})


def check_blas_threads(value: Any) -> int | str:
    """Validates a ``blas_threads`` setting; returns it normalized."""
    if isinstance(value, str) and value.lower() in ("auto", "unlimited"):
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise InvalidArgumentError(
        f"blas_threads must be 'auto', 'unlimited' or a whole number >= 1; got {value!r}"
    )


def blas_limit_for(setting: int | str, method: str | None) -> int | None:
    """The thread limit for ``method`` under ``setting``; None means no limit."""
    if setting == "unlimited":
        return None
    if setting == "auto":
        return None if method in DENSE_METHODS else 1
    return int(setting)


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    # Inspecting the loaded libraries costs about a millisecond: do it once.
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def limited_blas(threads: int | None) -> Iterator[None]:
    """Within the block, BLAS libraries use at most ``threads`` threads (None: unchanged)."""
    if threads is None:
        yield
        return
    with _controller().limit(limits=threads, user_api="blas"):
        yield

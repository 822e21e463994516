"""Whether two evaluations of the same point agree: the check before a faster path may serve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Result = tuple[Any, list[Any]]


def close(a: Result, b: Result, rtol: float) -> bool:
    """``(packed, fetched)`` pairs equal in structure and within ``rtol`` of ``b``'s largest
    magnitude for floats (XLA may reassociate sums); exactly equal for everything else."""
    if len(a[1]) != len(b[1]):
        return False
    pairs: Sequence[tuple[Any, Any]] = [(a[0], b[0]), *zip(a[1], b[1], strict=True)]
    for got_value, want_value in pairs:
        got, want = np.asarray(got_value), np.asarray(want_value)
        if got.shape != want.shape:
            return False
        if got.dtype.kind in "fc":
            # The scale of the finite entries: a NaN or Inf (compared by equal_nan) must not
            # make the tolerance NaN or infinite.
            finite = np.abs(want[np.isfinite(want)])
            scale = float(np.max(finite, initial=1.0))
            if not np.allclose(got, want, rtol=rtol, atol=rtol * scale, equal_nan=True):
                return False
        elif not np.array_equal(got, want):
            return False
    return True

"""The built-in default problem: the seed's constrained example.

minimize  v0^2 + v1^2  over v = [v0, v1], starting at [7, 7],
subject to  v1 - 1 == 0  and  v0 - 1 >= 0;  the answer is [1, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

START = (7.0, 7.0)
SOLUTION = (1.0, 1.0)


def solve_constrained_example(method: str = "SLSQP", maxiter: int | None = None) -> dict[str, Any]:
    """Solves the example with ``ScipyOptimizerInterface`` and returns plain data.

    Returns:
        ``{"method", "success", "message", "fun", "nit", "nfev", "solution": {"v": [...]},
        "residuals": {"equality": [...], "inequality": [...]}}``
    """
    import tensorflow as tf

    from optrun.scipy_interface import ScipyOptimizerInterface

    v = tf.Variable(START, dtype=tf.float64, name="v")
    options = {} if maxiter is None else {"maxiter": maxiter}
    opt = ScipyOptimizerInterface(
        lambda: tf.reduce_sum(tf.square(v)),
        equalities=[lambda: v[1] - 1.0],
        inequalities=[lambda: v[0] - 1.0],
        method=method,
        options=options,
    )
    result = opt.minimize()
    x = v.numpy()
    return {
        "method": method,
        "success": bool(result.success),
        "message": str(result.message),
        "fun": float(result.fun),
        "nit": int(result.get("nit", 0)),
        "nfev": int(result.get("nfev", 0)),
        "solution": {"v": np.asarray(x).tolist()},
        "residuals": {"equality": [float(x[1] - 1.0)], "inequality": [float(x[0] - 1.0)]},
    }

"""What ``scipy.optimize.minimize`` is handed: ``fun`` and ``callback``, as TF1's interface made them.

TF1 passed ``jac=True`` for every method, so scipy wrapped ``fun`` in
``MemoizeJac`` (a request at the point just evaluated is answered from
memory), and its own wrapper cast the gradient to float64. scipy's
``callback`` runs ``step_callback`` first, then a ``callback=`` of TF 1.0's
style, in the form it is written in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np


def per_iteration(step_callback: Callable[[np.ndarray], Any], also: Any) -> Callable[..., None]:
    """scipy's ``callback``: ``step_callback(x)``, then the user's own ``callback=``, in the style it
    is written in (scipy passes ``intermediate_result`` to a callback with only that parameter)."""
    if also is not None and set(inspect.signature(also).parameters) == {"intermediate_result"}:

        def result_style(intermediate_result: Any) -> None:
            # scipy passes its result, but TNC (which scipy does not wrap) the bare x.
            step_callback(np.array(getattr(intermediate_result, "x", intermediate_result), np.float64))
            also(intermediate_result)

        return result_style

    def callback(xk: np.ndarray, *rest: Any) -> None:
        step_callback(np.array(xk, np.float64))
        if also is not None:
            also(xk, *rest)

    return callback


def as_tf1_gave(
    loss_grad_func: Callable[[np.ndarray], Any], jac: bool | None, typed: bool = False
) -> Callable[..., Any]:
    """scipy's ``fun``, as TF1 made it: ``jac=True`` always, so scipy wrapped it in ``MemoizeJac``.

    The loss stays as ``loss_grad_func`` gives it (float32 for float32 graph variables); the
    gradient becomes float64 ("L-BFGS-B requires doubles", TF1's wrapper said). A method that
    takes no gradient gets the loss alone, and a request at the point just evaluated is
    answered from memory, without calling ``loss_grad_func`` (nor ``loss_callback``), as
    ``MemoizeJac`` answered it for TF1. ``typed``: ``loss_grad_func`` gives graph mode's float32
    (float16) values; otherwise its float64 ones are handed on as they are, with no wrapper.
    """
    if jac and not typed:
        return loss_grad_func
    if jac:

        def loss_and_grad(x: np.ndarray) -> tuple[Any, np.ndarray]:
            value, gradient = loss_grad_func(x)
            return value, np.asarray(gradient, np.float64)

        return loss_and_grad
    last: list[Any] = []  # [x, loss] of the last point evaluated

    def loss_only(x: np.ndarray) -> Any:
        if last and np.array_equal(x, last[0]):
            return last[1]
        value = loss_grad_func(x)[0]
        last[:] = [np.array(x), value]
        return value

    return loss_only


def ticking(fun: Callable[[np.ndarray], Any], tick: Callable[[], None] | None) -> Callable[[np.ndarray], Any]:
    """``fun``, calling ``tick`` before each evaluation (``fun`` itself when there is no tick)."""
    if tick is None:
        return fun

    def ticked(x: np.ndarray) -> Any:
        tick()
        return fun(x)

    return ticked

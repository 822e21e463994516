"""The problem an external optimizer works on: the loss and constraints over one packed vector.

:class:`PackedProblem` checks the constraints and ``var_list``, finds the
variables (by running the callables once, or from the ``tf.compat.v1``
graph), lays them out in one float64 vector ``x``, packs ``var_to_bounds``
onto it and makes the backend that evaluates everything at a point
(:mod:`optrun.evaluation.eager` in TF2, :mod:`optrun.evaluation.graph` in
graph mode). It reads and writes the variables as ``x`` and gives the loss's
gradient at any ``x``. :class:`optrun.interfaces.external.ExternalOptimizerInterface`
builds on it to run an external optimizer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from optrun.errors import InvalidArgumentError
from optrun.evaluation.bounds import ElementwiseBounds, PackedBounds, pack_bounds, pack_elementwise_bounds
from optrun.evaluation.eager import EagerBackend, Problem
from optrun.evaluation.graph import GraphBackend
from optrun.evaluation.packing import Layout
from optrun.evaluation.point import PointCache, as_point
from optrun.evaluation.probe import (
    Thunk,
    as_thunks,
    check_var_list,
    probe_callables,
    probe_graph,
    wants_no_xla,
)
from optrun.signatures import check_zero_argument
from optrun.varkeys import among, resolve_var_keyed, variable_label

logger = logging.getLogger("optrun")


class PackedProblem:
    """The loss and constraints over the variables packed into one float64 vector.

    The base of :class:`optrun.interfaces.external.ExternalOptimizerInterface`, which checks
    the loss and documents the arguments. A subclass says whether its method uses gradients
    (:meth:`_needs_gradients`), asked only once the arguments have been checked.

    Args:
        loss: a zero-argument callable (TF2), or a scalar graph tensor when ``graph_mode``.
        var_list: variables to optimize, or None: those the loss and constraints read.
        equalities: each a scalar held ``== 0`` (callables, or graph tensors).
        inequalities: each a scalar held ``>= 0``.
        var_to_bounds: per-variable ``(low, high)``, keyed as :func:`optrun.resolve_var_keyed` reads.
        graph_mode: whether ``loss`` is a tensor of a ``tf.compat.v1`` graph.
        jit_compile: XLA for the compiled evaluation (None: tiered).
    """

    def __init__(
        self,
        loss: Thunk,
        var_list: Sequence[Any] | None,
        equalities: Sequence[Thunk] | None,
        inequalities: Sequence[Thunk] | None,
        var_to_bounds: Mapping[Any, Any] | Sequence[tuple[Any, Any]] | None,
        *,
        graph_mode: bool,
        jit_compile: bool | None,
    ) -> None:
        given = None if var_list is None else check_var_list(var_list)
        backend: EagerBackend | GraphBackend
        if graph_mode:
            self._equalities, self._inequalities, found = probe_graph(loss, equalities, inequalities, given)
            unused: list[Any] = []
        else:
            check_zero_argument(loss, "loss")
            self._equalities = as_thunks(equalities, "equalities")
            self._inequalities = as_thunks(inequalities, "inequalities")
            # Given var_list, nothing runs eagerly: the trace below checks the shapes and finds
            # the variables that get no gradient.
            found = (
                given if given is not None else probe_callables(loss, self._equalities, self._inequalities)
            )
            unused = []
        if not found:
            raise InvalidArgumentError(
                "the loss reads no trainable variable; pass var_list, or build the loss "
                "from tf.Variable(..., trainable=True)."
            )
        self._vars = tuple(found)
        self._layout = Layout.of(self._vars)
        # TF1 handed the optimizer session.run's values: float32 variables gave a float32 start,
        # and scipy's BFGS, CG, Powell or Nelder-Mead then work in float32. Graph mode does the same.
        names = {d.base_dtype.name for d in self._layout.dtypes}
        narrow = graph_mode and names in ({"float32"}, {"float16"})
        #: The dtype of the start point ``_minimize`` gets, and of the gradient its ``loss_grad_func`` gives.
        self.start_dtype: Any = np.dtype(names.pop()) if narrow else np.dtype(np.float64)
        #: The dtype of the loss ``loss_grad_func`` gives: ``session.run``'s in graph mode, as in TF1.
        tensor: Any = loss  # graph mode: a tensor
        self.loss_dtype: Any = np.dtype(tensor.dtype.base_dtype.as_numpy_dtype if narrow else np.float64)
        self._packed_bounds: PackedBounds | None
        if isinstance(var_to_bounds, ElementwiseBounds):  # scipy's bounds=, TF 1.0's way
            self._packed_bounds = pack_elementwise_bounds(var_to_bounds.given, self._layout.size)
        else:
            if graph_mode and var_to_bounds is not None:  # as TF1: bounds of other variables go unused
                var_to_bounds, others = among(var_to_bounds, self._vars, "var_to_bounds")
                if others:
                    logger.warning(
                        "var_to_bounds bounds %s, which %s not optimized here: ignored, as TF1 did",
                        ", ".join(repr(variable_label(v)) for v in others),
                        "is" if len(others) == 1 else "are",
                    )
            bounds = resolve_var_keyed(var_to_bounds, self._vars, argument="var_to_bounds")
            self._packed_bounds = pack_bounds(bounds, self._layout)
        if graph_mode:  # only now: a bad argument must leave the user's graph as it was
            backend = GraphBackend(
                loss,
                self._equalities,
                self._inequalities,
                self._vars,
                self._layout,
                gradients=self._needs_gradients(),
                jit_compile=jit_compile,
            )
            unused = backend.unused
        else:
            if jit_compile is None and wants_no_xla(loss, *(equalities or ()), *(inequalities or ())):
                jit_compile = False  # e.g. optrun.dataset_loss: a loop over the data, not XLA's
            backend = EagerBackend(
                Problem(loss, self._equalities, self._inequalities, self._vars, self._layout),
                jit_compile=jit_compile,
            )
            backend.trace((), self._needs_gradients())  # what minimize() without fetches runs
            unused = backend.unused if self._needs_gradients() else []
        self._unused = tuple(unused)
        for var in unused:
            logger.warning(
                "variable %r gets no gradient from the loss or constraints (not read, or read only "
                "through non-differentiable ops); its gradient is zero.",
                variable_label(var),
            )
        n_eq, n_ineq = len(self._equalities), len(self._inequalities)
        parts = [*(f"equalities[{i}]" for i in range(n_eq)), *(f"inequalities[{i}]" for i in range(n_ineq))]
        flat = backend.reach.flat[1 : 1 + n_eq + n_ineq]  # the first trace's, past the loss
        self._flat = tuple(name for name, no_gradient in zip(parts, flat, strict=False) if no_gradient)
        for name in self._flat:
            logger.warning(
                "%s gets no gradient from any variable (it reads none, or reads them only through ops "
                "without a gradient, such as tf.numpy_function); its Jacobian is zero, so the solver "
                "cannot act on it.",
                name,
            )
        self._loss = loss
        self._backend = backend

    @property
    def var_list(self) -> tuple[Any, ...]:
        """The variables being optimized, in packing order."""
        return self._vars

    @property
    def unused_variables(self) -> tuple[Any, ...]:
        """Variables in ``var_list`` that neither the loss nor a constraint depends on."""
        return self._unused

    @property
    def ungraded_constraints(self) -> tuple[str, ...]:
        """The constraints (``"equalities[0]"``, ...) whose gradient reaches no variable."""
        return self._flat

    @property
    def loss(self) -> Thunk:
        """The loss callable."""
        return self._loss

    @property
    def layout(self) -> Layout:
        """How the variables map onto the packed vector."""
        return self._layout

    @property
    def packed_bounds(self) -> PackedBounds | None:
        """Element-wise bounds on the packed vector, or None."""
        return self._packed_bounds

    def start_point(self) -> np.ndarray:
        """The variables' current values, packed (float64)."""
        return self._backend.read()

    def gradient(self, x: np.ndarray | None = None) -> np.ndarray:
        """The loss gradient at ``x`` (default: the current values), packed."""
        point = self._backend.read() if x is None else np.asarray(x, np.float64)
        # Not from the minimize cache: for a gradient-free method it holds no gradients.
        return np.array(self._point_cache((), gradients=True)(point).grad)

    def assign(self, x: np.ndarray) -> None:
        """Writes a packed vector into the variables."""
        self._backend.assign(as_point(x, self._layout.size))

    def _point_cache(
        self,
        fetches: Sequence[Any],
        loss_callback: Callable[..., Any] | None = None,
        gradients: bool = True,
        check: bool = False,
    ) -> PointCache:
        counts = (self._layout.size, len(self._equalities), len(self._inequalities))
        evaluator = self._backend.evaluator(list(fetches), gradients)
        return PointCache(evaluator, counts, loss_callback, self._layout.element_name if check else None)

    def _needs_gradients(self) -> bool:
        """Whether the external method uses gradients; when not, none are computed."""
        return True

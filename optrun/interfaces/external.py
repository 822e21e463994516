"""``ExternalOptimizerInterface``: drive any external optimizer over TF variables.

The interface packs the variables into one float64 vector ``x`` and hands a
subclass NumPy callables for

* the loss ``f(x)`` and its gradient,
* equality constraints ``e_i(x) == 0`` and their gradients,
* inequality constraints ``h_j(x) >= 0`` and their gradients,

plus element-wise bounds. All of them are served by one compiled evaluation
per distinct ``x`` (see :mod:`optrun.evaluation.eager`), cached, so asking for the loss,
the gradient and every constraint at the same point costs one TF call.

A subclass implements :meth:`ExternalOptimizerInterface._minimize`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from optrun.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError
from optrun.evaluation.eager import EagerBackend, Problem
from optrun.evaluation.graph import GraphBackend
from optrun.evaluation.packing import Layout, PackedBounds, pack_bounds
from optrun.evaluation.point import Component, Evaluation, PointCache, as_point
from optrun.evaluation.probe import _check_var_list, _probe, _thunks, is_graph_tensor, probe_graph
from optrun.evaluation.tiers import Tiered, TierReport
from optrun.interfaces.callbacks import check_callbacks
from optrun.varkeys import resolve_var_keyed, variable_label

logger = logging.getLogger("optrun")

Thunk = Callable[[], Any]
LossGradFunc = Callable[[np.ndarray], tuple[float, np.ndarray]]
ValueFunc = Callable[[np.ndarray], float]
GradFunc = Callable[[np.ndarray], np.ndarray]


def no_step(xk: np.ndarray) -> None:
    """The ``step_callback`` that ``_minimize`` gets when the user gives none: TF1 always
    passed a callable, and subclasses written for it call it unconditionally."""


class ExternalOptimizerInterface:
    """Base class for interfaces with external optimization algorithms.

    Subclass it and implement :meth:`_minimize`; use e.g.
    :class:`optrun.ScipyOptimizerInterface` rather than this class itself.

    Args:
        loss: zero-argument callable returning the scalar to minimize.
        var_list: variables to optimize. Defaults to the trainable variables
            that the loss and constraints read, found by running them once.
        equalities: zero-argument callables, each a scalar held ``== 0``.
        inequalities: zero-argument callables, each a scalar held ``>= 0``.
        var_to_bounds: per-variable ``(low, high)``, each side None, a scalar
            or an array broadcastable to the variable's shape (``+-inf``
            means unbounded). Keyed by ``var.ref()``, by name or Keras path,
            or given as a list of ``(variable, (low, high))`` pairs.
        jit_compile: XLA for the compiled evaluation. None (default): tiered,
            a plain evaluation first and XLA, built in the background, once
            the run can pay for it (see :mod:`optrun.evaluation.tiers`); True: XLA from
            the first point; False: never.
        check_finite: stop ``minimize`` at the first NaN or Inf in the loss,
            a constraint or a gradient, with a :class:`optrun.NonFiniteError`
            that names it, the variables back at the last accepted iterate
            (default True). False lets the external optimizer see them.
        **optimizer_kwargs: subclass-specific options.
    """

    #: The way out a non-finite stop's message offers (a subclass may offer its own).
    nonfinite_advice = "pass check_finite=False to let the optimizer see non-finite values."

    def __init__(
        self,
        loss: Thunk,
        var_list: Sequence[Any] | None = None,
        equalities: Sequence[Thunk] | None = None,
        inequalities: Sequence[Thunk] | None = None,
        var_to_bounds: Mapping[Any, Any] | Sequence[tuple[Any, Any]] | None = None,
        *,
        jit_compile: bool | None = None,
        check_finite: bool = True,
        **optimizer_kwargs: Any,
    ) -> None:
        graph_mode = is_graph_tensor(loss)
        if not (graph_mode or callable(loss)):
            raise InvalidTypeError(
                "loss must be a zero-argument callable returning a scalar tensor (TF2), or a scalar "
                f"tensor of a tf.compat.v1 graph; got {type(loss).__name__}: {loss!r:.60}"
            )
        if jit_compile not in (None, True, False):
            raise InvalidTypeError(f"jit_compile must be None, True or False; got {jit_compile!r}")
        if check_finite not in (True, False):
            raise InvalidTypeError(f"check_finite must be True or False; got {check_finite!r}")
        #: Whether a NaN or Inf in any evaluation stops ``minimize`` with :class:`NonFiniteError`.
        self.check_finite = bool(check_finite)
        #: The keyword arguments for the external optimizer (public, as in TF1).
        self.optimizer_kwargs = dict(optimizer_kwargs)
        given = None if var_list is None else _check_var_list(var_list)
        backend: EagerBackend | GraphBackend
        if graph_mode:
            self._equalities, self._inequalities, found = probe_graph(loss, equalities, inequalities, given)
            unused: list[Any] = []
        else:
            self._equalities = _thunks(equalities, "equalities")
            self._inequalities = _thunks(inequalities, "inequalities")
            # Given var_list, nothing runs eagerly: the trace below checks the shapes and finds
            # the variables that get no gradient.
            found = given if given is not None else _probe(loss, self._equalities, self._inequalities)
            unused = []
        if not found:
            raise InvalidArgumentError(
                "the loss reads no trainable variable; pass var_list, or build the loss "
                "from tf.Variable(..., trainable=True)."
            )
        self._vars = tuple(found)
        self._layout = Layout.of(self._vars)
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
        self._loss = loss
        self._cache: PointCache | None = None
        self._tiers: dict[str, Any] | None = None
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

    def evaluate(self, x: np.ndarray | None = None) -> dict[str, Any]:
        """Loss and constraint residuals at ``x`` (default: the variables' current values).

        Served from the last :meth:`minimize` evaluation when it was at ``x``;
        otherwise one compiled evaluation (the one ``minimize`` uses without
        fetches, so nothing is traced again), which assigns ``x``.

        Returns:
            ``{"loss", "equalities", "inequalities", "violation"}`` where
            violation is ``max(|e_i|, max(0, -h_j))``, 0 when all hold.
        """
        point = self._backend.read() if x is None else np.asarray(x, np.float64)
        ev = self.peek(point) or self._point_cache((), gradients=self._needs_gradients())(point)
        return {
            "loss": ev.loss,
            "equalities": ev.equalities.tolist(),
            "inequalities": ev.inequalities.tolist(),
            "violation": ev.violation,
        }

    @property
    def nfev(self) -> int:
        """How many times the optimizer asked for the loss in the current (or last) :meth:`minimize`.

        scipy's ``nfev`` for every ``scipy.optimize.minimize`` method, read as it
        runs (e.g. from ``step_callback``); 0 before the first minimize.
        """
        return self._cache.loss_requests if self._cache is not None else 0

    @property
    def xla(self) -> bool | None:
        """Whether the evaluation runs under XLA: in a fixed mode once known (None before the first
        evaluation, and in graph mode); in the default, tiered mode, whether XLA serves now."""
        evaluator = self._cache.evaluator if self._cache is not None else None
        if isinstance(evaluator, Tiered):
            return evaluator.tier.startswith("xla")
        return getattr(self._backend, "xla", None)

    def peek(self, x: np.ndarray) -> Evaluation | None:
        """The last evaluation of the current (or last) :meth:`minimize`, if it was at ``x``."""
        return self._cache.peek(x) if self._cache is not None else None

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

    def minimize(
        self,
        session: Any = None,
        feed_dict: Any = None,
        fetches: Sequence[Any] | None = None,
        step_callback: Callable[[np.ndarray], Any] | None = None,
        loss_callback: Callable[..., Any] | None = None,
    ) -> Any:
        """Minimizes the loss; the variables hold the solution afterwards.

        Args:
            session: graph mode only: the ``tf.compat.v1.Session`` to run in
                (default: the default session). Must be None in TF2.
            feed_dict: graph mode only: fed to every evaluation, constraints
                included. Must be None in TF2.
            fetches: evaluated with the loss and passed to ``loss_callback``
                as NumPy values: zero-argument callables or variables (TF2),
                tensors or variables (graph mode).
            step_callback: called once per iteration with one argument, the packed float64 ``x``.
            loss_callback: called on every loss request (scipy's ``nfev``, line-search points
                included) as ``loss_callback(*fetched)``: one NumPy value per fetch, in order;
                no arguments without fetches.

        Returns:
            The subclass's result; for scipy, its ``OptimizeResult``.

        Raises:
            InvalidArgumentError: a callback cannot take those arguments (checked before any evaluation).
        """
        check_callbacks(step_callback, loss_callback, fetches)
        with self._backend.bound(session, feed_dict):
            return self._run(fetches, step_callback or no_step, loss_callback)

    def _run(
        self,
        fetches: Sequence[Any] | None,
        step_callback: Callable[[np.ndarray], Any],
        loss_callback: Callable[..., Any] | None,
    ) -> Any:
        n_eq, n_ineq = len(self._equalities), len(self._inequalities)
        cache = self._cache = self._point_cache(
            fetches or [], loss_callback, self._needs_gradients(), self.check_finite
        )
        initial = self._backend.read()
        # Where a non-finite stop leaves the variables. With constraints: the last accepted
        # iterate, from step_callback. Without: the lowest-loss point evaluated, which is that
        # iterate or better, tracked by the cache at no per-iteration cost.
        constrained = bool(n_eq or n_ineq)
        accepted: dict[str, Any] = {"x": initial, "iteration": 0}

        tiers = cache.evaluator if isinstance(cache.evaluator, Tiered) else None
        if tiers is not None:
            tiers.begin(self._evaluation_budget())

        def step(xk: np.ndarray) -> None:
            accepted.update(x=xk, iteration=accepted["iteration"] + 1)
            if tiers is not None:
                tiers.boundary(xk)
            step_callback(xk)

        if self._packed_bounds is not None:
            outside = np.flatnonzero(
                (initial < self._packed_bounds.lower) | (initial > self._packed_bounds.upper)
            )
            if outside.size:
                logger.info("%d start value(s) lie outside var_to_bounds", outside.size)
        try:
            result = self._minimize(
                initial_val=initial,
                loss_grad_func=cache.loss_and_grad,
                equality_funcs=[Component(cache, "equalities", i) for i in range(n_eq)],
                equality_grad_funcs=[Component(cache, "equality_jacobian", i) for i in range(n_eq)],
                inequality_funcs=[Component(cache, "inequalities", i) for i in range(n_ineq)],
                inequality_grad_funcs=[Component(cache, "inequality_jacobian", i) for i in range(n_ineq)],
                packed_bounds=self._packed_bounds,
                step_callback=step
                if tiers is not None or (self.check_finite and constrained)
                else step_callback,
                optimizer_kwargs=dict(self.optimizer_kwargs),
            )
        except NonFiniteError as error:
            self._end_tiers(tiers, raised=True)
            if constrained and accepted["iteration"]:
                keep, where = accepted["x"], f"the last accepted iterate (iteration {accepted['iteration']})"
            elif not constrained and cache.best_x is not None:
                keep, where = (
                    cache.best_x,
                    f"the finite point of lowest loss evaluated ({cache.best_loss:.6g})",
                )
            else:
                keep, where = initial, "the start point"
            self._backend.assign(np.asarray(keep, np.float64))
            raise NonFiniteError(
                f"minimize stopped: {error}. The variables hold {where}. "
                f"Look for log(0), 0/0 or an overflow in the loss and constraints, or {self.nonfinite_advice}"
            ) from None
        except BaseException:
            self._end_tiers(tiers, raised=True)
            raise
        self._end_tiers(tiers, raised=False)
        if isinstance(result, dict):
            result["tiers"] = self.tiers
        solution = getattr(result, "x", result)
        self._backend.assign(np.asarray(solution, np.float64))
        return result

    def _end_tiers(self, tiers: Tiered | None, raised: bool) -> None:
        cache = self._cache
        assert cache is not None
        if tiers is not None:
            tiers.end(raised)
            self._tiers = tiers.report.as_dict()
        else:
            # Graph mode's fixed modes name their path ("function" or "session").
            xla = self.xla
            mode: str = (
                "xla" if xla else "plain" if xla is False else getattr(cache.evaluator, "path", "session")
            )
            self._tiers = TierReport(mode, "", {mode: cache.evaluations}).as_dict()

    @property
    def tiers(self) -> dict[str, Any] | None:
        """Which evaluation served the last :meth:`minimize`: ``first`` and ``second`` (the tiers;
        ``second`` is empty in a fixed mode), ``evaluations`` per tier,
        ``switched_at_evaluation`` and ``switched_after_s`` (None when it never switched) and a
        ``note`` on why not. See :mod:`optrun.evaluation.tiers`."""
        return self._tiers

    def _evaluation_budget(self) -> int | None:
        """The most evaluations ``_minimize`` may make, if the subclass can tell (tiering uses it
        not to build a faster evaluation that a short run cannot pay back)."""
        return None

    def _minimize(
        self,
        initial_val: np.ndarray,
        loss_grad_func: LossGradFunc,
        equality_funcs: list[ValueFunc],
        equality_grad_funcs: list[GradFunc],
        inequality_funcs: list[ValueFunc],
        inequality_grad_funcs: list[GradFunc],
        packed_bounds: PackedBounds | None,
        step_callback: Callable[[np.ndarray], Any],
        optimizer_kwargs: dict[str, Any],
    ) -> Any:
        """Runs the external optimizer. Subclasses implement this.

        Args:
            initial_val: packed float64 start point.
            loss_grad_func: ``x -> (loss, gradient)``.
            equality_funcs: ``x -> e_i(x)``, each to be held at 0.
            equality_grad_funcs: ``x -> grad e_i(x)``.
            inequality_funcs: ``x -> h_j(x)``, each to be held ``>= 0``.
            inequality_grad_funcs: ``x -> grad h_j(x)``.
            packed_bounds: element-wise bounds, or None.
            step_callback: to call once per iteration with ``x`` (always
                callable; :func:`no_step` when the user gave none).
            optimizer_kwargs: the keyword arguments given at construction.

        Returns:
            The packed solution, or a result object with the solution in ``.x``.
        """
        raise NotImplementedError(
            "ExternalOptimizerInterface is a base class: subclass it and implement "
            "_minimize(...), or use optrun.ScipyOptimizerInterface."
        )

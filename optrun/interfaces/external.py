"""``ExternalOptimizerInterface``: drive any external optimizer over TF variables.

The interface packs the variables into one float64 vector ``x`` and hands a
subclass NumPy callables for

* the loss ``f(x)`` and its gradient,
* equality constraints ``e_i(x) == 0`` and their gradients,
* inequality constraints ``h_j(x) >= 0`` and their gradients,

plus element-wise bounds. All of them are served by one compiled evaluation
per distinct ``x`` (see :mod:`optrun.evaluation.eager`), cached, so asking for the loss,
the gradient and every constraint at the same point costs one TF call.

A subclass implements :meth:`ExternalOptimizerInterface._minimize`. The problem (variables,
packing, bounds, backend) is :class:`optrun.interfaces.problem.PackedProblem`, this class's
base; one ``minimize``'s bookkeeping is :class:`optrun.interfaces.run_state.RunState`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from optrun.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError
from optrun.evaluation import switches
from optrun.evaluation.bounds import PackedBounds, gives_bounds
from optrun.evaluation.point import Component, Evaluation, PointCache
from optrun.evaluation.probe import Thunk, is_graph_tensor
from optrun.evaluation.tiers import Tiered
from optrun.interfaces.callbacks import check_callbacks, flat_fetches, watched_kwargs
from optrun.interfaces.problem import PackedProblem
from optrun.interfaces.run_state import RunState

logger = logging.getLogger("optrun")

LossGradFunc = Callable[[np.ndarray], tuple[float, np.ndarray]]
ValueFunc = Callable[[np.ndarray], np.ndarray]
GradFunc = Callable[[np.ndarray], np.ndarray]


def no_step(xk: np.ndarray) -> None:
    """The ``step_callback`` that ``_minimize`` gets when the user gives none: TF1 always
    passed a callable, and subclasses written for it call it unconditionally."""


class ExternalOptimizerInterface(PackedProblem):
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
        switches.check_all()  # an OPTRUN_* typo is refused here, not at the first evaluation
        # TF 1.0's _minimize had no packed_bounds: a subclass written for it still runs.
        params = inspect.signature(self._minimize).parameters.values()
        self._takes_bounds = any(p.name == "packed_bounds" or p.kind is p.VAR_KEYWORD for p in params)
        if gives_bounds(var_to_bounds) and not self._takes_bounds:
            raise InvalidArgumentError(
                f"{type(self).__name__}._minimize takes no packed_bounds, so it cannot honour "
                "var_to_bounds; add a packed_bounds parameter to it, or drop var_to_bounds."
            )
        #: Whether a NaN or Inf in any evaluation stops ``minimize`` with :class:`NonFiniteError`.
        self.check_finite = bool(check_finite)
        #: The keyword arguments for the external optimizer (public, as in TF1).
        self.optimizer_kwargs = dict(optimizer_kwargs)
        super().__init__(
            loss,
            var_list,
            equalities,
            inequalities,
            var_to_bounds,
            graph_mode=graph_mode,
            jit_compile=jit_compile,
        )
        self._cache: PointCache | None = None
        self._tiers: dict[str, Any] | None = None

    def evaluate(self, x: np.ndarray | None = None) -> dict[str, Any]:
        """Loss and constraint residuals at ``x`` (default: the variables' current values).

        Served from the last :meth:`minimize` evaluation when it was at ``x``; otherwise one compiled
        evaluation (``minimize``'s without fetches: nothing is traced again). ``x`` is left in the variables.

        Returns:
            ``{"loss", "equalities", "inequalities", "violation"}`` where
            violation is ``max(|e_i|, max(0, -h_j))``, 0 when all hold.
        """
        point = self._backend.read() if x is None else np.asarray(x, np.float64)
        ev = self.peek(point) or self._point_cache((), gradients=self._needs_gradients())(point)
        if x is not None:
            self._backend.assign(point)  # the session tier never writes them
        return {
            "loss": ev.loss,
            "equalities": ev.equalities.tolist(),
            "inequalities": ev.inequalities.tolist(),
            "violation": ev.violation,
        }

    @property
    def nfev(self) -> int:
        """How many times the optimizer asked for the loss in the current (or last) :meth:`minimize`:
        scipy's ``nfev`` for every method, read as it runs (e.g. from ``step_callback``); 0 before.
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
            fetches: evaluated with the loss and passed to ``loss_callback`` as NumPy values:
                zero-argument callables or variables (TF2), tensors or variables (graph mode),
                or nested lists, tuples and dicts of them, passed back nested.
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
        fetches, loss_callback = flat_fetches(fetches, loss_callback)
        with self._backend.bound(session, feed_dict) as watch:  # feeds read again after a callback
            return self._run(fetches, watch(step_callback) or no_step, watch(loss_callback, False), watch)

    def _run(
        self,
        fetches: Sequence[Any] | None,
        step_callback: Callable[[np.ndarray], Any],
        loss_callback: Callable[..., Any] | None,
        watch: Callable[..., Any],
    ) -> Any:
        n_eq, n_ineq = len(self._equalities), len(self._inequalities)
        cache = self._cache = self._point_cache(
            fetches or [], loss_callback, self._needs_gradients(), self.check_finite
        )
        initial = self._backend.read()
        kept_feasible = bool(n_eq or n_ineq) or self._packed_bounds is not None
        run = RunState(cache, initial, constrained=kept_feasible, budget=self._evaluation_budget())
        if self._packed_bounds is not None and (outside := self._packed_bounds.outside(initial)):
            logger.info("%d start value(s) lie outside var_to_bounds", outside)
        try:
            bounds = {"packed_bounds": self._packed_bounds} if self._takes_bounds else {}
            result = self._minimize(
                initial_val=initial.astype(self.start_dtype),
                loss_grad_func=cache.typed_loss_and_grad(self.loss_dtype, self.start_dtype),
                equality_funcs=[Component(cache, "equalities", i) for i in range(n_eq)],
                equality_grad_funcs=[Component(cache, "equality_jacobian", i) for i in range(n_eq)],
                inequality_funcs=[Component(cache, "inequalities", i) for i in range(n_ineq)],
                inequality_grad_funcs=[Component(cache, "inequality_jacobian", i) for i in range(n_ineq)],
                step_callback=run.step_callback(step_callback, self.check_finite),
                optimizer_kwargs=watched_kwargs(self.optimizer_kwargs, watch),
                **bounds,
            )
        except NonFiniteError as error:
            self._tiers = run.end(raised=True, backend=self._backend)
            keep, stop = run.nonfinite_stop(error, self.nonfinite_advice)
            self._backend.assign(keep)
            raise stop from None
        except BaseException:
            self._tiers = run.end(raised=True, backend=self._backend)
            # The variables held the optimizer's last trial point (in TF2, and for graph-mode
            # resource variables); keep its progress instead, as for a non-finite stop.
            with contextlib.suppress(Exception):  # a failing session: the user's error comes first
                self._backend.assign(run.kept()[0])
            raise
        self._tiers = run.end(raised=False, backend=self._backend)
        if isinstance(result, dict):
            result["tiers"] = self.tiers
        self._backend.assign(run.solution(result, type(self).__name__, self._backend))
        return result

    @property
    def tiers(self) -> dict[str, Any] | None:
        """Which evaluation served the last :meth:`minimize`: ``first`` and ``second`` (the tiers;
        ``second`` is empty in a fixed mode), ``evaluations`` per tier,
        ``switched_at_evaluation`` and ``switched_after_s`` (None when it never switched),
        ``dropped_at_evaluation`` (tier 2 turned out slower and tier 1 served again; None
        otherwise) and a ``note`` on why. See :mod:`optrun.evaluation.tiers`."""
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
            initial_val: packed start point; float64, in graph mode float32 (float16) as in TF1.
            loss_grad_func: ``x -> (loss, gradient)``.
            equality_funcs: ``x -> [e_i(x)]``, each to be held at 0 (a ``(1,)`` array, as
                TF1's functions gave one-element lists).
            equality_grad_funcs: ``x -> [grad e_i(x)]``, a ``(1, n)`` array.
            inequality_funcs: ``x -> [h_j(x)]``, each to be held ``>= 0``.
            inequality_grad_funcs: ``x -> [grad h_j(x)]``.
            packed_bounds: element-wise bounds, or None; not passed to a ``_minimize`` without
                it (TF 1.0's), which then refuses ``var_to_bounds``.
            step_callback: to call once per iteration with the accepted ``x`` (always
                callable; :func:`no_step` when neither the user nor the interface needs it). Beside
                the user's callback it may switch evaluation tiers and record the iterate a run
                that raises keeps, so an optimizer that never calls it loses those.
            optimizer_kwargs: the keyword arguments given at construction.

        Returns:
            The packed solution, or a result object with the solution in ``.x``.
        """
        raise NotImplementedError(
            "ExternalOptimizerInterface is a base class: subclass it and implement "
            "_minimize(...), or use optrun.ScipyOptimizerInterface."
        )

"""Eager TensorFlow 2 backend: one compiled evaluation per point.

A single ``tf.function`` takes the packed float64 vector ``x``, assigns it to
the variables (unpacking inside the graph), and returns in one flat float64
vector::

    [ f(x) | grad f(x) | e(x) | J_e(x) (row-major) | h(x) | J_h(x) (row-major) ]

plus the user's fetches. It is traced once per set of fetches and never
again (the XLA tier compiles that same trace), and called through a thin
dispatch path (:mod:`optrun.evaluation.fastcall`). Which variables get no gradient is
learnt while tracing, so that given ``var_list`` nothing runs eagerly. A
graph-mode (``tf.compat.v1``) backend implements the same three methods:
``read``, ``assign`` and ``evaluator``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.causes import build_failure, no_xla_kernel
from optrun.errors import InvalidArgumentError, OptrunError
from optrun.evaluation import switches
from optrun.evaluation.autograph import as_written, converted, holds_dataset, same_failure
from optrun.evaluation.compile_cache import compile_cache_warm
from optrun.evaluation.compile_estimate import compile_estimate
from optrun.evaluation.fastcall import FastCaller, shadow_call
from optrun.evaluation.grappler import plain_call_options
from optrun.evaluation.outputs import Reach, pack_outputs
from optrun.evaluation.packing import Layout, as_scalar
from optrun.evaluation.point import Evaluator
from optrun.evaluation.probe import check_fetches, check_scalar, run_user
from optrun.evaluation.pure_graph import SessionCall, pure_graph_def
from optrun.evaluation.side_effects import side_effect
from optrun.evaluation.stack_traces import freeze
from optrun.evaluation.tiers import Candidate, Tiered
from optrun.evaluation.xla_kernels import check_compiles
from optrun.varkeys import as_tf_variable

logger = logging.getLogger("optrun")

Thunk = Callable[[], Any]
#: Compiled evaluators kept per problem (one per distinct fetch list); the oldest goes first.
MAX_EVALUATORS = 8


@dataclass(frozen=True)
class Problem:
    """What to evaluate: zero-argument callables over ``variables``."""

    loss: Thunk
    equalities: tuple[Thunk, ...]
    inequalities: tuple[Thunk, ...]
    variables: tuple[Any, ...]
    layout: Layout


def _fetch(item: Any, convert: bool) -> Any:
    if callable(item):
        return (converted(item) if convert else item)()
    return as_tf_variable(item).read_value()


class EagerBackend:
    """Evaluates a :class:`Problem` with compiled ``tf.function``s.

    Args:
        problem: the loss, constraints and variables.
        jit_compile: True: XLA from the first point; False: a plain
            ``tf.function`` throughout; None (the default): tiered, a plain
            ``tf.function`` first and XLA once it pays (see :mod:`optrun.evaluation.tiers`).
    """

    def __init__(self, problem: Problem, jit_compile: bool | None = None) -> None:
        self._problem = problem
        self._tf_vars = [as_tf_variable(v) for v in problem.variables]
        self._jit_compile = jit_compile
        self._evaluators: dict[tuple[Any, ...], tuple[tuple[Any, ...], Evaluator]] = {}
        self._traces: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any, float]] = {}
        self.reach = Reach(len(problem.variables))  # found while tracing
        self._user: list[Thunk] | None = None
        # Whether the user's code needs AutoGraph: learnt from a trace that fails without it, or
        # known beforehand for code that holds a dataset (see autograph.holds_dataset).
        self._needs_autograph = any(
            holds_dataset(f) for f in (problem.loss, *problem.equalities, *problem.inequalities)
        )
        self.xla: bool | None = None  # whether XLA is in use, once known (fixed modes)

    @contextlib.contextmanager
    def bound(self, session: Any, feed_dict: Any) -> Iterator[Callable[..., Any]]:
        """The graph backend's session binding; in TF2 both must be None, and callbacks need no
        watching (a ``tf.function`` reads its variables at every call)."""
        if session is not None or feed_dict is not None:
            raise InvalidArgumentError(
                "session and feed_dict are for tf.compat.v1 graphs, where the loss is a graph "
                "tensor; this loss is a callable, so call minimize() without them."
            )
        yield lambda callback, deep=True: callback

    def read(self) -> np.ndarray:
        """The variables' current values, packed."""
        return self._problem.layout.pack_np([v.numpy() for v in self._tf_vars])

    def assign(self, x: np.ndarray) -> None:
        """Writes a packed vector into the variables."""
        values = self._problem.layout.unpack_np(np.asarray(x, np.float64))
        for var, value in zip(self._tf_vars, values, strict=True):
            var.assign(value.astype(var.dtype.as_numpy_dtype))

    def evaluator(self, fetches: Sequence[Any] = (), gradients: bool = True) -> Evaluator:
        """A function ``x -> (packed outputs, fetched values)``, traced once per fetches.

        With ``gradients=False`` (gradient-free methods) the gradient and Jacobian
        slots hold zeros and no backward pass is run.
        """
        fetches = tuple(fetches)
        key = (gradients, *(id(f) for f in fetches))
        if key not in self._evaluators:
            check_fetches(fetches)
            if len(self._evaluators) >= MAX_EVALUATORS:  # new fetch lists each call: keep memory bounded
                self._evaluators.pop(next(iter(self._evaluators)))
                self._traces.pop(next(iter(self._traces)), None)
            # The tuple keeps the fetches alive, so their ids stay unique.
            self._evaluators[key] = (fetches, self._compile(fetches, gradients))
        return self._evaluators[key][1]

    def _body(self, fetches: tuple[Any, ...], gradients: bool, convert: bool) -> Callable[[tf.Tensor], Any]:
        problem, tf_vars, layout = self._problem, self._tf_vars, self._problem.layout
        reach = self.reach

        def grad(tape: tf.GradientTape, value: tf.Tensor) -> tf.Tensor:
            if not gradients:  # gradient-free method: the slots are zeros, no backward pass
                return tf.zeros([layout.size], tf.float64)
            # NONE, then zeros: which variables get no gradient is learnt here, while tracing.
            grads = tape.gradient(value, tf_vars, unconnected_gradients=tf.UnconnectedGradients.NONE)
            reach.saw(grads)
            return layout.pack_tf(
                [tf.zeros_like(v) if g is None else g for v, g in zip(tf_vars, grads, strict=True)]
            )

        user = self._converted() if convert else [problem.loss, *problem.equalities, *problem.inequalities]
        n_eq = len(problem.equalities)
        names = ["loss", *(f"equalities[{i}]" for i in range(n_eq))]
        names += [f"inequalities[{i}]" for i in range(len(problem.inequalities))]

        def body(x: tf.Tensor) -> Any:
            for var, value in zip(tf_vars, layout.unpack_tf(x), strict=True):
                var.assign(value)
            constrained = bool(problem.equalities or problem.inequalities)
            with tf.GradientTape(persistent=constrained, watch_accessed_variables=False) as tape:
                tape.watch(tf_vars)
                values = [
                    as_scalar(check_scalar(run_user(f, name), name))
                    for f, name in zip(user, names, strict=True)
                ]
            packed = pack_outputs(
                values[0], values[1 : 1 + n_eq], values[1 + n_eq :], functools.partial(grad, tape)
            )
            del tape
            return packed, [_fetch(f, convert) for f in fetches]

        return body

    def _converted(self) -> list[Thunk]:
        """The loss and constraints as AutoGraph converts them, converted once (optrun's own
        code is never converted: autograph=False below)."""
        if self._user is None:
            problem = self._problem
            self._user = [converted(f) for f in (problem.loss, *problem.equalities, *problem.inequalities)]
        return self._user

    def trace(self, fetches: tuple[Any, ...] = (), gradients: bool = True) -> Any:
        """The plain (no XLA) concrete function for ``fetches``, traced once and kept.

        The user's code is traced as written first: AutoGraph's rewrite (of its source and of
        every function it calls) is much of a trace, and code without Python control flow on
        tensors traces to the same graph without it. Code with such control flow fails that
        trace (an ``if`` on a tensor, a loop over one raise), as does code that creates a
        variable (refused there, see :func:`~optrun.evaluation.autograph.as_written`); it is
        traced again through AutoGraph, as ``tf.function`` would trace it, and so is code that
        failed otherwise, whose error, if AutoGraph's trace fails alike, is the first one.
        """
        key = (gradients, *(id(f) for f in fetches))
        if key not in self._traces:
            traced, first = None, None
            if not self._needs_autograph:
                try:
                    traced = as_written(lambda: self._traced(fetches, gradients, False))
                except OptrunError:  # optrun's own refusal (a loss that is not a scalar): no retry
                    raise
                except Exception as error:  # noqa: BLE001 - any other error: trace as tf.function would
                    logger.debug("tracing without AutoGraph failed (%s); tracing through it", error)
                    first = error
            if traced is None:
                self._converted()  # before the clock: COMPILE_PER_TRACE was measured on traces alone
                try:
                    traced = self._traced(fetches, gradients, True)
                except Exception as error:
                    if first is None or not same_failure(first, error):
                        raise
                if traced is None:
                    assert first is not None
                    raise first  # failed alike: the first names the user's own line
                self._needs_autograph = True
            self._traces[key] = (fetches, *traced)
        return self._traces[key]

    def _traced(self, fetches: tuple[Any, ...], gradients: bool, convert: bool) -> tuple[Any, float]:
        spec = [tf.TensorSpec([self._problem.layout.size], tf.float64)]
        started = time.perf_counter()
        function = tf.function(self._body(fetches, gradients, convert), input_signature=spec, autograph=False)
        return function.get_concrete_function(), time.perf_counter() - started

    @property
    def unused(self) -> list[Any]:
        """Variables no traced gradient reached (known once a gradient evaluation is traced)."""
        return [self._problem.variables[i] for i in sorted(self.reach.ungraded)]

    def _compile(self, fetches: tuple[Any, ...], gradients: bool) -> Evaluator:
        _, plain, trace_s = self.trace(fetches, gradients)
        options = plain_call_options()
        effect = side_effect(plain, self._tf_vars)  # then each point runs once: no checks, no tiers
        if self._jit_compile is False:
            self.xla = False
            return FastCaller(plain, options=options, once=bool(effect))
        spec = [tf.TensorSpec([self._problem.layout.size], tf.float64)]

        def xla_function() -> Any:
            # XLA over the plain trace: the user's code is traced once for both tiers.
            return tf.function(plain, input_signature=spec, jit_compile=True, autograph=False)

        if self._jit_compile is None:
            return Tiered(
                self._first_tier(plain, options, bool(effect)),
                functools.partial(self._xla_candidate, xla_function, spec),
                ("plain", "xla"),
                compile_estimate=compile_estimate(plain, trace_s),
                start_now=compile_cache_warm(),
                held=effect and f"the evaluation has a side effect ({effect}), so each point runs once",
            )
        call = FastCaller(xla_function().get_concrete_function(), once=bool(effect))
        first = True

        def evaluate(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            nonlocal first
            if not first:
                return call(x)
            try:
                result = call(x)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
                raise _xla_refused(error) from error
            first, self.xla = False, True
            return result

        return evaluate

    def _first_tier(self, plain: Any, options: Any, once: bool) -> Evaluator:
        """The default's tier 1: the pure graph run by a session where the graph qualifies
        (:mod:`optrun.evaluation.pure_graph`), else the plain function."""
        make_plain = functools.partial(FastCaller, plain, options=options, once=once)
        if once or switches.read(switches.TIER1) == "function":  # side effects: as jit_compile=False
            return make_plain()
        try:
            definition = pure_graph_def(plain, self._tf_vars)
            if definition is not None:
                return SessionCall(definition, plain, make_plain, options)
        except Exception as error:  # noqa: BLE001 - the plain function serves as well
            logger.debug("no session for the first tier (%s)", error)
        return make_plain()

    def _xla_candidate(self, xla_function: Callable[[], Any], spec: list[tf.TensorSpec]) -> Candidate:
        """Tier 2, built in the background: compiled and tried on shadow copies of the variables,
        so that the solver's evaluations on tier 1 meanwhile see only their own writes. An op XLA
        has no kernel for is refused first, without TensorFlow's C++ log of a failed compile."""
        function = xla_function()
        concrete = function.get_concrete_function()
        freeze(concrete)  # else an error on tier 1 during the compile can deadlock the two threads
        check_compiles(function, spec)  # after freeze: its error reads the ops' stack traces
        shadows = {id(v.handle): tf.Variable(v.read_value(), trainable=False) for v in self._tf_vars}
        return Candidate(trial=shadow_call(concrete, shadows), evaluator=FastCaller(concrete))


def _xla_refused(error: Exception) -> InvalidArgumentError:
    """``jit_compile=True`` on a loss XLA cannot compile: XLA's first line, and what to pass."""
    why = build_failure(error)  # "XLA cannot compile AsString (...)", else XLA's first line
    if not no_xla_kernel(str(error)):
        why = f"XLA cannot compile the loss or constraints: {why}"
    return InvalidArgumentError(
        f"jit_compile=True, but {why}. Pass jit_compile=None to fall back automatically, or False."
    )

"""Eager TensorFlow 2 backend: one compiled evaluation per point.

A single ``tf.function`` takes the packed float64 vector ``x``, assigns it to
the variables (unpacking inside the graph), and returns in one flat float64
vector::

    [ f(x) | grad f(x) | e(x) | J_e(x) (row-major) | h(x) | J_h(x) (row-major) ]

plus the user's fetches. It is traced once per set of fetches and never
again, compiled with XLA by default, and called through a thin dispatch path
(:mod:`optrun._fastcall`). A graph-mode (``tf.compat.v1``) backend implements
the same three methods: ``read``, ``assign`` and ``evaluator``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from optrun._fastcall import FastCaller
from optrun.errors import InvalidArgumentError, InvalidTypeError
from optrun.evaluation import Evaluator
from optrun.packing import Layout, pack_outputs
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


def _plain(thunk: Thunk) -> Thunk:
    """Keeps AutoGraph off lambdas: they hold no statements to convert, and AutoGraph
    warns about every pair of lambdas written on one line."""
    if getattr(thunk, "__name__", "") == "<lambda>":
        return tf.autograph.experimental.do_not_convert(thunk)
    return thunk


def _autograph(thunk: Thunk) -> Thunk:
    """``thunk`` converted by autograph (as ``tf.function`` would), or as is if it cannot be."""
    try:
        return tf.autograph.to_graph(thunk)
    except Exception:  # noqa: BLE001 - a builtin, a callable object: traced as written
        return thunk


def _fetch(item: Any) -> Any:
    if callable(item):
        return _plain(item)()
    return as_tf_variable(item).read_value()


def _check_fetches(fetches: Sequence[Any]) -> None:
    for i, item in enumerate(fetches):
        if callable(item):
            continue
        try:
            as_tf_variable(item)
        except InvalidTypeError:
            raise InvalidTypeError(
                f"fetches[{i}] must be a zero-argument callable or a variable; got "
                f"{type(item).__name__}: {item!r:.80}"
            ) from None


class EagerBackend:
    """Evaluates a :class:`Problem` with compiled ``tf.function``s.

    Args:
        problem: the loss, constraints and variables.
        jit_compile: True forces XLA, False disables it, None (the default)
            tries XLA and falls back to a plain ``tf.function``, with a logged
            warning, when the user's code does not compile.
    """

    def __init__(self, problem: Problem, jit_compile: bool | None = None) -> None:
        self._problem = Problem(
            _plain(problem.loss),
            tuple(map(_plain, problem.equalities)),
            tuple(map(_plain, problem.inequalities)),
            problem.variables,
            problem.layout,
        )
        self._tf_vars = [as_tf_variable(v) for v in problem.variables]
        self._jit_compile = jit_compile
        self._evaluators: dict[tuple[Any, ...], tuple[tuple[Any, ...], Evaluator]] = {}
        self.xla: bool | None = None  # whether XLA is in use, once known

    @contextlib.contextmanager
    def bound(self, session: Any, feed_dict: Any) -> Iterator[None]:
        """The graph backend's session binding; in TF2 both must be None."""
        if session is not None or feed_dict is not None:
            raise InvalidArgumentError(
                "session and feed_dict are for tf.compat.v1 graphs, where the loss is a graph "
                "tensor; this loss is a callable, so call minimize() without them."
            )
        yield

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
            _check_fetches(fetches)
            if len(self._evaluators) >= MAX_EVALUATORS:  # new fetch lists each call: keep memory bounded
                self._evaluators.pop(next(iter(self._evaluators)))
            # The tuple keeps the fetches alive, so their ids stay unique.
            self._evaluators[key] = (fetches, self._compile(fetches, gradients))
        return self._evaluators[key][1]

    def _body(self, fetches: tuple[Any, ...], gradients: bool) -> Callable[[tf.Tensor], Any]:
        problem, tf_vars, layout = self._problem, self._tf_vars, self._problem.layout
        zero = tf.UnconnectedGradients.ZERO

        def grad(tape: tf.GradientTape, value: tf.Tensor) -> tf.Tensor:
            if not gradients:  # gradient-free method: the slots are zeros, no backward pass
                return tf.zeros([layout.size], tf.float64)
            return layout.pack_tf(tape.gradient(value, tf_vars, unconnected_gradients=zero))

        # optrun's own code is traced as is (autograph=False below); only the user's loss and
        # constraints go through autograph, so Python control flow on tensors works in them.
        user = [_autograph(f) for f in (problem.loss, *problem.equalities, *problem.inequalities)]
        user_loss, n_eq = user[0], len(problem.equalities)

        def body(x: tf.Tensor) -> Any:
            for var, value in zip(tf_vars, layout.unpack_tf(x), strict=True):
                var.assign(value)
            constrained = bool(problem.equalities or problem.inequalities)
            with tf.GradientTape(persistent=constrained, watch_accessed_variables=False) as tape:
                tape.watch(tf_vars)
                loss = tf.reshape(user_loss(), [])
                eqs = [tf.reshape(c(), []) for c in user[1 : 1 + n_eq]]
                ineqs = [tf.reshape(c(), []) for c in user[1 + n_eq :]]
            packed = pack_outputs(loss, eqs, ineqs, functools.partial(grad, tape))
            del tape
            return packed, [_fetch(f) for f in fetches]

        return body

    def _compile(self, fetches: tuple[Any, ...], gradients: bool) -> Evaluator:
        spec = [tf.TensorSpec([self._problem.layout.size], tf.float64)]
        body = self._body(fetches, gradients)
        jit = self._jit_compile is not False

        def build(use_xla: bool) -> Evaluator:
            function = tf.function(body, input_signature=spec, jit_compile=use_xla, autograph=False)
            return FastCaller(function.get_concrete_function())

        call = build(jit)
        first = True

        def evaluate(x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            nonlocal call, first
            if first:
                first = False
                call, result = self._first_call(call, build, jit, x)
                return result
            return call(x)

        return evaluate

    def _first_call(
        self, call: Evaluator, build: Callable[[bool], Evaluator], jit: bool, x: np.ndarray
    ) -> tuple[Evaluator, tuple[np.ndarray, list[np.ndarray]]]:
        """Runs ``call`` once; on an XLA failure in auto mode, rebuilds without XLA."""
        try:
            result = call(x)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            if not jit:
                raise
            text = str(error).strip()
            first_line = text.splitlines()[0] if text else type(error).__name__
            if self._jit_compile:
                raise InvalidArgumentError(
                    f"jit_compile=True, but XLA cannot compile the loss or constraints: "
                    f"{first_line}. Pass jit_compile=None to fall back automatically, or False."
                ) from error
            logger.warning(
                "XLA cannot compile the loss or constraints (%s); using a plain tf.function. "
                "Pass jit_compile=False to skip the attempt.",
                first_line,
            )
            self.xla = False
            call = build(False)
            return call, call(x)
        self.xla = jit
        return call, result

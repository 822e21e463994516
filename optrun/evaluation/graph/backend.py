"""``tf.compat.v1`` graph backend: the ``read``/``assign``/``evaluator`` seam of the eager backend
for a loss and constraints given as graph tensors and run by a ``Session``.

Everything this backend needs is added to the user's graph once, when the
interface is built, under the name scope ``optrun_external``: a float64
placeholder ``x``, the op that assigns it to the variables, the packed read
of the variables, and the packed outputs (see :func:`optrun.evaluation.outputs.pack_outputs`)
with their gradients from ``tf.gradients``, as in TF1. ``minimize`` adds no
op after that, so a finalized graph works, at any feeds.

Per point, by ``jit_compile``:

* None (default): tiered (:mod:`optrun.evaluation.tiers`): the **session path** first (``session_call``);
  on a run long enough to pay for it, the subgraph cut out into an XLA function (``cut``), built in
  the background;
* True: the session path (the reference) until the cut-out XLA function has
  agreed with it at the first points (:mod:`optrun.evaluation.graph.fastpath`);
* False: the session path throughout, TF1's way, so the numbers are TF1's bit for bit.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError, NotReadyError
from optrun.evaluation.graph.cut import PrunedFunction
from optrun.evaluation.graph.fastpath import RTOL_PLAIN, RTOL_XLA, FunctionPath
from optrun.evaluation.graph.feeds import LiveFeeds
from optrun.evaluation.graph.session_call import session_point
from optrun.evaluation.outputs import Reach, join_parts, output_parts
from optrun.evaluation.packing import Layout, as_scalar
from optrun.evaluation.point import Evaluator
from optrun.evaluation.tiers import Candidate, Tiered

#: Evaluators kept per backend (one per session, fetch list and feed keys); the oldest goes first.
MAX_EVALUATORS = 8
#: Cutting the graph out and compiling it, in multiples of building optrun's ops into it.
COMPILE_PER_SETUP = 8.0


class GraphBackend:
    """Evaluates a graph-mode problem in a ``tf.compat.v1.Session``.

    Args:
        loss: the scalar loss tensor.
        equalities: scalar tensors held ``== 0``.
        inequalities: scalar tensors held ``>= 0``.
        variables: the variables to optimize, in packing order.
        layout: their layout.
        gradients: whether to build gradient ops (False for gradient-free methods).
        jit_compile: None (default): tiered, one session call per point first,
            the cut-out XLA function once it pays (:mod:`optrun.evaluation.tiers`); True:
            the XLA function from the start (where it cannot serve, the session path
            does); False: the session path throughout (TF1's numbers).
    """

    def __init__(
        self,
        loss: tf.Tensor,
        equalities: Sequence[tf.Tensor],
        inequalities: Sequence[tf.Tensor],
        variables: Sequence[Any],
        layout: Layout,
        gradients: bool = True,
        jit_compile: bool | None = None,
    ) -> None:
        started = time.perf_counter()
        self.graph = loss.graph
        self._variables = list(variables)
        self._layout = layout
        self._jit = jit_compile
        self.unused: list[Any] = []
        self.reach = Reach(len(self._variables))  # what the gradients reached
        with self.graph.as_default(), tf.name_scope("optrun_external"):
            self._x = tf.compat.v1.placeholder(tf.float64, [layout.size], name="x")
            pieces = layout.unpack_tf(self._x)
            self._assign = tf.group(
                *[v.assign(p, read_value=False) for v, p in zip(self._variables, pieces, strict=True)],
                name="assign",
            )
            self._read = layout.pack_tf(self._variables)
            # tf.convert_to_tensor: TF1 took variables where tensors go.
            values = [as_scalar(t) for t in (loss, *equalities, *inequalities)]
            n_eq = len(equalities)
            eqs, ineqs = values[1 : 1 + n_eq], values[1 + n_eq :]
            # Only the outputs the method uses: a gradient-free method never asks for gradients,
            # and a gradient method never for the zero-filled outputs.
            # The session fetches the parts; a cut-out function returns them joined.
            self._outputs: dict[bool, tuple[list[tf.Tensor], tf.Tensor]] = {}
            if gradients:
                parts = output_parts(values[0], eqs, ineqs, self._gradient(self.reach))
                self.unused = [self._variables[i] for i in sorted(self.reach.ungraded)]
            else:
                zeros = tf.zeros([layout.size], tf.float64)
                parts = output_parts(values[0], eqs, ineqs, lambda _: zeros)
            self._outputs[gradients] = (parts, join_parts(parts))
        #: Seconds it took to add optrun's ops (and the gradients) to the graph.
        self.setup_s = time.perf_counter() - started
        self._bound: Any = None
        self._last: Any = None
        self._live: LiveFeeds | None = None
        self._cache: dict[tuple[Any, ...], tuple[Callable[[LiveFeeds], Evaluator], FunctionPath]] = {}

    def _gradient(self, reach: Reach) -> Any:
        def gradient(value: tf.Tensor) -> tf.Tensor:
            grads = tf.gradients(value, self._variables)
            reach.saw(grads)
            return self._layout.pack_tf(
                [tf.zeros_like(v) if g is None else g for v, g in zip(self._variables, grads, strict=True)]
            )

        return gradient

    # ----- the session ---------------------------------------------------------
    @contextlib.contextmanager
    def bound(self, session: Any, feed_dict: Any) -> Iterator[Callable[..., Any]]:
        """Within the block, evaluations run in ``session`` (or the default one) with ``feed_dict``;
        it gives ``watch``, which wraps a callback so that the feeds are read again after it runs."""
        session = self._check_session(session if session is not None else tf.compat.v1.get_default_session())
        live = LiveFeeds(self.graph, feed_dict)
        self._bound, self._live = session, live
        try:
            yield live.watch
        finally:
            self._bound, self._last, self._live = None, session, None

    def _check_session(self, session: Any) -> Any:
        if session is None:
            raise InvalidArgumentError(
                "the loss is a graph tensor, so minimize() needs a tf.compat.v1.Session: pass "
                "minimize(session), or call it inside `with tf.compat.v1.Session() as sess:`."
            )
        if not (hasattr(session, "run") and hasattr(session, "graph")):
            raise InvalidTypeError(f"session must be a tf.compat.v1.Session; got {type(session).__name__}")
        if session.graph is not self.graph:
            raise InvalidArgumentError(
                "the session runs another graph than the loss's; create the session with "
                "tf.compat.v1.Session(graph=loss.graph) or inside `with graph.as_default():`."
            )
        return session

    def session(self) -> Any:
        """The bound session; else the default one; else the one the last ``minimize`` used."""
        if self._bound is not None:
            return self._bound
        default = tf.compat.v1.get_default_session()
        if default is not None and default.graph is self.graph:
            return default
        return self._check_session(self._last)

    # ----- the seam ------------------------------------------------------------
    def read(self) -> np.ndarray:
        """The variables' current values, packed."""
        try:
            return np.asarray(self.session().run(self._read), np.float64)
        except tf.errors.FailedPreconditionError as error:
            raise NotReadyError(
                "the variables are not initialized in this session; run "
                "tf.compat.v1.global_variables_initializer() (or restore a checkpoint) first. "
                f"TensorFlow said: {str(error).splitlines()[0]}"
            ) from None

    def assign(self, x: np.ndarray) -> None:
        """Writes a packed vector into the variables."""
        self.session().run(self._assign, {self._x: np.asarray(x, np.float64)})

    def _tiered(self, first: Evaluator, session: Any, feeds: LiveFeeds, path: FunctionPath) -> Tiered:
        """The default: the session path, and the cut-out XLA function once it pays."""

        def build() -> Candidate | None:
            modes = path.candidates()  # builds each candidate
            if path.refused is not None:  # XLA cannot compile it: said once, the session serves
                raise path.refused
            for xla in modes:
                function = path.candidate(xla)
                if function is not None:
                    call = function.caller(session, feeds)
                    return Candidate(call, call, RTOL_XLA if xla else RTOL_PLAIN, "" if xla else "function")
            return None  # state in the subgraph (a random op, an assert): the session serves

        names = ("session", "xla function")
        # A function already checked in an earlier minimize is ready as soon as it is rebuilt.
        return Tiered(first, build, names, COMPILE_PER_SETUP * self.setup_s, start_now=path.built)

    def evaluator(self, fetches: Sequence[Any] = (), gradients: bool = True) -> Evaluator:
        """A function ``x -> (packed outputs, fetched values)`` under the bound session and feeds."""
        if gradients not in self._outputs:
            raise NotReadyError(
                "this interface was built for a gradient-free method, so its graph holds no "
                "gradient ops; build one with a gradient-based method to ask for gradients."
            )
        session, feeds = self.session(), self._live or LiveFeeds(self.graph, None)
        fetches = _check_fetches(self.graph, fetches)
        keys = list(feeds.values)
        key = (id(session), gradients, *(f.name for f in fetches), "|", *(k.name for k in keys))
        if key not in self._cache:
            if len(self._cache) >= MAX_EVALUATORS:
                self._cache.pop(next(iter(self._cache)))
            parts, outputs = self._outputs[gradients]
            variables, layout = self._variables, self._layout
            point = session_point(session, parts, fetches, keys, variables, layout, (self._x, self._assign))
            targets = [outputs, *fetches]
            # The default's build runs in the background: XLA's kernels are checked first.
            build = functools.partial(PrunedFunction.build, self.graph, targets, variables, layout, keys)
            path = FunctionPath(functools.partial(build, check=self._jit is None), self._jit)
            self._cache[key] = (point, path)
        point, path = self._cache[key]
        reference = _friendly(point(feeds))  # the session path
        if self._jit is None:
            return self._tiered(reference, session, feeds, path)
        if self._jit is False:
            return reference
        return path.evaluator(reference, session, feeds)


def _check_fetches(graph: Any, fetches: Sequence[Any]) -> list[Any]:
    out = []
    for i, item in enumerate(fetches):
        try:
            out.append(graph.as_graph_element(item, allow_tensor=True, allow_operation=True))
        except (TypeError, ValueError, KeyError):
            raise InvalidTypeError(
                f"fetches[{i}] must be a tensor (or variable) of the loss's graph; got "
                f"{type(item).__name__}: {item!r:.80}"
            ) from None
    return out


def _friendly(reference: Evaluator) -> Evaluator:
    """Turns TF's 'must feed a value for placeholder' into advice that names ``feed_dict``."""

    def call(x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        try:
            return reference(x)
        except tf.errors.InvalidArgumentError as error:
            text = str(error)
            if "must feed a value for placeholder" not in text:
                raise
            line = next((ln for ln in text.splitlines() if "must feed" in ln), text)
            raise InvalidArgumentError(
                f"the loss, a constraint or a fetch reads a placeholder that feed_dict does not feed "
                f"({line.strip()}); pass it in minimize(feed_dict={{placeholder: value}})."
            ) from None

    return call

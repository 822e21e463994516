"""Which evaluation serves the graph backend: a cut-out function, once it has proved itself.

For one set of outputs (loss, constraints, fetches under given feed keys)
:class:`FunctionPath` holds the candidate functions, XLA first when
``jit_compile`` allows it, and remembers the first that agreed with the
session path at :data:`CHECKED_POINTS` distinct points. The check is
structural (did the cut wire every variable and feed?), so once a candidate
is trusted later ``minimize`` calls use it from their first point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from tensorflow.python.eager import context

from optrun.causes import build_failure
from optrun.evaluation.agreement import close as _close
from optrun.evaluation.graph.cut import PrunedFunction
from optrun.evaluation.graph.feeds import LiveFeeds
from optrun.evaluation.point import Evaluator
from optrun.evaluation.xla_kernels import XlaRefused

logger = logging.getLogger("optrun")

#: Distinct points at which a function must agree with the session path.
CHECKED_POINTS = 2
#: Relative agreement asked of a function: XLA may reassociate sums, plain TF runs TF1's kernels.
RTOL_XLA, RTOL_PLAIN = 1e-3, 1e-5

Result = tuple[np.ndarray, list[Any]]


class FunctionPath:
    """Candidate functions for one evaluation, built lazily, and the one that is trusted.

    Args:
        build: ``xla -> PrunedFunction | None``.
        jit_compile: None tries XLA, then plain TF; True only XLA (warns when
            it cannot be used, and the session path serves).
    """

    def __init__(self, build: Callable[[bool], PrunedFunction | None], jit_compile: bool | None) -> None:
        self._build = build
        self._modes = [True, False] if jit_compile is None else [True]
        self._required = jit_compile is True
        self._candidates: dict[bool, PrunedFunction | None] = {}
        self.trusted: PrunedFunction | None = None
        #: Why XLA cannot compile the function (an op with no XLA kernel), once a build found it.
        self.refused: XlaRefused | None = None

    @property
    def built(self) -> bool:
        """Whether a candidate function has been built already (a later build is cheap)."""
        return any(c is not None for c in self._candidates.values())

    def candidates(self) -> list[bool]:
        """The XLA settings still worth trying, in order."""
        return [mode for mode in self._modes if self.candidate(mode) is not None]

    def candidate(self, xla: bool) -> PrunedFunction | None:
        """The function for one XLA setting (built on first use), or None."""
        if xla not in self._candidates:
            try:
                with context.eager_mode():  # nothing lands in the user's graph, even with eager off
                    self._candidates[xla] = self._build(xla)
            except Exception as error:  # noqa: BLE001 - any failure means: the session path serves
                self._candidates[xla] = None
                if isinstance(error, XlaRefused):
                    self.refused = error
                self.drop(xla, build_failure(error))  # a warning where XLA was asked for
        return self._candidates[xla]

    def drop(self, xla: bool, why: str) -> None:
        """Gives up on one candidate."""
        self._candidates[xla] = None
        if xla and self._required:
            logger.warning("jit_compile=True, but the XLA function cannot serve (%s); using the session", why)
        else:
            logger.debug("graph function path (xla=%s) not used: %s", xla, why)

    def evaluator(self, reference: Evaluator, session: Any, feeds: LiveFeeds) -> Evaluator:
        """The trusted function if there is one; else a :class:`Checked` over the candidates."""
        if self.trusted is not None:
            return Trusted(self.trusted.caller(session, feeds))
        return Checked(reference, self, lambda xla: self._candidate_caller(xla, session, feeds))

    def _candidate_caller(self, xla: bool, session: Any, feeds: LiveFeeds) -> Evaluator | None:
        candidate = self.candidate(xla)
        return None if candidate is None else candidate.caller(session, feeds)


class Trusted:
    """The trusted function serving from a later ``minimize``'s first point, named for its report."""

    path = "function"

    def __init__(self, call: Evaluator) -> None:
        self._call = call

    def __call__(self, x: np.ndarray) -> Result:
        return self._call(x)


class Checked:
    """Serves the session path until a candidate function has agreed with it."""

    def __init__(
        self,
        reference: Evaluator,
        path: FunctionPath,
        caller: Callable[[bool], Evaluator | None],
    ) -> None:
        self._reference = reference
        self._path = path
        self._caller = caller
        self._checked: list[np.ndarray] = []
        self._fast: Evaluator | None = None
        self._mode: bool | None = None
        self._next_candidate()

    @property
    def path(self) -> str:
        """``"function"``, ``"checking"`` or ``"session"``."""
        if self._path.trusted is not None:
            return "function"
        return "checking" if self._fast is not None else "session"

    def _next_candidate(self) -> None:
        self._fast, self._mode, self._checked = None, None, []
        for mode in self._path.candidates():
            try:
                self._fast = self._caller(mode)
            except Exception as error:  # noqa: BLE001 - any failure means: try the next one
                self._path.drop(mode, build_failure(error))
                continue
            self._mode = mode
            return

    def __call__(self, x: np.ndarray) -> Result:
        if self._path.trusted is not None and self._fast is not None:
            return self._fast(x)
        expected = self._reference(x)
        if self._fast is None or self._mode is None:
            return expected
        try:
            got = self._fast(x)
            why = (
                ""
                if _close(got, expected, RTOL_XLA if self._mode else RTOL_PLAIN)
                else "disagrees with the session"
            )
        except Exception as error:  # noqa: BLE001
            why = build_failure(error)  # one short line: the op XLA cannot compile, or the first line
        if why:
            self._path.drop(self._mode, why)
            self._next_candidate()
            return expected
        if not any(np.array_equal(x, seen) for seen in self._checked):
            self._checked.append(np.array(x, np.float64))
            if len(self._checked) >= CHECKED_POINTS:
                self._path.trusted = self._path.candidate(self._mode)
        return expected

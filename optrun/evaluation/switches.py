"""The environment variables that change how optrun evaluates: read, and checked, in one place.

* ``OPTRUN_TIER2``: ``auto`` (default), ``now`` or ``never``; when the default
  (``jit_compile=None``) builds its second tier (see :mod:`optrun.evaluation.tiers`).
* ``OPTRUN_TIER1``: ``auto`` (default) or ``function``; whether the default's
  first tier in TF2 runs the traced graph through a session, where the graph
  qualifies, or always calls the plain ``tf.function`` (see
  :mod:`optrun.evaluation.pure_graph`).
* ``OPTRUN_GRAPPLER``: ``once`` (default), ``tensorflow`` or ``off``; how
  Grappler rewrites the plain evaluation (see :mod:`optrun.evaluation.grappler`).
* ``OPTRUN_SAFE_CALL``: ``0`` (default) or ``1``; ``1`` calls every compiled
  evaluation through TensorFlow's public path (see :mod:`optrun.evaluation.fastcall`).
* ``OPTRUN_SESSION_RUN``: ``auto`` (default), ``inline`` or ``pool``; whether
  session calls (graph mode's, and TF2's first tier's) run on the calling
  thread (see :mod:`optrun.evaluation.inline`).

An interface checks them all when it is built (:func:`check_all`), so a typo
is refused before a run starts, not at its first evaluation. An empty value
counts as unset.
"""

from __future__ import annotations

import os

from optrun.errors import InvalidArgumentError

TIER2 = "OPTRUN_TIER2"
TIER1 = "OPTRUN_TIER1"
GRAPPLER = "OPTRUN_GRAPPLER"
SAFE_CALL = "OPTRUN_SAFE_CALL"
SESSION_RUN = "OPTRUN_SESSION_RUN"

#: Each variable's values, its default first.
CHOICES: dict[str, tuple[str, ...]] = {
    TIER2: ("auto", "now", "never"),
    TIER1: ("auto", "function"),
    GRAPPLER: ("once", "tensorflow", "off"),
    SAFE_CALL: ("0", "1"),
    SESSION_RUN: ("auto", "inline", "pool"),
}


class SwitchError(InvalidArgumentError):
    """An ``OPTRUN_*`` environment variable has a value optrun does not know.

    Attributes:
        variable: the variable's name.
        value: the value it has.
        choices: the values it may have, its default first.
    """

    def __init__(self, variable: str, value: str, choices: tuple[str, ...]) -> None:
        listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        super().__init__(
            f"the environment variable {variable} must be {listed}; got {value!r}. "
            f"Unset it for the default, {choices[0]}."
        )
        self.variable = variable
        self.value = value
        self.choices = choices


def read(variable: str) -> str:
    """The value of ``variable`` (one of :data:`CHOICES`), or its default when unset or empty.

    Raises:
        SwitchError: it is set to a value not in :data:`CHOICES`.
    """
    choices = CHOICES[variable]
    value = os.environ.get(variable, "").strip()
    if not value:
        return choices[0]
    if value not in choices:
        raise SwitchError(variable, value, choices)
    return value


def check_all() -> None:
    """Raises :class:`SwitchError` for the first of the variables with a value optrun does not know."""
    for variable in CHOICES:
        read(variable)

"""Where the minimize objective's parts are in the spec, and errors they raise placed there.

The interface names the loss and each constraint (``loss``, ``equalities[0]``,
...); :func:`places` maps those names to YAML paths and the spec's references,
numbering ``minimize.constraints`` first, then ``minimize.data``'s, as the
interface does. An error user code raises while the objective is built or first
evaluated becomes a :class:`optrun.errors.LoadError` at that path
(:func:`raised_at`, :func:`raising_as`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from optrun.errors import LoadError, OptrunError, describe, dotted
from optrun.spec.experiment import MinimizeSpec
from optrun.spec.load import LoadedSpec


def places(loaded: LoadedSpec) -> dict[str, tuple[tuple[Any, ...], str | None]]:
    """The interface's names (``loss``, ``equalities[0]``, ...) -> (YAML path, spec reference)."""
    spec = loaded.spec.minimize or MinimizeSpec()
    found: dict[str, tuple[tuple[Any, ...], str | None]] = {
        "loss": (("loss",), getattr(loaded.spec.loss, "ref", None))
    }
    for kind in ("equalities", "inequalities"):
        # The interface numbers minimize.constraints' first, then minimize.data's.
        own = getattr(spec.constraints, kind)
        listed = [(("minimize", "constraints", kind, i), r) for i, r in enumerate(own)]
        summed = getattr(spec.data, kind) if spec.data is not None else []
        listed += [(("minimize", "data", kind, i), r) for i, r in enumerate(summed)]
        found.update((f"{kind}[{i}]", place) for i, place in enumerate(listed))
    return found


def who_raised(error: BaseException) -> str:
    """The interface's name (``equalities[0]``) of the argument that raised, from the note the
    interface added (see :func:`optrun.evaluation.probe.run_user`); '' when none says."""
    note = next((n for n in getattr(error, "__notes__", []) if n.startswith("optrun: raised by ")), "")
    return note.removeprefix("optrun: raised by ")


def raised_at(loaded: LoadedSpec, what: str, error: BaseException) -> LoadError:
    """``what`` (the interface's ``loss``, ``equalities[0]``, ...; '' unknown) raised at the start
    point: ``"minimize.data.inequalities[0] (m.py:cons) raised on the start point: ValueError: ..."``,
    placed (as data) at its YAML path."""
    cause = f"raised on the start point: {describe(error)}"
    path, ref = places(loaded).get(what, ((), None))
    if not path:
        return LoadError(f"{what or 'the loss or a constraint'} {cause}")
    where = dotted(path)
    if ref is None:  # a Keras loss by name: the path says it all
        return LoadError.at(where, cause, said=f"{where} {cause}")
    return LoadError.at(where, f"{ref} {cause}", said=f"{where} ({ref}) {cause}")


@contextlib.contextmanager
def raising_as(loaded: LoadedSpec, what: str) -> Iterator[None]:
    """A plain Python error in the block (user code run on the first batch) is ``what``'s:
    raised again by :func:`raised_at`, placed at its YAML path. optrun's own errors pass."""
    try:
        yield
    except OptrunError:
        raise
    except Exception as error:
        raise raised_at(loaded, what, error) from error

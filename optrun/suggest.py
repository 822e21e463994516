"""Did-you-mean: the closest known name to a misspelt one, or the known names when none is close."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_match(given: str, known: Iterable[str]) -> str | None:
    """The known name ``given`` most likely meant (difflib, any case, or the one name holding it)."""
    names = sorted(set(known))
    close = difflib.get_close_matches(given, names, n=1, cutoff=0.6)
    if close:
        return close[0]
    lowered = given.lower()
    close = difflib.get_close_matches(lowered, [n.lower() for n in names], n=1, cutoff=0.6)
    if close:
        return next(n for n in names if n.lower() == close[0])
    inside = [name for name in names if lowered and lowered in name.lower()]  # 'decay' -> 'average_decay'
    return inside[0] if len(inside) == 1 else None


def suggest(given: str, known: Iterable[str], what: str) -> str:
    """``did you mean 'epochs'?``, else ``known keys: a, b, c``.

    Args:
        given: what the user wrote.
        known: the valid names.
        what: what they are, singular ("key", "method"), for the fallback list.
    """
    names = sorted(set(known))
    close = close_match(given, names)
    if close is not None:
        return f"did you mean {close!r}?"
    return f"known {what}s: {', '.join(names)}" if names else f"no {what} is allowed here"

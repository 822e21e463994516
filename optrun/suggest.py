"""Did-you-mean: the closest known name to a misspelt one, or the known names when none is close."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(given: str, known: Iterable[str], what: str) -> str:
    """``did you mean 'epochs'?``, else ``known keys: a, b, c`` (difflib, plus substrings).

    Args:
        given: what the user wrote.
        known: the valid names.
        what: what they are, singular ("key", "method"), for the fallback list.
    """
    names = sorted(set(known))
    close = difflib.get_close_matches(given, names, n=1, cutoff=0.6)
    lowered = given.lower()
    inside = [name for name in names if lowered and lowered in name.lower()]  # 'decay' -> 'average_decay'
    if not close:
        close = difflib.get_close_matches(lowered, [n.lower() for n in names], n=1, cutoff=0.6)
        close = [n for n in names if close and n.lower() == close[0]][:1]
    if close or len(inside) == 1:
        return f"did you mean {(close or inside)[0]!r}?"
    return f"known {what}s: {', '.join(names)}" if names else f"no {what} is allowed here"

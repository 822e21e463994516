"""Small Markdown helpers shared by the reference generators."""

from __future__ import annotations

import json
import re
from typing import Any

# Code spans (``x`` or `x`) are kept as they are: Markdown does not interpret their content.
_CODE = re.compile(r"(``.+?``|`[^`\n]+`)")


def escape(text: str) -> str:
    """``text`` as Markdown that renders verbatim, on one line (for a table cell).

    Outside code spans, ``*`` (``builder(**params)``), ``|`` (a table's column separator)
    and ``<`` (an HTML tag) are escaped; newlines become spaces.
    """
    parts = _CODE.split(" ".join(text.split()))
    for index in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[index] = parts[index].replace("*", r"\*").replace("|", r"\|").replace("<", "&lt;")
    return "".join(parts)


def code(value: str) -> str:
    """``value`` as a code span (Python-Markdown's tables do not split a cell at a ``|`` in one)."""
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def literal(value: Any) -> str:
    """A JSON value as a code span: ``null``, ``true``, ``"auto"``, ``{"kind": "default"}``."""
    return code(json.dumps(value, separators=(", ", ": ")))


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; the cells must already be Markdown on one line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def paragraphs(text: str) -> str:
    """Help text (a docstring) as Markdown paragraphs: blank lines separate them."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(escape(block) for block in blocks if block.strip())

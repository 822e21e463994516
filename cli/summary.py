"""The end-of-run table and the cells of optrun's tables.

:func:`summary` prints what a run (or ``optrun validate``'s dry run, or
``optrun show``) reports as a two-column table: minimize's status beside the
solver's own code and message, the evaluation tiers in one line, a list of
warnings one per line. :func:`cell` is how every table shows a value.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cell(value: Any, digits: int | None = None) -> str:
    """A value as optrun's tables show it: text as is, lists and mappings as JSON, None as ``-``,
    a float in full (or to ``digits`` significant digits).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value) if digits is None else f"{value:.{digits}g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return "-" if value is None else str(value)


#: result.json's key for the solver's own code -> the solver's name.
SOLVER_CODES = {"scipy_status": "scipy", "ipopt_status": "IPOPT"}


def _status(result: dict[str, Any]) -> str:
    """``budget_reached (scipy status 1: STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT)``, or the status."""
    status = result.get("status")
    key = next((key for key in SOLVER_CODES if key in result), None)
    if key is None or not isinstance(status, str):  # train, or a run before the words
        return cell(status)
    said = f"{SOLVER_CODES[key]} status {cell(result[key])}"
    said += f": {result['message']}" if result.get("message") else ""
    return f"{status} ({said})"


def summary(console: Console, title: str, result: dict[str, Any]) -> None:
    """The end-of-run table; a list of lines (the run's ``warnings``) gets one line per item.

    Minimize's status shows scipy's code and message beside it; an export withheld says why.
    """
    # The title on its own line: a table's title is padded with spaces to the table's width.
    console.print(escape(title), highlight=False, soft_wrap=True)
    table = Table(show_header=False)
    folded = {key for key in SOLVER_CODES if key in result}
    folded |= {"message"} if folded else set()
    for key, value in result.items():
        if key in folded or (key == "export_skipped" and "export" in result):
            continue
        if key == "status":
            text = _status(result)
        elif key == "export" and value is None and result.get("export_skipped"):
            text = str(result["export_skipped"])
        elif key == "tiers" and isinstance(value, dict):
            try:
                text = describe_tiers(value)
            except (TypeError, ValueError, AttributeError):  # a result.json edited or not optrun's
                text = _cut(cell(value), 200)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            text = "\n".join(_cut(v, 400) for v in value)
        else:
            text = _cut(cell(value), 200)
        table.add_row(escape(key), escape(text))
    console.print(table)


def describe_tiers(tiers: dict[str, Any]) -> str:
    """``plain 130, then xla 870 (switched after evaluation 130, at 1.52 s)``, or one tier's count;
    with tier 2 dropped as slower, ``plain 130, then xla 6, then plain 864 (...)``."""
    counts = tiers.get("evaluations", {})
    first, second = tiers.get("first", ""), tiers.get("second", "")
    at = tiers.get("switched_at_evaluation")
    if second and at is not None and tiers.get("dropped_at_evaluation") is not None:
        served, back = counts.get(second, 0), counts.get(first, 0) - at
        return f"{first} {at}, then {second} {served}, then {first} {back} ({tiers.get('note')})"
    if second and at is not None:
        text = f"{first} {counts.get(first, 0)}, then {second} {counts.get(second, 0)}"
        return f"{text} (switched after evaluation {at}, at {tiers.get('switched_after_s') or 0:.2f} s)"
    text = f"{first} {counts.get(first, 0)}"
    note = tiers.get("note")
    return f"{text} ({note})" if note else text

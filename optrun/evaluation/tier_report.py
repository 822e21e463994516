"""What a tiered evaluation did: which tier evaluated how many points, and when it switched.

Plain data, returned as ``result.tiers`` and written to the CLI's ``result.json``
(see :mod:`optrun.evaluation.tiers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TierReport:
    """Which tier evaluated how many points, and when the switch happened (plain data)."""

    first: str
    second: str
    evaluations: dict[str, int] = field(default_factory=dict)
    switched_at_evaluation: int | None = None
    switched_after_s: float | None = None
    dropped_at_evaluation: int | None = None  # tier 2 turned out slower: tier 1 again from here on
    note: str = ""

    def rename_second(self, name: str) -> None:
        """Tier 2 turned out to be another evaluation than the one planned (e.g. no XLA)."""
        if name != self.second:
            self.evaluations[name] = self.evaluations.pop(self.second, 0)
            self.second = name

    def as_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "second": self.second,
            "evaluations": dict(self.evaluations),
            "switched_at_evaluation": self.switched_at_evaluation,
            "switched_after_s": None if self.switched_after_s is None else round(self.switched_after_s, 4),
            "dropped_at_evaluation": self.dropped_at_evaluation,
            "note": self.note,
        }

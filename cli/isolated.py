"""Specs validated in a process of their own: TensorFlow splits the CPU once per process.

``strategy.logical_cpus`` can only be set before TensorFlow initializes its
devices, so one process can check specs asking for one count (or none, which a
mirrored or multi_worker strategy without it needs: its replicas are the devices
a run would see). When ``optrun validate`` is given specs asking for different
splits, the most common is set up first and every other spec is checked by a
fresh ``optrun validate FILE --json``, whose findings are read back as data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

from optrun.errors import ERROR, INFO, SKIPPED, Problem
from optrun.spec.load import RawSpec
from optrun.spec.overrides import as_argv

Found = tuple[str, list[Problem], list[dict[str, Any]]]


#: What a spec with a strategy over TensorFlow's devices as they are (mirrored or
#: multi_worker without ``logical_cpus``) needs: a process whose CPU is not split, as in a run.
UNSPLIT = 0


def logical_cpus(raw: RawSpec) -> int | None:
    """The CPU split a spec's check needs: its ``strategy.logical_cpus``; :data:`UNSPLIT` for a
    mirrored or multi_worker strategy without it (its replicas are the devices a run would see);
    None for any (the default strategy runs on one device, or the value is the schema's to refuse)."""
    strategy = raw.data.get("strategy")
    if not isinstance(strategy, dict) or strategy.get("kind") in (None, "default"):
        return None
    count = strategy.get("logical_cpus")
    if count is None:
        return UNSPLIT
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 else None


def split(read: list[RawSpec]) -> tuple[int | None, list[RawSpec], list[RawSpec]]:
    """The count to set up here (None: leave the CPU as it is), the specs this process checks,
    and those that need a process of their own: each needs its split, whatever the files' order."""
    counts = Counter(c for c in map(logical_cpus, read) if c is not None)
    here = counts.most_common(1)[0][0] if counts else None
    mine = [raw for raw in read if logical_cpus(raw) in (None, here)]
    return here or None, mine, [raw for raw in read if raw not in mine]


def validate_elsewhere(raw: RawSpec, overrides: list[str]) -> Found:
    """Checks one spec file in a new ``optrun validate`` process; its problems and reports."""
    args = [sys.executable, "-m", "optrun", "validate", raw.source, "--json"]
    for override in overrides:
        args += as_argv(override)  # a flag's override as that flag, so the child names it too
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    try:
        entries = json.loads(done.stdout)
    except ValueError:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        problem = Problem("strategy.logical_cpus", f"checking it in its own process failed: {why}")
        return raw.source, [problem], []
    if isinstance(entries, dict):  # the process's one error, not a list of findings
        return raw.source, [Problem("", str(entries.get("error", entries)))], []
    problems = [  # as data, as the child found them: never parsed back from text
        Problem(e.get("path") or "", e["message"], e.get("line"), bool(e.get("from_set", False)))
        for e in entries
        if e.get("severity") == ERROR
    ]
    reports = [e["report"] for e in entries if e.get("severity") == INFO and "report" in e]
    skipped = [e["message"].removeprefix("not checked: ") for e in entries if e.get("severity") == SKIPPED]
    if skipped:
        reports.append({"mode": SKIPPED, "skipped": skipped})
    return raw.source, problems, reports

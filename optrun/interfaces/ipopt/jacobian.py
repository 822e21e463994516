"""Whether IPOPT's dense constraint Jacobian can be built: a fixed limit, and the memory it takes.

The Jacobian is dense: ``m x n`` entries for ``m`` constraint rows. IPOPT does not
keep only the values: with MUMPS, its KKT matrix, the factor and the index
arrays take 134-151 bytes per entry, and optrun's evaluation (the rows it
computes and joins) brings it to 182-207 (``python -m bench ipoptmem``: peak
RSS growth at m = 100 over its entries, n = 20,000 and 100,000).
A problem whose Jacobian cannot fit is refused at construction, before any of
it is built.
"""

from __future__ import annotations

from pathlib import Path

from optrun.errors import InvalidArgumentError

#: The largest dense constraint Jacobian (rows times variables): 2e8 entries, 1.6 GB of values alone.
MAX_JACOBIAN_ENTRIES = 200_000_000
#: What one Jacobian entry costs in all, IPOPT's and MUMPS's structures and optrun's copies included
#: (up to 207 bytes measured), with a margin.
BYTES_PER_ENTRY = 240
_ADVICE = (
    "sparse Jacobians are not supported yet: use fewer constraints (bounds for element-wise "
    "conditions, or one aggregated constraint such as a norm)."
)


def available_bytes() -> int | None:
    """The memory the system can still give (``MemAvailable``), or what is left under the
    process's cgroup limit (a container's) where that is less; None where neither can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v2: memory.max ("max": no limit) less memory.current
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text(encoding="ascii")))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_jacobian_size(rows: int, n: int, available: int | None = None) -> None:
    """Refuses a dense ``rows x n`` Jacobian above :data:`MAX_JACOBIAN_ENTRIES`, or one that would
    need more memory than is available (``available``: bytes; None reads the system's).

    Raises:
        InvalidArgumentError: with the size, what it needs, and what to do.
    """
    entries = rows * n
    if entries > MAX_JACOBIAN_ENTRIES:
        raise InvalidArgumentError(
            f"the dense constraint Jacobian would have {rows} x {n} = {entries:,} entries, above "
            f"IpoptInterface's limit of {MAX_JACOBIAN_ENTRIES:,}; {_ADVICE}"
        )
    free = available_bytes() if available is None else available
    need = entries * BYTES_PER_ENTRY
    if free is not None and need > free:
        raise InvalidArgumentError(
            f"the dense constraint Jacobian ({rows} x {n} = {entries:,} entries) would need about "
            f"{need / 2**30:.1f} GiB with IPOPT's own copies (about {BYTES_PER_ENTRY} bytes an entry); "
            f"{free / 2**30:.1f} GiB is available; {_ADVICE}"
        )

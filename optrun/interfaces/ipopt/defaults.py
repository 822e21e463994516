"""What the IPOPT interface sets unless its ``options`` say otherwise: quiet, no ``./ipopt.opt``,
L-BFGS Hessians, and AMD ordering in MUMPS."""

from __future__ import annotations

from typing import Any

#: What the interface sets unless ``options`` says otherwise: quiet, and nothing read from ./ipopt.opt.
DEFAULT_OPTIONS: dict[str, str | int | float] = {
    "print_level": 0,
    "sb": "yes",
    "option_file_name": "",
    "hessian_approximation": "limited-memory",
    "mumps_pivot_order": 0,  # AMD: ~2x faster than MUMPS's automatic choice here (bench "constrained")
}
#: What an ``output_file`` holds unless ``file_print_level`` says otherwise: IPOPT's default, which
#: the quiet ``print_level 0`` would otherwise leave it at (an empty file).
OUTPUT_FILE_LEVEL = 5


def with_defaults(given: dict[str, Any]) -> dict[str, str | int | float]:
    """The options IPOPT gets: :data:`DEFAULT_OPTIONS` updated with ``given``."""
    options = {**DEFAULT_OPTIONS, **given}
    if options.get("output_file") and "file_print_level" not in given:
        options["file_print_level"] = OUTPUT_FILE_LEVEL
    return options

"""The names of what optrun writes in a run directory, which a spec's file names may not take."""

from __future__ import annotations

MARKER = ".optrun-run"  # says the directory is optrun's, with its run id
LOCK = ".optrun-lock"  # held while a process runs in it
CHECKPOINTS = "checkpoints"
AVERAGED = "averaged"
EXPORT = "export"
TENSORBOARD = "tensorboard"
RESULT = "result.json"
CONFIG = "config.yaml"
WARNINGS = "warnings.log"
#: Every name above: a metrics file under one of them would overwrite or break the run.
RESERVED = frozenset({MARKER, LOCK, CHECKPOINTS, AVERAGED, EXPORT, TENSORBOARD, RESULT, CONFIG, WARNINGS})
#: The most bytes a file name may have on common file systems (ext4, APFS, NTFS).
NAME_MAX = 255

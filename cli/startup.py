"""What every command does first: TensorFlow's C++ log kept quiet, Python logging through rich."""

from __future__ import annotations

import logging
import os

from rich.logging import RichHandler

from .progress import PipeSafeConsole

# TensorFlow's C++ log (CUDA probing, CPU features, XLA's cache loader) is not the user's
# business unless they ask: --verbose shows it, and a level the user set is theirs.
_USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow(verbose: bool) -> None:
    """Imports TensorFlow with its native start-up log (oneDNN, CUDA probing) silenced.

    Those lines are written by C++ before absl logging is configured, so no
    environment variable stops them; only --verbose shows them, with the rest
    of TensorFlow's C++ log (unless TF_CPP_MIN_LOG_LEVEL was set by the user).
    """
    if verbose:
        if _USER_TF_LOG_LEVEL is None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        import tensorflow

        return
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Python logging to stderr through rich: INFO with -v, ERROR with -q, else WARNING."""
    level = logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    handler = RichHandler(console=PipeSafeConsole(stderr=True), show_time=False, show_path=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)

"""IPOPT's options that name files, checked before IPOPT opens them.

IPOPT finds out only at the solve that it cannot write ``output_file``, and
then stops with "Invalid option encountered" (status -12) without naming the
option; an ``option_file_name`` that does not exist it ignores without a word,
and a bad line in one that does is the same bare -12. So the folder of
``output_file`` must take a new file (tried: a trial file is made and removed
at once), and an option file must exist, with each ``name value`` line an
option :func:`~optrun.interfaces.ipopt.options.check_options` accepts.
Relative paths are IPOPT's: from the current working directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optrun.errors import InvalidArgumentError

#: The options this module checks.
FILE_OPTIONS = ("output_file", "option_file_name")


def check_files(options: dict[str, Any], check: Callable[[dict[str, Any]], Any]) -> None:
    """Raises :class:`InvalidArgumentError` for a file option IPOPT could not use.

    Args:
        options: IPOPT options, already checked one by one (the file options are strings).
        check: the check each line of an option file must pass (``check_options``).
    """
    output = options.get("output_file")
    if isinstance(output, str) and output:
        _check_writable(Path(output))
    name = options.get("option_file_name")
    if isinstance(name, str) and name:
        _check_option_file(Path(name), check)


def _check_writable(path: Path) -> None:
    where = "options['output_file']"
    if path.is_dir():
        raise InvalidArgumentError(f"{where} names {str(path)!r}, a folder; give a file name in it")
    folder = path.parent
    try:
        handle, trial = tempfile.mkstemp(prefix=".optrun-check-", dir=folder)
        os.close(handle)
        os.unlink(trial)
    except OSError as error:
        raise InvalidArgumentError(
            f"{where} names {str(path)!r}, which IPOPT cannot write ({error.strerror} in "
            f"{str(folder)!r}); give a file in a folder that exists and that you can write to"
        ) from None


def _check_option_file(path: Path, check: Callable[[dict[str, Any]], Any]) -> None:
    where = "options['option_file_name']"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InvalidArgumentError(
            f"{where} names {str(path)!r}, which cannot be read ({error.strerror}); IPOPT would go "
            "on without it: give the path of an existing option file, or leave the option out"
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            raise InvalidArgumentError(
                f"{where} names {str(path)!r}, whose line {number} is {line.strip()!r}; IPOPT reads "
                "one 'name value' pair a line"
            )
        if words[0] in FILE_OPTIONS:
            continue  # its own check, when given as an option
        try:
            check({words[0]: words[1]})
        except InvalidArgumentError as error:
            said = str(error).removeprefix("options: ")
            raise InvalidArgumentError(
                f"{where} names {str(path)!r}, whose line {number} IPOPT would refuse: {said}"
            ) from None

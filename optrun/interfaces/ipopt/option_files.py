"""IPOPT's options that name files, checked before IPOPT opens them.

IPOPT finds out only at the solve that it cannot write ``output_file``, and
then stops with "Invalid option encountered" (status -12) without naming the
option; an ``option_file_name`` that does not exist it ignores without a word,
and a bad line in one that does is the same bare -12. So the folder of
``output_file`` must take a new file (tried: a trial file is made and removed
at once), and an option file must exist, with each name and value in it (read
as IPOPT reads it: :func:`tokens_of`) an option
:func:`~optrun.interfaces.ipopt.options.check_options` accepts.
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


def check_files(
    options: dict[str, Any], check: Callable[[dict[str, Any]], Any], together: tuple[str, ...] = ()
) -> None:
    """Raises :class:`InvalidArgumentError` for a file option IPOPT could not use.

    Args:
        options: IPOPT options, already checked one by one (the file options are strings).
        check: the check each option of an option file must pass (``check_options``).
        together: options checked as one, from the file and ``options`` alike (a linear solver
            and the options that say where its library is).
    """
    output = options.get("output_file")
    if isinstance(output, str) and output:
        _check_writable(Path(output))
    name = options.get("option_file_name")
    if isinstance(name, str) and name:
        _check_option_file(Path(name), check, together, options)


def _check_writable(path: Path, where: str = "options['output_file']") -> None:
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


def _check_option_file(
    path: Path, check: Callable[[dict[str, Any]], Any], together: tuple[str, ...], given: dict[str, Any]
) -> None:
    where = f"options['option_file_name'] names {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InvalidArgumentError(
            f"{where}, which cannot be read ({error.strerror}); IPOPT would go on without it: give the "
            "path of an existing option file, or leave the option out"
        ) from None
    tokens = tokens_of(text)
    if len(tokens) % 2:
        word, line = tokens[-1]
        raise InvalidArgumentError(f"{where}, whose option {word!r} (line {line}) has no value after it")
    grouped = {k: given[k] for k in together if k in given}
    from_file = False
    for (name, line), (value, _) in zip(tokens[::2], tokens[1::2], strict=True):
        if name in together:  # checked as one below, with the options given
            grouped[name], from_file = value, True
            continue
        try:
            if name == "output_file":
                _check_writable(Path(value), f"its output_file (line {line})")
            elif name != "option_file_name":
                check({name: value})
        except InvalidArgumentError as error:
            said = str(error).removeprefix("options: ")
            raise InvalidArgumentError(f"{where}, whose line {line} IPOPT would refuse: {said}") from None
    if from_file and "linear_solver" in grouped:
        try:
            check(grouped)
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"{where}: {error}") from None


def tokens_of(text: str) -> list[tuple[str, int]]:
    """``(token, line)`` pairs as IPOPT reads an option file: tokens apart by white space, lines
    ignored; ``#`` where a token would start comments out the rest of its line; a token in
    double quotes may hold spaces."""
    tokens: list[tuple[str, int]] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        char = text[i]
        if char == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif char.isspace():
            line += char == "\n"
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            tokens.append((text[i + 1 : end], line))
            line += text.count("\n", i, end)
            i = end + 1
        else:
            end = i
            while end < n and not text[end].isspace():
                end += 1
            tokens.append((text[i:end], line))
            i = end
    return tokens

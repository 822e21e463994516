"""``optrun schema``: the experiment spec's JSON Schema, printed or written to a file."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from .errors import error_boundary
from .options import JsonOpt, QuietOpt, VerboseOpt


def schema(
    write: Annotated[
        Path | None,
        typer.Option(
            "--write",
            metavar="FILE",
            help="Write the schema to FILE (e.g. optrun.schema.json); print the line to put in a spec.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the JSON Schema of the experiment spec (for editor completion and checks).

    The schema is JSON either way; with --write, --json reports the file and the modeline as JSON.
    """
    from optrun.spec.schema import json_schema

    spec_schema = json_schema()
    text = json.dumps(spec_schema, indent=2)
    if write is None:
        typer.echo(text)
        return
    with error_boundary(verbose, as_json, runs=False):
        from optrun.errors import RunError

        if os.path.lexists(write) and not write.is_file():  # a rename would replace a device or pipe
            raise RunError(f"--write {write}: not a regular file; give the path of a .json file")
        # A spec or a script given by mistake is left as it is.
        if write.is_file() and not _a_schema(write, spec_schema["title"]):
            raise RunError(
                f"--write {write}: the file exists and is not an optrun schema, so it is left as it is; "
                "give another path, or remove the file first"
            )
        tmp = write.with_name(f".{write.name}.tmp")
        try:  # via a temporary file and a rename: never half a schema
            tmp.write_text(text + "\n", encoding="utf-8")
            os.replace(tmp, write)
        except OSError as error:
            with contextlib.suppress(OSError):  # a read-only folder refuses the unlink too
                tmp.unlink(missing_ok=True)
            raise RunError(f"--write {write}: cannot write the schema: {error.strerror}") from None
    modeline = f"# yaml-language-server: $schema={write}"
    if as_json:
        typer.echo(json.dumps({"written": str(write), "modeline": modeline}))
    elif not quiet:
        typer.echo(f"wrote {write}; for editor completion, start a spec with this line:")
        typer.echo(modeline)


def _a_schema(path: Path, title: str) -> bool:
    """Whether ``path`` holds a schema ``optrun schema`` wrote, of this ``title`` (an update replaces it)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and found.get("title") == title and "$schema" in found

"""The CLI reference: every command of ``optrun``, read from the Typer app itself.

``typer.main.get_command`` turns the app into its Click command; each command's usage line,
help, arguments and options come from the same objects ``optrun COMMAND --help`` prints, so
the page cannot drift from the CLI.
"""

from __future__ import annotations

import inspect
from typing import Any

from markdown_text import code, escape, paragraphs, table

PROG = "optrun"


def _context(command: Any, name: str, parent: Any = None) -> Any:
    """The Click context ``--help`` would see for ``command`` (usage lines name the parents)."""
    return command.context_class(command, info_name=name, parent=parent)


def _usage(command: Any, ctx: Any) -> str:
    """``optrun train [OPTIONS] [config]``: the usage line, without Click's ``Usage:``."""
    pieces = " ".join(command.collect_usage_pieces(ctx))
    return f"{ctx.command_path} {pieces}".strip()


def _rows(command: Any, ctx: Any, kind: str) -> list[list[str]]:
    """One row per visible argument or option (``kind``): its names and value, and its help
    with Click's notes (range, default, required) as ``--help`` shows them."""
    rows = []
    for param in command.get_params(ctx):
        if param.param_type_name != kind or getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            names, text = param.human_readable_name, getattr(param, "help", None) or ""
        else:
            names, text = record
        rows.append([code(names), escape(text) or "&nbsp;"])
    return rows


def _command(command: Any, ctx: Any, level: int, out: list[str]) -> None:
    """Appends ``command``'s section, then those of its subcommands (for a group)."""
    path = ctx.command_path
    anchor = "-".join(path.split()[1:]) or "global-options"
    title = code(path) if ctx.parent is not None else "Global options"
    out.append(f"{'#' * level} {title} {{ #{anchor} }}")
    if command.help:
        out.append(paragraphs(inspect.cleandoc(command.help)))
    out.append(f"```text\n{_usage(command, ctx)}\n```")
    for kind, header in (("argument", "Argument"), ("option", "Option")):
        rows = _rows(command, ctx, kind)
        if rows:
            out.append(table([header, "Description"], rows))
    if hasattr(command, "commands"):
        if ctx.parent is None:
            out.append(f"Commands: {', '.join(_links(command, ctx))}.")
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _command(sub, _context(sub, name, ctx), level if ctx.parent is None else level + 1, out)


def _links(group: Any, ctx: Any) -> list[str]:
    names = [n for n in group.list_commands(ctx) if not group.get_command(ctx, n).hidden]
    return [f"[{code(name)}](#{name})" for name in names]


def command_names(app: Any = None) -> list[str]:
    """The visible commands of the app (``train``, ``minimize``, ...), in ``--help``'s order."""
    root = _root(app)
    ctx = _context(root, PROG)
    return [n for n in root.list_commands(ctx) if not root.get_command(ctx, n).hidden]


def _root(app: Any) -> Any:
    import typer

    if app is None:
        from optrun_cli import main

        app = main.app
    return typer.main.get_command(app)


def cli_reference(app: Any = None) -> str:
    """The CLI reference's generated part: the global options, then one section per command.

    Args:
        app: the Typer app; default ``optrun_cli.main:app``, the ``optrun`` command.

    Returns:
        Markdown, from ``## Global options`` on.
    """
    root = _root(app)
    out: list[str] = []
    _command(root, _context(root, PROG), 2, out)
    return "\n\n".join(out) + "\n"

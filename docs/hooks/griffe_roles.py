"""A Griffe extension: the Sphinx markup in optrun's docstrings, rendered for MkDocs.

optrun's docstrings are Google style, with Sphinx cross-reference roles
(:class:`optrun.X`, :meth:`minimize`) and literal blocks (``Example::``) that
Markdown would print verbatim. Each role becomes a code span wrapped in an
*optional* autorefs link: it links to the object's entry when the site documents
it, and stays plain code otherwise, so a reference to an internal module never
breaks the ``--strict`` build. A literal block's ``::`` becomes ``:`` as Sphinx
shows it; the indented block below it is already a Markdown code block.

Loaded by mkdocstrings (``extensions:`` in ``mkdocs.yml``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

# :class:`X`, :py:meth:`~a.b.c`, ... (role name, then the target in backticks).
ROLE = re.compile(r":(?:py:)?(?P<role>class|meth|func|mod|attr|data|exc|obj|const):`(?P<target>[^`]+)`")


def _resolve(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` stands for in ``obj``'s scope (``minimize`` in a method's docstring
    is its class's method), or None when Griffe cannot tell."""
    head, _, rest = name.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        if head in scope.members:
            found = scope.members[head].path
            return f"{found}.{rest}" if rest else found
        try:
            resolved: str | None = scope.resolve(head)
        except (griffe.NameResolutionError, KeyError, AttributeError):
            resolved = None
        if resolved:
            return f"{resolved}.{rest}" if rest else resolved
        scope = scope.parent
    return name if "." in name else None


def render_roles(text: str, obj: griffe.Object | None = None) -> str:
    """``text`` with every Sphinx role replaced by a code span, linked when the target resolves.

    Args:
        text: a docstring.
        obj: the object the docstring belongs to, to resolve unqualified names.

    Returns:
        The docstring in Markdown.
    """

    def replace(match: re.Match[str]) -> str:
        target = match["target"].strip()
        short = target.startswith("~")
        target = target.lstrip("~").removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if short else target
        if match["role"] in ("meth", "func"):
            shown += "()"
        full = _resolve(obj, target) if obj is not None else (target if "." in target else None)
        code = f"<code>{html.escape(shown)}</code>"
        if full is None:
            return code
        return f'<autoref identifier="{html.escape(full)}" optional>{code}</autoref>'

    return _literal_blocks(ROLE.sub(replace, text))


def _literal_blocks(text: str) -> str:
    """``Example::`` -> ``Example:``, and a ``::`` alone (or after a space) dropped, as Sphinx
    renders them; lines inside fenced code are left alone."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.rstrip().endswith("::"):
            lines.append(line)
            continue
        body = line.rstrip()[:-2]
        if body.strip():
            lines.append(body.rstrip() if body.endswith(" ") else body + ":")
    return "\n".join(lines)


class SphinxRoles(griffe.Extension):
    """Rewrites the docstrings of every object of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Called by Griffe when ``pkg`` is loaded: every member is known, so names resolve."""
        seen: set[int] = set()

        def visit(obj: griffe.Object) -> None:
            if id(obj) in seen:
                return
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = render_roles(obj.docstring.value, obj)
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)  # type: ignore[arg-type]  # not an alias: an Object

        visit(pkg)

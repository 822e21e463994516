"""MkDocs hook: fills the generated parts of the reference pages at build time.

``docs/reference/spec.md`` and ``docs/reference/cli.md`` are short prose around a
placeholder comment; the tables come from the code (:mod:`spec_reference`,
:mod:`cli_reference`), so the pages cannot drift from the spec or the CLI. A page
that lost its placeholder fails the build rather than silently losing its reference.

Registered under ``hooks:`` in ``mkdocs.yml``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from cli_reference import cli_reference
from mkdocs.exceptions import PluginError
from spec_reference import spec_reference

#: Page (relative to docs/) -> (placeholder, the function that writes what replaces it).
GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "reference/spec.md": ("<!-- optrun:spec-reference -->", spec_reference),
    "reference/cli.md": ("<!-- optrun:cli-reference -->", cli_reference),
}


_serving = False


def on_startup(*, command: str, **kwargs: Any) -> None:
    """Notes whether this is ``mkdocs serve``, which rebuilds in the same process."""
    global _serving  # noqa: PLW0603 - MkDocs hooks are module functions
    _serving = command == "serve"


def on_pre_build(**kwargs: Any) -> None:
    """Under ``mkdocs serve``, forgets the spec and CLI modules, so that a rebuild after an
    edit to them (``watch:`` in mkdocs.yml) generates the pages from the edited code."""
    if _serving:
        for name in [n for n in sys.modules if n.startswith(("optrun.spec", "optrun_cli"))]:
            del sys.modules[name]


def on_page_markdown(markdown: str, *, page: Any, **kwargs: Any) -> str:
    """Replaces the page's placeholder with its generated reference."""
    generated = GENERATED.get(page.file.src_uri)
    if generated is None:
        return markdown
    placeholder, make = generated
    if placeholder not in markdown:
        raise PluginError(f"{page.file.src_uri}: the placeholder {placeholder} is missing")
    return markdown.replace(placeholder, make())

"""The documentation site's generated reference pages and its configuration.

Fast: the generators under docs/hooks/ run here as plain functions; the full site
(``mkdocs build --strict``, docstrings included) is built by ``make docs``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

import optrun
from optrun.spec.schema import field_paths, json_schema
from optrun_cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from optrun_cli.main import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HOOKS = DOCS / "hooks"

# The generators import each other by name, as MkDocs loads them (with their folder on sys.path).
sys.path.insert(0, str(HOOKS))
import cli_reference  # noqa: E402
import griffe_roles  # noqa: E402
import spec_reference  # noqa: E402

sys.path.remove(str(HOOKS))


@pytest.fixture(scope="module")
def spec_page() -> str:
    return spec_reference.spec_reference()


@pytest.fixture(scope="module")
def cli_page() -> str:
    return cli_reference.cli_reference()


def _anchors(markdown: str) -> list[str]:
    return re.findall(r"^#+ .*\{ #([\w-]+) \}$", markdown, flags=re.MULTILINE)


# ----- the spec reference ------------------------------------------------------------


def test_spec_reference_lists_every_field(spec_page: str) -> None:
    missing = [path for path in field_paths() if f"| `{path}` |" not in spec_page]
    assert not missing, f"the spec reference misses {missing}"


def test_spec_reference_has_a_section_per_kind(spec_page: str) -> None:
    def kinds(node: Any) -> Iterator[str]:
        # Every kind of every union the schema discriminates by 'kind'.
        if isinstance(node, dict):
            yield from node.get("discriminator", {}).get("mapping", {})
            for value in node.values():
                yield from kinds(value)
        elif isinstance(node, list):
            for item in node:
                yield from kinds(item)

    found = set(kinds(json_schema()))
    assert found >= {"moving_average", "variable_clipping", "default", "mirrored", "multi_worker"}
    titles = re.findall(r"^### .* with `kind: (\w+)`", spec_page, flags=re.MULTILINE)
    assert found <= set(titles), found - set(titles)
    assert {"keras", "callable"} <= set(titles)  # loss: its schema also takes a plain string


def test_spec_reference_shows_types_defaults_and_allowed_values(spec_page: str) -> None:
    rows = {
        line.split(" | ")[0].strip("| `"): line for line in spec_page.splitlines() if line.startswith("| `")
    }
    assert '`"stop"` \\| `"skip"`' in rows["train.on_nonfinite"]  # a Literal's values
    assert "`0.9999`" in rows["train.optimizer.wrappers[].average_decay"]  # a default
    assert "*required*" in rows["name"]
    assert '`{"kind": "default"}`' in rows["strategy"]  # a section's default, from its factory
    assert "[`mirrored`](#strategy-mirrored)" in rows["strategy"]  # a union's kinds, linked
    assert rows["minimize.constraints.bounds.<variable>.low"]  # the values of a free-keyed mapping


def test_spec_reference_anchors_are_unique_and_links_resolve(spec_page: str) -> None:
    anchors = _anchors(spec_page)
    assert len(anchors) == len(set(anchors))
    linked = set(re.findall(r"\]\(#([\w-]+)\)", spec_page))
    assert linked <= set(anchors), linked - set(anchors)


# ----- the CLI reference -------------------------------------------------------------


def test_cli_reference_names_every_command_and_option(cli_page: str) -> None:
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="optrun")
    names = root.list_commands(ctx)
    assert {"train", "minimize", "validate", "show", "runs", "schema", "version"} <= set(names)
    assert cli_reference.command_names() == names
    anchors = _anchors(cli_page)
    for name in names:
        assert f"## `optrun {name}` {{ #{name} }}" in cli_page, name
        command = root.get_command(ctx, name)
        for param in command.params:
            for flag in param.opts:
                if flag.startswith("-"):
                    assert re.search(rf"\| `[^`]*{re.escape(flag)}\b[^`]*` \|", cli_page), (name, flag)
    assert "global-options" in anchors and len(anchors) == len(set(anchors))


def test_cli_reference_shows_usage_and_help(cli_page: str) -> None:
    assert "optrun minimize [OPTIONS] [config]" in cli_page
    assert "Minimize with scipy (or IPOPT)" in cli_page
    assert "`--maxiter <int range>` | Iteration limit" in cli_page


def test_cli_page_lists_the_exit_codes() -> None:
    page = (DOCS / "reference" / "cli.md").read_text()
    table = page.split("## Exit codes", 1)[1]
    for code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE, 130, 143):
        assert re.search(rf"^\| {code} \|", table, flags=re.MULTILINE), code


# ----- the API page, the hook, the configuration --------------------------------------


def test_api_page_documents_every_public_name() -> None:
    page = (DOCS / "reference" / "api.md").read_text()
    documented = set(re.findall(r"^::: optrun\.(\w+)$", page, flags=re.MULTILINE))
    missing = sorted(set(optrun.__all__) - documented - {"__version__"})
    assert not missing, f"docs/reference/api.md does not document {missing}"
    assert '- "^_minimize$"' in page  # the subclass contract is shown despite its underscore


def test_every_generated_page_has_its_placeholder() -> None:
    generate = _load_hook()
    for page, (placeholder, _) in generate.GENERATED.items():
        assert placeholder in (DOCS / page).read_text(), page


def _load_hook() -> Any:
    sys.path.insert(0, str(HOOKS))
    try:
        import generate
    finally:
        sys.path.remove(str(HOOKS))
    return generate


def _config() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        """mkdocs.yml's !!python/name tags (Markdown extensions' hooks), read as plain strings."""

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def _pages(nav: Any) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _pages(value)


def test_config_is_strict_and_navigates_every_page() -> None:
    config = _config()
    assert config["strict"] is True
    assert config["validation"]["anchors"] == "warn"  # with strict: a broken anchor fails the build
    pages = list(_pages(config["nav"]))
    assert pages == [
        "index.md",
        "getting-started.md",
        "guide.md",
        "tf1.md",
        "migrating.md",
        "cli.md",
        "scaling.md",
        "sweep.md",
        "ipopt.md",
        "performance.md",
        "reliability.md",
        "reference/api.md",
        "reference/cli.md",
        "reference/spec.md",
        "architecture.md",
    ]
    (plugin,) = [p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p]
    options = plugin["handlers"]["python"]["options"]
    assert options["docstring_style"] == "google"
    for hook in config["hooks"]:
        assert (ROOT / hook).is_file(), hook


def test_sphinx_roles_become_code_and_optional_links() -> None:
    render = griffe_roles.render_roles
    assert render("see :class:`~optrun.ScipyOptimizerInterface`.") == (
        'see <autoref identifier="optrun.ScipyOptimizerInterface" optional>'
        "<code>ScipyOptimizerInterface</code></autoref>."
    )
    assert render("call :meth:`minimize`") == "call <code>minimize()</code>"  # unresolved: plain code
    assert render("Example::\n\n    x = 1\n") == "Example:\n\n    x = 1"
    assert render("```\nkeep::\n```") == "```\nkeep::\n```"

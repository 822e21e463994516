"""The user docs and the spec's schema say the same thing."""

from __future__ import annotations

from pathlib import Path

from optrun.spec.schema import field_paths

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# The prose pages (the generated reference lists every field by construction).
PROSE = README + "".join(page.read_text() for page in sorted((ROOT / "docs").glob("*.md")))


def test_every_spec_field_is_documented() -> None:
    missing = []
    for path in field_paths():
        leaf = path.replace("[]", "").split(".")[-1]
        if f"`{path.replace('[]', '')}`" not in PROSE and f"`{leaf}`" not in PROSE:
            missing.append(path)
    assert not missing, f"no prose page in docs/ explains: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("## A 5-minute tour")[0]
    assert "make demo" in head and "make test" in head

"""README and the spec's schema say the same thing."""

from __future__ import annotations

from pathlib import Path

from optrun.spec.experiment import field_paths

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_spec_field_is_documented() -> None:
    missing = []
    for path in field_paths():
        leaf = path.replace("[]", "").split(".")[-1]
        if f"`{path.replace('[]', '')}`" not in README and f"`{leaf}`" not in README:
            missing.append(path)
    assert not missing, f"README does not document: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("## A 5-minute tour")[0]
    assert "make demo" in head and "make test" in head

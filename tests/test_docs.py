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


def test_the_exit_codes_say_a_reached_budget_is_a_success() -> None:
    """README's summary and docs/cli.md's table: minimize's budget_reached exits 0, as train at max_steps."""
    table = (ROOT / "docs" / "cli.md").read_text().split("## Exit codes")[1].split("\n\n")[1]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "`budget_reached`" in rows["0"] and "`budget_reached`" not in rows["1"]
    assert "`stalled`" in rows["1"] and "`infeasible`" in rows["1"] and "`nonfinite`" in rows["1"]
    summary = " ".join(README.split("Exit codes:")[1].split("See [CLI")[0].split())
    assert summary.startswith("0 success (train `completed`; minimize `converged`, or `budget_reached`")


def test_the_readme_says_a_spec_runs_code() -> None:
    said = " ".join(README.split())
    assert "**A spec runs code.**" in said and "run only specs you would trust as Python scripts" in said

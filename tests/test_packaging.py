"""The wheel: what it installs, under which names, and that the entry points work from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy, so the checkout gets no build/ or egg-info (and xdist workers do not race).
    src = tmp_path_factory.mktemp("src")
    for name in ("optrun", "cli"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            ".",
        ],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("optrun-*.whl")
    return found


def test_wheel_installs_only_optrun_owned_top_level_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"optrun", "optrun_cli", "optrun-0.1.0.dist-info"}
    assert "optrun/py.typed" in names and "optrun_cli/py.typed" in names
    assert {"optrun/spec/defaults/train.yaml", "optrun/spec/defaults/minimize.yaml"} <= set(names)
    cli = {"optrun_cli/entry.py", "optrun_cli/main.py", "optrun_cli/errors.py", "optrun_cli/progress.py"}
    assert cli <= set(names)
    entry_points = zipfile.ZipFile(wheel).read("optrun-0.1.0.dist-info/entry_points.txt").decode()
    assert "optrun = optrun_cli.entry:main" in entry_points


def test_wheel_in_a_fresh_venv_runs_both_entry_points(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    assert sorted(p.name for p in site.iterdir() if not p.name.startswith(("_", "."))) == [
        "optrun",
        "optrun-0.1.0.dist-info",
        "optrun_cli",
    ]
    # The dependencies come from the test's own environment (a plain path: its .pth hooks,
    # such as the editable install of the checkout, are not run).
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp_path / "elsewhere"  # not the checkout, whose cli/ and optrun/ would shadow
    outside.mkdir()
    for command in ([str(venv / "bin" / "optrun"), "--version"], [str(python), "-m", "optrun", "--version"]):
        done = subprocess.run(command, cwd=outside, capture_output=True, text=True, timeout=120, check=False)
        assert (done.returncode, done.stdout.strip()) == (0, "0.1.0"), done.stderr
    probe = (
        "import importlib.util, optrun, optrun_cli.main;"
        "print(optrun.__file__); print(optrun_cli.main.__file__);"
        "print(importlib.util.find_spec('cli'))"
    )
    done = subprocess.run(
        [str(python), "-c", probe], cwd=outside, capture_output=True, text=True, timeout=120, check=True
    )
    lib, cli, no_cli = done.stdout.split()
    assert lib == str(site / "optrun" / "__init__.py")
    assert cli == str(site / "optrun_cli" / "main.py")
    assert no_cli == "None"

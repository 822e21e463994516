"""The package's shape: imports point one way, modules stay short, the public API stays put.

Read from the source (``ast``), so these checks cost no TensorFlow import.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import optrun

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 300
# Lower layers never import higher ones (the root modules errors, causes, signatures, suggest, varkeys
# and version are the base every layer may use). A package may import its own modules.
LAYERS = ["spec", "evaluation", "interfaces", "wrappers", "scale", "runner", "runs", "sweep", "cli"]
PUBLIC = {
    "ConfigError": "optrun.errors",
    "ExperimentSpec": "optrun.spec.experiment",
    "ExternalOptimizerInterface": "optrun.interfaces.external",
    "InvalidArgumentError": "optrun.errors",
    "InvalidTypeError": "optrun.errors",
    "IpoptInterface": "optrun.interfaces.ipopt.interface",
    "Layout": "optrun.evaluation.packing",
    "LoadError": "optrun.errors",
    "MissingDependencyError": "optrun.errors",
    "MovingAverageOptimizer": "optrun.wrappers.moving_average",
    "NonFiniteError": "optrun.errors",
    "NotReadyError": "optrun.errors",
    "OptrunError": "optrun.errors",
    "PackedBounds": "optrun.evaluation.bounds",
    "ProjectedGradientInterface": "optrun.interfaces.projected",
    "RunError": "optrun.errors",
    "RunOptions": "optrun.runner.common",
    "ScipyOptimizerInterface": "optrun.interfaces.scipy",
    "SwappingSaver": "optrun.wrappers.swapping",
    "UnknownVariableError": "optrun.errors",
    "UnsupportedMethodError": "optrun.errors",
    "VariableClippingOptimizer": "optrun.wrappers.clipping",
    "__version__": "optrun.version",
    "dataset_loss": "optrun.scale.full_batch",
    "enable_compile_cache": "optrun.evaluation.compile_cache",
    "load_spec": "optrun.spec.load",
    "resolve_var_keyed": "optrun.varkeys",
    "run_minimize": "optrun.runner.minimize",
    "run_train": "optrun.runner.train",
    "validate_spec": "optrun.runner.validate",
}


def _modules() -> dict[str, Path]:
    found = {}
    for base, name in ((ROOT / "optrun", "optrun"), (ROOT / "cli", "optrun_cli")):
        for path in base.rglob("*.py"):
            parts = [name, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()
# The facade optrun/__init__.py names everything (lazily); `python -m optrun` starts the CLI.
FACADES = {"optrun", "optrun.__main__"}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(module: str, path: Path) -> set[str]:
    """The optrun modules ``module`` imports, at the top or inside functions (not for typing only)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            for name in [*names, target]:  # `from optrun.x import module` names a module
                if name in MODULES:
                    found.add(name)
                    break
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(module)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    name = "cli" if parts[0] == "optrun_cli" else (parts[1] if len(parts) > 1 else None)
    return LAYERS.index(name) if name in LAYERS else None


def test_no_import_cycle() -> None:
    graph = {m: deps - {"optrun"} for m, deps in GRAPH.items() if m not in FACADES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                walk(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{module} -> {dep}"
        for module, deps in GRAPH.items()
        for dep in deps
        if module not in FACADES
        and (low := _layer(module)) is not None
        and (high := _layer(dep)) is not None
        and high > low
    ]
    assert upward == [], f"imports up the layers {LAYERS}: {upward}"


def test_base_modules_import_no_layer() -> None:
    base = [m for m in GRAPH if m.count(".") == 1 and _layer(m) is None and m.startswith("optrun.")]
    base = [m for m in base if m not in FACADES]
    assert "optrun.errors" in base
    bad = [f"{m} -> {d}" for m in base for d in GRAPH[m] if _layer(d) is not None]
    assert bad == []


def test_no_module_over_the_line_limit_without_saying_why() -> None:
    long = []
    for path in MODULES.values():
        text = path.read_text()
        if text.count("\n") > MAX_LINES and "Longer than 300 lines because" not in text[:3000]:
            long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert long == []


def test_public_api_is_pinned() -> None:
    assert sorted(optrun.__all__) == sorted(PUBLIC)
    for name, home in PUBLIC.items():
        value = getattr(optrun, name)
        module = sys.modules.get(home) or __import__(home, fromlist=["_"])
        assert getattr(module, name) is value, name


def test_import_optrun_and_the_cli_help_stay_lazy() -> None:
    code = (
        "import sys, optrun, optrun_cli.main; "
        "optrun.ConfigError; optrun.__version__; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_no_module_is_git_ignored() -> None:
    # An ignore pattern such as `runs/` once hid optrun/runs/ from every fresh clone.
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str(path.relative_to(ROOT)) for path in MODULES.values()]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.stdout.split() == []

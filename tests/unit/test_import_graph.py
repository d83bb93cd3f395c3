"""The package's import graph keeps the test world out of production code.

Production modules (everything but the sandbox, the simulator, the demo and the task layer)
never reach the sandbox, the simulator, the demo, pytest or testinfra, not even through
another module; the task layer is where the sandbox's ssh_config and the demo come in.
Read from the source (every import statement, lazy ones included), not from sys.modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ibkr_ops

PACKAGE = Path(ibkr_ops.__file__).parent
TEST_WORLD = ("ibkr_ops.sandbox", "ibkr_ops.sim", "ibkr_ops.demo")
# May import the test world: the test world itself, and the tasks that compose it in.
COMPOSERS = (*TEST_WORLD, "ibkr_ops.tasks")
NEVER = ("pytest", "_pytest", "testinfra")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names (relative ones resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            # `from ibkr_ops.checks import gateway` imports a submodule, not a name.
            found.update(f"{module}.{alias.name}" for alias in node.names
                         if f"{module}.{alias.name}" in MODULES)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p) for p in FILES}
GRAPH = {module_name(p): imports(p) for p in FILES}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def reach(start: str) -> set[str]:
    """Every module ``start`` imports, directly or through the package's own modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in GRAPH.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                todo += [name] if name in GRAPH else []
    return seen


PRODUCTION = sorted(m for m in GRAPH if not within(m, COMPOSERS))


def test_the_graph_is_read() -> None:
    """The reader finds the known leak-free edges (so an empty graph cannot pass)."""
    assert "ibkr_ops.remote.hosts" in reach("ibkr_ops.remote.switch")
    assert "ibkr_ops.checks.gateway" in GRAPH["ibkr_ops.remote.switch"] | reach(
        "ibkr_ops.remote.switch")
    assert "ibkr_ops.sandbox.paths" in reach("ibkr_ops.tasks.common")
    assert len(PRODUCTION) > 40


@pytest.mark.parametrize("module", PRODUCTION)
def test_production_module_never_reaches_the_test_world(module: str) -> None:
    leaks = sorted(n for n in reach(module) if within(n, (*TEST_WORLD, *NEVER)))
    assert not leaks, f"{module} imports {leaks}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if within(m, COMPOSERS)))
def test_nothing_in_the_package_imports_pytest(module: str) -> None:
    assert not sorted(n for n in GRAPH[module] if within(n, NEVER))


def test_the_sandbox_uses_production_code_only_through_its_public_doors() -> None:
    """The error family, the checked connection and the list of distribution packages a host
    receives (the base tree carries them, guests reach no mirror); nothing else (no cycle
    with remote)."""
    used = {n for m in GRAPH if within(m, ("ibkr_ops.sandbox",)) for n in GRAPH[m]
            if n.startswith("ibkr_ops.") and not within(n, ("ibkr_ops.sandbox",))}
    assert used <= {"ibkr_ops.errors", "ibkr_ops.remote.hosts", "ibkr_ops.packages"}, used

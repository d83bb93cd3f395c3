"""The host-side modules run on a bare python3: they import the standard library only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ibkr_ops

SRC = Path(ibkr_ops.__file__).parent.parent
# The Discord receiver runs inside sandbox guests and the go-live checks' probes on every
# host, so they are held to the same rule.
HOST_FILES = [*sorted((SRC / "ibkr_ops" / "host").glob("*.py")),
              *sorted((SRC / "ibkr_ops" / "checks" / "hostside").glob("*.py")),
              SRC / "ibkr_ops" / "layout.py", SRC / "ibkr_ops" / "sim" / "discord.py"]
# What the host artifact ships besides host/: the package root, the error family and the
# host layout.
SHIPPED = {"ibkr_ops", "ibkr_ops.errors", "ibkr_ops.layout", "ibkr_ops.host"}


def imported_names(path: Path) -> set[str]:
    """Every module an `import` statement names, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", HOST_FILES, ids=lambda p: p.name)
def test_every_import_statement_is_stdlib_or_shipped(path: Path) -> None:
    for name in imported_names(path):
        top = name.split(".")[0]
        if top == "ibkr_ops":
            assert name in SHIPPED or name.startswith("ibkr_ops.host."), name
        else:
            assert top in sys.stdlib_module_names or top == "__future__", name


def test_modules_import_without_site_packages() -> None:
    """-I -S: no site-packages, no user paths; only the source tree is importable. The probes
    are loaded as the host loads them, as source outside their operator-side package."""
    probes = [str(p) for p in HOST_FILES if p.parent.name == "hostside"]
    modules = [".".join(p.relative_to(SRC).with_suffix("").parts) for p in HOST_FILES
               if str(p) not in probes]
    code = (
        f"import sys; sys.path.insert(0, {str(SRC)!r});"
        f"import importlib; [importlib.import_module(m) for m in {modules!r}];"
        f"import runpy; [runpy.run_path(p, run_name='probe') for p in {probes!r}];"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names"
        " and m.split('.')[0] not in ('ibkr_ops', '__main__')"
        " and not m.startswith('_sysconfigdata')); print(bad)"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"

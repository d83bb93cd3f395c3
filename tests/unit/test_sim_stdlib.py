"""ibkr_ops.sim runs with a bare python3: standard library only, as a copy and as a zipapp."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ibkr_ops.sim import artifacts, ibcscripts

SIM_DIR = Path(__file__).resolve().parents[2] / "src" / "ibkr_ops" / "sim"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in SIM_DIR.glob("*.py")))
def test_imports_only_the_standard_library(module: str) -> None:
    outside = imported_modules(SIM_DIR / module) - set(sys.stdlib_module_names) - {"ibkr_ops"}
    assert not outside, f"{module} imports {sorted(outside)}"


def isolated_python() -> str:
    """The system python3 (Debian's, as in a guest), else this interpreter."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def test_copied_package_runs_with_python_isolated(tmp_path: Path) -> None:
    (tmp_path / "ibkr_ops").mkdir()
    (tmp_path / "ibkr_ops" / "__init__.py").write_text("")
    shutil.copytree(SIM_DIR, tmp_path / "ibkr_ops" / "sim",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([isolated_python(), "-E", "-s", "-S", "-m", "ibkr_ops.sim", "--help"],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "--fault" in done.stdout


def test_zipapp_runs_with_python_isolated(tmp_path: Path) -> None:
    app = tmp_path / "gateway.jar"
    app.write_bytes(artifacts.build_zipapp())
    done = subprocess.run([isolated_python(), "-I", "-S", str(app), "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(n for n in ibcscripts.FILES if n.endswith(".sh")))
def test_simulated_ibc_scripts_parse(tmp_path: Path, name: str) -> None:
    script = tmp_path / "s.sh"
    script.write_text(ibcscripts.FILES[name])
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_artifacts_are_reproducible() -> None:
    assert artifacts.build_installer() == artifacts.build_installer()
    assert artifacts.build_ibc_zip() == artifacts.build_ibc_zip()

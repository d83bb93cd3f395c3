"""The package as a user installs it: an sdist and a wheel built by `python -m build`, the
wheel installed into a fresh venv outside the checkout, its `ibkr-gateway-ops` command run
from `/`. It renders exactly what the checkout renders and answers `--help` for every task.

Slow (two isolated builds and a venv with the dependencies, about a minute): it proves the
templates, host scripts and checks are package data, not files of a checkout.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ibkr_ops.tasks.namespace import build
from ibkr_ops.tasks.program import NAME

ROOT = Path(__file__).resolve().parents[2]
INVOKE = Path(sys.executable).with_name("invoke")
TASK_NAMES = sorted(build().task_names)
# What only a checkout (or this workplace) holds: none of it may ship.
NOT_SHIPPED = ("tests/", "bench/", "deploy/", ".ci/", "noxfile.py", "tasks.py", "reports/",
               ".nox/", ".venv", "/build/", "dist/")


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{argv[:3]}...: {done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist, then a wheel built from that sdist (as pip and pipx do), outside the checkout."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    return out


@pytest.fixture(scope="module")
def command(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed `ibkr-gateway-ops` of a fresh venv that has only the wheel and its
    dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv)
    wheel = next(dist.glob("*.whl"))
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=venv)
    return venv / "bin" / NAME


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference paper settings, 0600 as render insists."""
    path = tmp_path_factory.mktemp("creds") / "paper.env"
    path.write_bytes((ROOT / "deploy" / "reference" / "paper.env").read_bytes())
    path.chmod(0o600)
    return path


def files(tree: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(tree)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(tree.rglob("*")) if p.is_file()}


def test_distributions_hold_the_package_and_its_data_only(dist: Path) -> None:
    """Templates, host scripts, the checks' probes, the stand-in's Java and py.typed are in
    the wheel; neither archive carries tests, benchmarks or workplace files."""
    wheel = zipfile.ZipFile(next(dist.glob("ibkr_gateway_ops-*.whl"))).namelist()
    for needed in ("ibkr_ops/templates/config.ini.j2", "ibkr_ops/templates/xvfb.service.j2",
                   "ibkr_ops/scripts/ibkr-health-check", "ibkr_ops/checks/hostside/secret_scan.py",
                   "ibkr_ops/checks/hostside/settings_probe.py", "ibkr_ops/py.typed",
                   "ibkr_ops/sim/standin/ibgateway/Standin.java"):
        assert needed in wheel
    source = ROOT / "src" / "ibkr_ops"
    for kind, pattern in (("templates", "*.j2"), ("scripts", "ibkr-*")):
        shipped = {n for n in wheel if n.startswith(f"ibkr_ops/{kind}/")}
        assert shipped == {f"ibkr_ops/{kind}/{p.name}" for p in (source / kind).glob(pattern)}
    assert all(n.startswith(("ibkr_ops/", "ibkr_gateway_ops-")) for n in wheel), wheel
    with tarfile.open(next(dist.glob("ibkr_gateway_ops-*.tar.gz"))) as sdist:
        members = [m.partition("/")[2] for m in sdist.getnames()]
    assert [m for m in members if m.startswith(NOT_SHIPPED)] == []
    assert "src/ibkr_ops/templates/config.ini.j2" in members


def test_installed_command_renders_what_the_checkout_renders(command: Path, credentials: Path,
                                                             tmp_path: Path) -> None:
    """From `/`, the full render (configuration, host scripts, tools zip) is byte for byte and
    mode for mode the checkout's `invoke render`."""
    installed, checkout = tmp_path / "installed", tmp_path / "checkout"
    run([str(command), "render", "--credentials", str(credentials), "--out", str(installed)],
        cwd=Path("/"))
    run([str(INVOKE), "render", "--credentials", str(credentials), "--out", str(checkout)],
        cwd=ROOT)
    got, want = files(installed), files(checkout)
    assert "usr/local/bin/ibkr-health-check" in got and "etc/ibkr/config.ini" in got
    assert sorted(got) == sorted(want)
    assert [name for name in got if got[name] != want[name]] == []


def test_installed_command_lists_and_explains_every_task(command: Path) -> None:
    """`--list` from `/` names the checkout's tasks; `--help TASK` of each shows that task's
    usage and the same options as `invoke --help TASK`."""
    listed = run([str(command), "--list"], cwd=Path("/")).stdout
    assert set(re.findall(r"^  (\S+)", listed, re.MULTILINE)) == set(TASK_NAMES)
    for name in TASK_NAMES:
        shown = run([str(command), "--help", name], cwd=Path("/")).stdout
        assert f"Usage: {NAME} [--core-opts] {name}" in shown, shown
        checkout = run([str(INVOKE), "--help", name], cwd=ROOT).stdout
        options = re.compile(r"^  (-\S+)", re.MULTILINE)
        assert options.findall(shown) == options.findall(checkout), name

"""Developer and CI sessions; operators use Invoke (tasks.py)."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
INSYNC_REQUIREMENT = "ib_insync==0.9.86"


def _install(session: nox.Session, *groups: str) -> None:
    session.install("-e", ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (integration tests need root and skip, saying why, without it)."""
    _install(session, "test")
    # ib_async and ib_insync both install a module named `eventkit`: insync gets its own venv.
    insync = Path(session.virtualenv.location).parent / "insync"
    if not (insync / "bin" / "python").exists():
        session.run("python", "-m", "venv", str(insync), external=True)
    session.run(str(insync / "bin" / "python"), "-m", "pip", "install", "-q", INSYNC_REQUIREMENT,
                external=True)
    env = {"IBKR_OPS_INSYNC_PYTHON": str(insync / "bin" / "python")}
    os.makedirs("reports", exist_ok=True)
    session.run("pytest", "--junitxml=reports/tests.xml", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff over the whole tree."""
    _install(session, "lint")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library."""
    _install(session, "typecheck")
    session.run("mypy", "--strict", "src/", *session.posargs)


@nox.session
def verify(session: nox.Session) -> None:
    """The go-live checklist against a real host: nox -s verify -- --hosts=ssh://user@host."""
    if not any(arg.startswith("--hosts") for arg in session.posargs):
        session.error("usage: nox -s verify -- --hosts=ssh://USER@HOST[:PORT] [--destructive]")
    _install(session, "test")
    os.makedirs("reports", exist_ok=True)
    session.run("pytest", "tests/verify", "-p", "no:cacheprovider",
                "--junitxml=reports/verify.xml", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Print the figures the issues ask for (bench/*.py, each standalone)."""
    _install(session, "bench")
    scripts = sorted(Path("bench").glob("bench_*.py"))
    wanted = set(session.posargs)
    for script in scripts:
        if not wanted or script.stem in wanted:
            session.run("python", str(script))

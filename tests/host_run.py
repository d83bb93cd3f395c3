"""Run a host tool the way a host does: its shim in scripts/, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

from ibkr_ops import resources

SCRIPTS = resources.scripts()


def run_tool(name: str, *args: str, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`scripts/<name> ARGS` under this interpreter; JOURNAL_STREAM cleared so output shows."""
    environ = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    environ.update(env or {})
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True,
                          text=True, env=environ, timeout=timeout, check=False)

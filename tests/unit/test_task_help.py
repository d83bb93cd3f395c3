"""Every operator task answers `--help` (and `-h`) with its own options, all long flags."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ibkr_ops.tasks.namespace import build

ROOT = Path(__file__).resolve().parents[2]
INVOKE = Path(sys.executable).with_name("invoke")
TASK_NAMES = sorted(build().task_names)


def invoke(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(INVOKE), *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_help_of_every_task(name: str) -> None:
    """`invoke --help TASK` works, and each option is a named long flag (no `-h` stolen by
    `--host`, no empty `--=STRING` flag)."""
    done = invoke("--help", name)
    assert done.returncode == 0, done.stderr
    options = re.findall(r"^  (-\S+)", done.stdout, re.MULTILINE)
    assert all(re.fullmatch(r"--[a-z][a-z-]*(=STRING|=INT|=FLOAT)?,?", flag) for flag in options), options
    assert "--=" not in done.stdout


@pytest.mark.parametrize("name", ["status", "install", "logs", "go-live"])
def test_dash_h_after_a_task_is_help(name: str) -> None:
    """`invoke TASK -h` prints that task's help instead of a parse error about `--host`."""
    done = invoke(name, "-h")
    assert done.returncode == 0, done.stderr
    assert f"{name} [--options]" in done.stdout and "--host" in done.stdout

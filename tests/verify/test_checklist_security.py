"""Checklist item 11: secret files are private, and the password has leaked nowhere."""

from __future__ import annotations

import pytest
from testinfra_runner import Judge, TestinfraRunner

from ibkr_ops.checks import Expect, security


@pytest.mark.checklist(11)
@pytest.mark.parametrize(("path", "owner"), security.SECRET_FILES)
def test_secret_file_private(runner: TestinfraRunner, expect: Expect, judge: Judge, path: str,
                             owner: str) -> None:
    """credentials.env is 0600 root; IBC's config.ini is 0600 and owned by the service user."""
    judge(security.secret_file_private(runner, expect, path, owner))


@pytest.mark.checklist(11)
def test_password_leaks_nowhere(runner: TestinfraRunner, judge: Judge) -> None:
    """The password is in no process's arguments or environment, the journal or /var/log/ibkr."""
    judge(security.password_leaks_nowhere(runner))

"""Checklist item 0 (with --credentials): the host still holds the operator's settings."""

from __future__ import annotations

import pytest
from testinfra_runner import Judge

from ibkr_ops.checks import Installed
from ibkr_ops.checks.expect import settings_match


@pytest.mark.checklist(0)
def test_installed_settings_match_operator_file(installed: Installed,
                                                operator_env: dict[str, str] | None,
                                                judge: Judge) -> None:
    """Every non-secret key of --credentials FILE has the same value on the host."""
    judge(settings_match(installed, operator_env))

"""Checklist item 0 (with --credentials): the host still holds the operator's settings."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.checklist(0)
def test_installed_settings_match_operator_file(installed: dict[str, Any],
                                                operator_env: dict[str, str] | None) -> None:
    """Every non-secret key of --credentials FILE has the same value on the host."""
    if operator_env is None:
        pytest.skip("no --credentials FILE given; expectations come from the host itself")
    differ = sorted(k for k in set(operator_env) | set(installed["env"])
                    if operator_env.get(k, "") != installed["env"].get(k, ""))
    assert not differ, f"the host's settings differ from the file in {differ}; run invoke install"

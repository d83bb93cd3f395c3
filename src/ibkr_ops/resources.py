"""Where the package finds its files that are not Python modules it imports.

One place, so that where they live (a checkout, or package data in an installed wheel) is
decided here and nowhere else.
"""

from __future__ import annotations

from importlib import resources


def hostside(script: str) -> str:
    """The source of a host-side probe of the go-live checks (``ibkr_ops.checks.hostside``)."""
    return (resources.files("ibkr_ops.checks.hostside") / script).read_text(encoding="utf-8")

"""Package names per release: what install asks dpkg about and what it would apt-get."""

from __future__ import annotations

import pytest

from ibkr_ops import packages
from ibkr_ops.remote.facts import facts_command, parse_facts


def test_ubuntu_2404_gets_the_t64_names_and_debian_12_the_old_ones() -> None:
    noble = packages.required_packages("ubuntu", "24.04")
    bookworm = packages.required_packages("debian", "12")
    assert {"libasound2t64", "libgtk-3-0t64", "libglib2.0-0t64", "libcups2t64"} <= set(noble)
    assert not {"libasound2", "libgtk-3-0"} & set(noble)
    assert {"libasound2", "libgtk-3-0", "libnss3", "libgbm1", "x11vnc", "x11-apps"} <= set(bookworm)
    assert not any(name.endswith("t64") for name in bookworm)
    # Unchanged names stay unchanged on both.
    assert {"libnss3", "libxcomposite1", "libxdamage1", "libxrandr2"} <= set(noble) & set(bookworm)


@pytest.mark.parametrize(("os_id", "version", "t64"), [
    ("ubuntu", "24.04", True), ("ubuntu", "26.04", True), ("ubuntu", "22.04", False),
    ("debian", "12", False), ("debian", "13", True), ("debian", "", False), ("", "", False),
])
def test_which_releases_use_t64(os_id: str, version: str, t64: bool) -> None:
    assert packages.uses_t64(os_id, version) is t64


def test_an_ubuntu_host_with_its_packages_installed_is_missing_nothing() -> None:
    """dpkg-query says "not installed" for a virtual old name: asking by the release's own
    names is what keeps a second install from calling apt at all."""
    noble = packages.required_packages("ubuntu", "24.04")
    text = "OS ubuntu 24.04\n" + "\n".join(f"PKG {p} 1" for p in noble) + \
        "\nPKG libasound2 0\nPKG libgtk-3-0 0"
    assert parse_facts(text).missing_packages == []
    debian = parse_facts("OS debian 12\n" + "\n".join(f"PKG {p} 1" for p in noble))
    assert "libasound2" in debian.missing_packages and "libgtk-3-0" in debian.missing_packages


def test_the_facts_script_asks_about_both_spellings() -> None:
    command = facts_command([], [], "trader", "/home/trader/Jts/ibgateway/1030")
    assert "libasound2 " in command and "libasound2t64" in command and "x11vnc" in command

"""`upgrade` and `install`'s way into it on a recorded host: what is sent before a refusal
(nothing that changes the host), and that a new build on a running host is not installed
over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoke.runners import Result
from test_converge import INSTALLED, RecordedHost, deployment

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.gateway_installer import GatewayInstaller
from ibkr_ops.layout import DEFAULT
from ibkr_ops.remote import upgrade
from ibkr_ops.remote.install import InstallOptions, install_on
from ibkr_ops.remote.primitives import Host
from ibkr_ops.render import env_file_text

BUILDS = "/home/trader/Jts/builds"
RUNNING = f"""\
ARCH x86_64
FREE_KB 20000000
BUILD {BUILDS}/10.30.1 sha256={"ab" * 32} version=10.30.1 channel=stable arch=x86_64
LINK 1030 {BUILDS}/10.30.1
RAN 1764100000 10.30.1
"""
REFUSED = {DEFAULT.pre_restart_tool: json.dumps(
    {"allowed": False, "reason": "inside the regular trading session"})}


class BuildsHost(RecordedHost):
    """A recorded host that also answers the builds' inventory."""

    def run(self, command: str, **kwargs: Any) -> Result:
        if "FREE_KB" in command:
            self.commands.append(command)
            return self._ok(RUNNING)
        return super().run(command, **kwargs)


def host(answers: dict[str, str] | None = None) -> BuildsHost:
    return BuildsHost(INSTALLED, {DEFAULT.credentials: env_file_text(deployment()).encode()},
                      answers)


def installer(tmp_path: Path, version: str = "10.30.2") -> GatewayInstaller:
    path = tmp_path / "ibgateway-stable-standalone-linux-x64.sh"
    path.write_bytes(b"#!/bin/sh\n")
    return GatewayInstaller(path, "cd" * 32, version, "stable", "x86_64")


def changed_anything(conn: BuildsHost) -> bool:
    """An upload, or a command beyond the reads (the facts script only asks systemctl)."""
    acts = [c for c in conn.commands if "dpkg-query" not in c]
    return bool(conn.uploads) or any(
        word in c for c in acts for word in ("runuser", "install -", "systemctl", "backup",
                                             "ln -s"))


def test_an_upgrade_refused_by_the_pre_restart_check_changes_nothing(tmp_path: Path) -> None:
    conn = host(REFUSED)
    with pytest.raises(OpsError, match="not now: inside the regular trading session"):
        upgrade.upgrade(Host(conn, "rec"), installer(tmp_path), upgrade.UpgradeOptions(),
                        lambda _: None)
    assert conn.commands[-1] == f"{DEFAULT.pre_restart_tool} --json"
    assert not changed_anything(conn)


def test_an_upgrade_to_the_running_build_is_refused_before_the_host_is_asked_more(
        tmp_path: Path) -> None:
    conn = host()
    with pytest.raises(UsageError, match=r"10\.30\.1, the build already running"):
        upgrade.upgrade(Host(conn, "rec"), installer(tmp_path, "10.30.1"),
                        upgrade.UpgradeOptions(), lambda _: None)
    # The Gateways listed, their settings and the builds read; nothing else.
    assert len(conn.commands) == 3
    assert not changed_anything(conn)


def test_rollback_without_a_previous_build_is_refused() -> None:
    conn = host()
    with pytest.raises(UsageError, match="keeps no previous Gateway build"):
        upgrade.rollback(Host(conn, "rec"), upgrade.UpgradeOptions(), lambda _: None)
    assert not changed_anything(conn)


def test_install_with_a_new_build_on_a_running_host_goes_the_upgrades_way(
        tmp_path: Path) -> None:
    """Not over the running build: the upgrade's checks come first, here the session's."""
    conn = host(REFUSED)
    report = install_on(Host(conn, "rec"), deployment(),
                        InstallOptions(gateway=installer(tmp_path)), lambda _: None)
    assert report.error is not None
    assert "not now: inside the regular trading session" in report.error
    assert "`invoke upgrade --force` switches builds" in report.error
    assert not changed_anything(conn)

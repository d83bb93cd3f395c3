"""`upgrade` and `install`'s way into it on a recorded host: what is sent before a refusal
(nothing that changes the host), and that a new build on a running host is not installed
over it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoke.runners import Result
from test_converge import INSTALLED, RecordedHost, deployment, with_sums
from test_install_instances import HEALTH, NAMED, pair, units_of

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.gateway_installer import GatewayInstaller
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import gateways, switch, upgrade
from ibkr_ops.remote.install import (
    InstallOptions,
    Progress,
    install_instances,
    install_on,
    instance_files,
    wait_healthy,
)
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

    inventory = RUNNING

    def run(self, command: str, **kwargs: Any) -> Result:
        if "FREE_KB" in command:
            self.commands.append(command)
            return self._ok(self.inventory)
        return super().run(command, **kwargs)


def host(answers: dict[str, str] | None = None) -> BuildsHost:
    return BuildsHost(INSTALLED, {DEFAULT.credentials: env_file_text(deployment()).encode()},
                      answers)


def installer(tmp_path: Path, version: str = "10.30.2") -> GatewayInstaller:
    path = tmp_path / "ibgateway-stable-standalone-linux-x64.sh"
    path.write_bytes(b"#!/bin/sh\n")
    return GatewayInstaller(path, "cd" * 32, version, "stable", "x86_64")


def changed_anything(conn: BuildsHost) -> bool:
    """An upload, or a command beyond the reads (the facts script and is-enabled only ask
    systemctl)."""
    acts = [c for c in conn.commands
            if "dpkg-query" not in c and not c.startswith("systemctl is-enabled")]
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


# A host of Gateway instances: paper and live share the one installation -----------------------
PAPER, LIVE = Layout("paper"), Layout("live")
ALLOWED = json.dumps({"allowed": True, "reason": "outside the trading session"})


class InstancesHost(BuildsHost):
    """A recorded host of instances paper and live, both running 10.30.1 with their files as
    rendered: it lists them, answers each one's health and pre-restart check, and holds
    each one's settings (and the copy the upgrade keeps of them)."""

    def __init__(self, refusing: Layout | None = None, live: str = "enabled") -> None:
        found = pair()
        facts = with_sums(INSTALLED.replace("MODE paper", ""), instance_files(found)) + \
            units_of(found) + NAMED
        files = {}
        for i in found:
            text = env_file_text(i.deployment).encode()
            files[i.layout.credentials] = text
            files[f"{i.layout.backup_dir}/gateway-10.30.1/credentials.env"] = text
        answers = {**HEALTH, **{f"{layout.pre_restart_tool} --instance {layout.instance} --json":
                                REFUSED[DEFAULT.pre_restart_tool] if layout == refusing
                                else ALLOWED for layout in (PAPER, LIVE)},
                   "systemctl is-enabled ibkr-gateway@live.service ibkr-gateway@paper.service":
                   f"{live}\nenabled\n"}
        super().__init__(facts, files, answers)

    def run(self, command: str, **kwargs: Any) -> Result:
        if command == gateways.LIST_COMMAND:
            self.commands.append(command)
            return self._ok(f"{PAPER.ops_json}\n{LIVE.ops_json}\n")
        return super().run(command, **kwargs)


class Readiness:
    """Stands for the readiness gate's read-only go-live checks (they need a Gateway's API
    to talk to; the guest tests run them): the health check itself still goes to the
    recorded host. Each call is marked in the host's commands; ``failing`` fails once."""

    def __init__(self, conn: RecordedHost, failing: Layout | None = None) -> None:
        self.conn, self.failing = conn, failing

    def __call__(self, host: Host, wait_s: float, progress: Progress,
                 layout: Layout = DEFAULT) -> str:
        self.conn.commands.append(f"READY {layout.instance}")
        if layout == self.failing:
            self.failing = None
            raise OpsError("healthy, but go-live checks failed: 10 (API) no answer")
        return wait_healthy(host, wait_s, progress, layout)


def switched(conn: RecordedHost) -> list[str]:
    """What the switch sent to the Gateways, in order: stops, starts and readiness gates."""
    return [c for c in conn.commands
            if c.startswith(("READY", "systemctl stop", "systemctl reset-failed"))
            or "systemctl stop ibkr-gateway" in c]


STOP_BOTH = "systemctl stop ibkr-gateway@live.service ibkr-gateway@paper.service"
START = "systemctl reset-failed ibkr-gateway@{0}.service 2>/dev/null; " \
        "systemctl start ibkr-gateway@{0}.service"


def test_an_instance_host_switches_every_instance_one_login_after_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = InstancesHost()
    monkeypatch.setattr(switch, "ready", Readiness(conn))
    report = upgrade.upgrade(Host(conn, "rec"), installer(tmp_path), upgrade.UpgradeOptions(),
                             lambda _: None)
    assert report.error is None, report.lines()
    assert report.instances == ["live", "paper"]
    sent = conn.commands
    checks = [c for c in sent if c.startswith(PAPER.pre_restart_tool)]
    assert checks == [f"{PAPER.pre_restart_tool} --instance live --json",
                      f"{PAPER.pre_restart_tool} --instance paper --json"]
    # Both settings kept before the installer runs, both checks asked before that.
    backups = [i for i, c in enumerate(sent) if "backup/gateway-10.30.1" in c]
    assert [("/live/" in sent[i], "/paper/" in sent[i]) for i in backups] == [
        (True, False), (False, True)]
    install = next(i for i, c in enumerate(sent) if "gateway-installer" in c
                   or ".ibkr-ops-installer.sh" in c)
    assert max(i for i, c in enumerate(sent) if c.startswith(PAPER.pre_restart_tool)) < install
    # One stop of both, the link moved, then each start waits for the one before to be ready.
    stop = next(c for c in sent if c.startswith(STOP_BOTH))
    assert 'ln -sfn "$t" /home/trader/Jts/ibgateway/1030.ibkr-ops-new' in stop
    assert stop.endswith(START.format("live"))
    assert [c.split(" &&")[0] if c.startswith(STOP_BOTH) else c for c in switched(conn)] == [
        STOP_BOTH, "READY live", START.format("paper"), "READY paper"]
    # Each instance's approval asked of its own notifier, just before its login.
    notices = [c for c in sent if c.startswith("/usr/local/bin/ibkr-notify")]
    assert [c.split()[1:3] for c in notices[:2]] == [["--instance", "live"],
                                                     ["--instance", "paper"]]
    assert "rec instance live: a new login" in notices[0]
    assert report.health.startswith("live: healthy") and "; paper: healthy" in report.health
    assert "instances (one installation, switched together): live, paper" in report.lines()


def test_one_instance_failing_rolls_every_instance_back_and_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = InstancesHost()
    monkeypatch.setattr(switch, "ready", Readiness(conn, failing=PAPER))
    report = upgrade.upgrade(Host(conn, "rec"), installer(tmp_path), upgrade.UpgradeOptions(),
                             lambda _: None)
    assert report.error is not None
    assert report.error.startswith("instance paper failed: healthy, but go-live checks failed")
    assert "rolled back every instance to IB Gateway 10.30.1, each healthy again" in report.error
    # Live came up on the new build, paper did not: both stop, the link goes back, and both
    # start again on 10.30.1, one after the other.
    stops = [c for c in conn.commands if c.startswith(STOP_BOTH)]
    assert [c.split("t=")[1].split(";")[0] for c in stops] == [
        f"{BUILDS}/10.30.2", f"{BUILDS}/10.30.1"]
    assert [c.split(" &&")[0] if c.startswith(STOP_BOTH) else c for c in switched(conn)] == [
        STOP_BOTH, "READY live", START.format("paper"), "READY paper",
        STOP_BOTH, "READY live", START.format("paper"), "READY paper"]
    # The settings come back from each instance's own copy; the failed build goes.
    assert any(c == f"rm -rf -- {BUILDS}/10.30.2" for c in conn.commands)
    failed = [c for c in conn.commands if c.startswith("/usr/local/bin/ibkr-notify")
              and "--level error" in c]
    assert [c.split()[2] for c in failed] == ["live", "paper"]
    assert all("failed on rec (instances live, paper): instance paper failed" in c
               for c in failed)


def test_one_instance_refusing_the_restart_refuses_the_upgrade(tmp_path: Path) -> None:
    conn = InstancesHost(refusing=PAPER)
    with pytest.raises(OpsError, match="instance paper refuses the restart that every instance "
                                       "of the host needs: rec: not now: inside the regular"):
        upgrade.upgrade(Host(conn, "rec"), installer(tmp_path), upgrade.UpgradeOptions(),
                        lambda _: None)
    assert not changed_anything(conn)


def test_rollback_on_request_switches_every_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = InstancesHost()
    conn.inventory = RUNNING.replace("LINK 1030 " + BUILDS + "/10.30.1",
                                     "LINK 1030 " + BUILDS + "/10.30.2") + \
        f"BUILD {BUILDS}/10.30.2 version=10.30.2\nRAN 1764200000 10.30.2\n"
    monkeypatch.setattr(switch, "ready", Readiness(conn))
    report = upgrade.rollback(Host(conn, "rec"), upgrade.UpgradeOptions(), lambda _: None)
    assert report.error is None, report.lines()
    stop = next(c for c in conn.commands if c.startswith(STOP_BOTH))
    assert f"t={BUILDS}/10.30.1;" in stop
    assert switched(conn)[1:] == ["READY live", START.format("paper"), "READY paper"]


def test_install_with_a_new_build_on_a_running_instance_host_goes_the_upgrades_way(
        tmp_path: Path) -> None:
    conn = InstancesHost(refusing=LIVE)
    report = install_instances(Host(conn, "rec"), pair(),
                               InstallOptions(gateway=installer(tmp_path)), lambda _: None)
    assert report.error is not None
    assert report.error.startswith("instance live refuses the restart")
    assert "`invoke upgrade --force` switches builds" in report.error
    assert not changed_anything(conn)


def test_an_instance_left_stopped_stays_stopped_and_the_others_switch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live instance go-live's rollback stopped and disabled is not started by an upgrade."""
    conn = InstancesHost(live="disabled")
    monkeypatch.setattr(switch, "ready", Readiness(conn))
    report = upgrade.upgrade(Host(conn, "rec"), installer(tmp_path), upgrade.UpgradeOptions(),
                             lambda _: None)
    assert report.error is None, report.lines()
    assert [c for c in conn.commands if c.startswith(PAPER.pre_restart_tool)] == [
        f"{PAPER.pre_restart_tool} --instance paper --json"]
    assert [c.split(" &&")[0] for c in switched(conn)] == [
        "systemctl stop ibkr-gateway@paper.service", "READY paper"]
    assert not any("ibkr-gateway@live.service" in c for c in conn.commands
                   if c.startswith(("systemctl start", "systemctl reset-failed")))
    assert any(line.startswith("left stopped and disabled: live") for line in report.lines())

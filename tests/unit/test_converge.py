"""Install's steps and the commands they send, against recorded host facts, without root.

``RecordedHost`` stands where the SSH connection would: it answers the facts script with a
recorded host's facts and the health check with a healthy report, and keeps every command
and upload, so the whole install runs here and its commands can be read back.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from invoke.runners import Result
from test_remote_plan import HEALTHY_HOST

from ibkr_ops.errors import OpsError
from ibkr_ops.instances import Instance
from ibkr_ops.layout import DEFAULT, ENABLED_UNITS
from ibkr_ops.remote import converge, golive, migrate, switch
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource
from ibkr_ops.remote.facts import parse_facts
from ibkr_ops.remote.install import InstallOptions, desired_files, install_on
from ibkr_ops.remote.plan import make_plan
from ibkr_ops.remote.primitives import STAGED, Host
from ibkr_ops.render import ManagedFile, env_file_text
from ibkr_ops.settings import Deployment, deployment_from_env

PASSWORD = "Rec-Pw-never-in-argv-9"
TMP = "/tmp/ibkr-ops.RECORDED"
INSTALLED = HEALTHY_HOST + "\nIBC 3.24.1 abc\nGATEWAY inst 123\nMODE paper"
HEALTHY = {"healthy": True, "accounts": ["DU1234567"], "elapsed_ms": 42, "checks": []}
IBC = IbcSource(version="3.24.1", data=b"PK ibc zip")


def deployment(**extra: str) -> Deployment:
    return deployment_from_env({"IBKR_USERNAME": "rec", "IBKR_PASSWORD": PASSWORD,
                                "IBKR_TRADING_MODE": "paper", "TWS_MAJOR_VRSN": "1030", **extra})


class _Upload(io.BytesIO):
    def __init__(self, store: dict[str, bytes], path: str) -> None:
        super().__init__()
        self.store, self.path = store, path

    def chmod(self, mode: int) -> None:
        assert mode == 0o600

    def close(self) -> None:
        self.store[self.path] = self.getvalue()
        super().close()


class RecordedHost:
    """A connection that answers as a recorded host did; everything sent is kept."""

    def __init__(self, facts: str, files: dict[str, bytes] | None = None,
                 answers: dict[str, str] | None = None) -> None:
        self.facts, self.files, self.answers = facts, files or {}, answers or {}
        self.commands: list[str] = []
        self.uploads: dict[str, bytes] = {}
        self.closed = False

    def run(self, command: str, **_: Any) -> Result:
        self.commands.append(command)
        if "base64 -w0" in command:
            path = command.rsplit(maxsplit=1)[-1]
            if path not in self.files:
                return Result(stdout="", stderr="", exited=1, command=command)
            return self._ok(base64.b64encode(self.files[path]).decode())
        answers = {"ARCH $(uname -m)": self.facts, "umask 077 && mktemp -d": TMP + "\n",
                   f"{DEFAULT.health_check_tool} --json": json.dumps(HEALTHY), **self.answers}
        return self._ok(next((out for key, out in answers.items() if key in command), ""))

    @staticmethod
    def _ok(stdout: str) -> Result:
        return Result(stdout=stdout, stderr="", exited=0)

    def sftp(self) -> RecordedHost:
        return self

    def open(self, path: str, mode: str) -> _Upload:
        assert mode == "wb" and path.startswith(TMP + "/")
        return _Upload(self.uploads, path)

    def putfo(self, handle: io.BufferedIOBase, path: str) -> None:
        self.uploads[path] = handle.read()

    def close(self) -> None:
        self.closed = True

    def sent(self) -> list[str]:
        """The commands after the facts were read, bookkeeping (upload dir) left out."""
        start = next(i for i, c in enumerate(self.commands) if "ARCH $(uname -m)" in c) + 1
        return [c for c in self.commands[start:] if not c.startswith(("umask 077", "rm -rf /tmp"))]


def with_sums(facts: str, files: list[ManagedFile]) -> str:
    return facts + "".join(f"\nSUM {f.path} {hashlib.sha256(f.content).hexdigest()}"
                           for f in files)


def fresh_host() -> str:
    """A bare Debian 12 server: no service user, no xvfb, nothing of ours."""
    lines = [ln for ln in HEALTHY_HOST.splitlines()
             if not ln.startswith(("UNIT ", "MAINPID", "USER "))]
    return "\n".join([*lines, "USER 0"]).replace("PKG xvfb 1", "PKG xvfb 0")


def test_a_fresh_host_gets_every_step_in_order(tmp_path: Path) -> None:
    d = deployment()
    installer = tmp_path / "ibgateway.sh"
    installer.write_bytes(b"#!/bin/sh\n")
    gateway = GatewayInstaller(installer, "ab" * 32, "10.30.1t", "stable", "x86_64")
    files = desired_files(d)
    steps = converge.steps(make_plan(parse_facts(fresh_host()), files, IBC, gateway), d)
    assert [s.what for s in steps] == [
        "apt-get install", "creating the service user", "creating the directories",
        "installing IBC", "installing the Gateway", *(f"writing {f.path}" for f in files),
        "systemctl daemon-reload", "enabling the units",
        "starting the timers and the login watch", "restarting ibkr-login-watch.service",
        "restarting xvfb.service", "starting the Gateway"]
    by_what = {s.what: s for s in steps}
    # What apt adds (dependencies too) is recorded for `uninstall --purge`.
    assert "--no-install-recommends xvfb; status=$?;" in by_what["apt-get install"].command
    assert by_what["creating the directories"].command == (
        "install -d -m 0755 /etc/ibkr /var/lib/ibkr-ops /usr/local/lib/ibkr-ops && "
        "install -d -m 0750 -o trader -g trader /var/log/ibkr /home/trader/Jts")
    assert by_what["enabling the units"].command == "systemctl enable --quiet " + " ".join(
        ENABLED_UNITS)
    assert steps[-1].command == ("systemctl reset-failed ibkr-gateway.service 2>/dev/null; "
                                 "systemctl start ibkr-gateway.service")
    ibc = by_what["installing IBC"]
    assert ibc.upload is not None and ibc.upload.data == IBC.data
    assert ibc.command.endswith("mv /opt/ibc.ibkr-ops-new /opt/ibc; rm -rf /opt/ibc.ibkr-ops-old")
    assert by_what["installing the Gateway"].upload.path == installer  # type: ignore[union-attr]
    # The build's provenance beside it, for status and upgrades.
    gateway = by_what["installing the Gateway"].command
    assert ("sha256=" + "ab" * 32 + " version=10.30.1t channel=stable arch=x86_64' > "
            "/home/trader/Jts/builds/10.30.1t/.ibkr-ops-provenance") in gateway
    # Into its own directory, beside any other build; IBC's path is a link to it.
    assert "-q -dir /home/trader/Jts/builds/10.30.1t" in gateway
    assert gateway.endswith("mv -T /home/trader/Jts/ibgateway/1030.ibkr-ops-new "
                            "/home/trader/Jts/ibgateway/1030")
    credentials = by_what[f"writing {DEFAULT.credentials}"]
    assert credentials.command.startswith(
        f"install -D -m 0600 -o root -g root {STAGED} /etc/ibkr/credentials.env.ibkr-ops-new "
        "&& mv -f /etc/ibkr/credentials.env.ibkr-ops-new /etc/ibkr/credentials.env")
    assert all(PASSWORD not in s.command for s in steps)  # secrets travel as uploads only


def test_install_runs_its_steps_on_the_connection_it_is_given() -> None:
    d = deployment(IBKR_RESTART_TIME="16:45")
    files = desired_files(d)
    unchanged = [f for f in files if f.path not in (DEFAULT.config_ini, DEFAULT.credentials,
                                                    DEFAULT.unit_path(DEFAULT.restart_timer))]
    conn = RecordedHost(with_sums(INSTALLED, unchanged))
    said: list[str] = []
    report = install_on(Host(conn, "rec"), d, InstallOptions(), said.append)
    assert report.error is None and report.health.startswith("healthy (accounts DU1234567")
    assert not conn.closed  # the caller's connection, for go-live's and migrate's next steps
    assert sum("ARCH $(uname -m)" in c for c in conn.commands) == 1
    written = [c for c in conn.sent() if c.startswith("STAGED=")]
    assert [re.search(r"&& mv -f \S+ (\S+)", c)[1] for c in written] == [  # type: ignore[index]
        DEFAULT.config_ini, DEFAULT.credentials, DEFAULT.unit_path(DEFAULT.restart_timer)]
    assert conn.sent()[len(written) + 1:-2] == [
        "systemctl daemon-reload",
        f"systemctl start {DEFAULT.restart_timer} {DEFAULT.health_timer} {DEFAULT.watch_unit}",
        "systemctl reset-failed ibkr-gateway.service 2>/dev/null; "
        "systemctl restart ibkr-gateway.service"]
    assert conn.sent()[-2] == f"{DEFAULT.health_check_tool} --json"
    assert conn.sent()[-1].startswith(f"{DEFAULT.notify_tool} --level info 'ibkr-ops: installed")
    assert said[-1] == "restarting the Gateway (changed: config.ini)"
    uploaded = {path.rsplit("/", 1)[-1]: data for path, data in conn.uploads.items()}
    assert PASSWORD.encode() in uploaded["etc_ibkr_credentials.env"]
    assert not any(PASSWORD in c for c in conn.commands)


def test_an_unchanged_host_is_only_checked() -> None:
    d = deployment()
    conn = RecordedHost(with_sums(INSTALLED, desired_files(d)))
    report = install_on(Host(conn, "rec"), d, InstallOptions(), lambda _: None)
    assert report.error is None and not report.changed
    assert conn.sent()[1:] == [
        f"systemctl start {DEFAULT.restart_timer} {DEFAULT.health_timer} {DEFAULT.watch_unit}",
        f"{DEFAULT.health_check_tool} --json"]  # no restart, no notification


def test_with_sudo_every_command_becomes_root_through_sudo() -> None:
    d = deployment()
    conn = RecordedHost(with_sums(INSTALLED.replace("PRIV root", "PRIV sudo"), desired_files(d)))
    assert install_on(Host(conn, "rec"), d, InstallOptions(), lambda _: None).error is None
    assert conn.sent() and all(c.startswith("sudo -n sh -c ") for c in conn.sent())


def test_a_live_file_on_a_paper_host_changes_nothing() -> None:
    live = deployment(IBKR_TRADING_MODE="live")
    conn = RecordedHost(INSTALLED)
    report = install_on(Host(conn, "rec"), live, InstallOptions(), lambda _: None)
    assert report.error is not None and "invoke go-live" in report.error
    assert conn.sent() == []


def test_a_dry_run_reads_and_writes_nothing_but_says_what_would_change() -> None:
    d = deployment(IBKR_RESTART_TIME="16:45")
    old = deployment()
    current = {f.path: f.content for f in desired_files(old)}
    conn = RecordedHost(with_sums(INSTALLED, desired_files(old)), current)
    report = install_on(Host(conn, "rec"), d, InstallOptions(dry_run=True), lambda _: None)
    assert report.error is None and report.health == "not checked (dry run)"
    assert all("base64 -w0" in c for c in conn.sent())  # only the diffs' reads
    assert ("/etc/ibkr/config.ini", "would change") in report.items
    assert any("+AutoRestartTime=04:46 PM" in line for line in report.diff)
    assert not any(PASSWORD in line for line in report.diff)


@pytest.mark.parametrize(("call", "command"), [
    (switch.stop_gateway,
     "systemctl disable --now --quiet ibkr-gateway.service ibkr-gateway-restart.timer "
     "ibkr-health-check.timer && { systemctl reset-failed ibkr-gateway.service 2>/dev/null "
     "|| true; }"),
    (lambda h: switch.start_gateway(h, restart=True),
     "systemctl reset-failed ibkr-gateway.service 2>/dev/null; systemctl enable --quiet "
     "ibkr-gateway.service ibkr-gateway-restart.timer ibkr-health-check.timer && systemctl "
     "restart ibkr-gateway.service && systemctl start ibkr-gateway.service "
     "ibkr-gateway-restart.timer ibkr-health-check.timer"),
    (lambda h: switch.backup(h, "paper"),
     "install -d -m 0700 -o root -g root /etc/ibkr/backup /etc/ibkr/backup/paper && install -m "
     "0600 -o root -g root /etc/ibkr/credentials.env /etc/ibkr/backup/paper/credentials.env && "
     "if [ -f /etc/ibkr/config.ini ]; then install -m 0600 -o root -g root /etc/ibkr/config.ini "
     "/etc/ibkr/backup/paper/config.ini; fi"),
])
def test_switch_steps_send_these_commands(call: Any, command: str) -> None:
    conn = RecordedHost(INSTALLED)
    call(Host(conn, "rec"))
    assert conn.commands == [command]


def test_a_dry_run_migration_reads_both_hosts_over_their_connections_and_changes_nothing() -> None:
    d = deployment()
    source = RecordedHost(with_sums(INSTALLED, desired_files(d)),
                          {DEFAULT.credentials: env_file_text(d).encode()})
    target = RecordedHost(fresh_host().replace("USER 0", "USER 1") + "\nIBC 3.24.1 abc\n"
                          "GATEWAY inst 123")
    report = migrate.migrate(Host(source, "old"), Host(target, "new"),
                             migrate.MigrateOptions(dry_run=True), lambda _h: lambda _m: None)
    assert report.settings["IBKR_PASSWORD"] == "********" and report.warnings == []
    assert report.target_report is not None and report.target_report.error is None
    assert ("/etc/ibkr/credentials.env", "would change") in report.target_report.items
    assert report.source_steps[0] == ("would read /etc/ibkr/credentials.env (settings below, "
                                      "secrets masked)")
    for conn in (source, target):  # read only, each over its one connection
        assert sum("ARCH $(uname -m)" in c for c in conn.commands) == 1
        assert all("base64 -w0" in c for c in conn.sent()) and not conn.closed
    assert not any(PASSWORD in c for c in source.commands + target.commands)


def test_go_live_refuses_a_live_host_and_rollback_a_paper_one_over_the_given_connection() -> None:
    live, paper = deployment(IBKR_TRADING_MODE="live"), deployment()
    on_live = RecordedHost(INSTALLED, {DEFAULT.credentials: env_file_text(live).encode()})
    with pytest.raises(OpsError, match="rec is already live"):
        golive.go_live(Host(on_live, "rec"), Instance("live.env", live, None),
                       golive.GoLiveOptions(), lambda _: None)
    on_paper = RecordedHost(INSTALLED, {DEFAULT.credentials: env_file_text(paper).encode()})
    with pytest.raises(OpsError, match=r"not live \(it runs paper\); nothing to roll back"):
        golive.rollback(Host(on_paper, "rec"), golive.GoLiveOptions(), lambda _: None)
    for conn in (on_live, on_paper):  # read the settings, nothing else
        assert [c.split()[-1] for c in conn.commands] == [DEFAULT.credentials]


def test_go_live_stops_before_any_change_when_the_host_refuses_a_restart() -> None:
    paper = deployment()
    refused = {DEFAULT.pre_restart_tool: json.dumps(
        {"allowed": False, "reason": "inside the regular trading session"})}
    conn = RecordedHost(INSTALLED, {DEFAULT.credentials: env_file_text(paper).encode()}, refused)
    with pytest.raises(OpsError, match="not now: inside the regular trading session"):
        golive.go_live(Host(conn, "rec"), Instance("live.env", deployment(IBKR_TRADING_MODE="live"),
                                                   None), golive.GoLiveOptions(), lambda _: None)
    assert conn.commands[-1] == f"{DEFAULT.pre_restart_tool} --json"
    assert not any("backup" in c or "systemctl" in c for c in conn.commands)

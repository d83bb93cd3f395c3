"""`invoke install` against real systemd guests over real SSH, with the simulated artifacts."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import socket
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit
from sim_support import real_ibc_zip

from ibkr_ops import demo, javaprops, sandbox
from ibkr_ops.errors import OpsError
from ibkr_ops.gateway_installer import GatewayInstaller, gateway_installer, parse_provenance
from ibkr_ops.host import envfile
from ibkr_ops.remote.artifacts import ibc_from_release
from ibkr_ops.remote.hosts import Target, connect, open_host, resolve
from ibkr_ops.remote.install import HostReport, InstallOptions, gather, install_host
from ibkr_ops.remote.primitives import Host
from ibkr_ops.settings import Deployment, load_deployment
from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.tasks.hosts import install as install_task
from ibkr_ops.tasks.hosts import logs as logs_task
from ibkr_ops.tasks.hosts import run_install
from ibkr_ops.tasks.hosts import status as status_task

PASSWORD = "It-Pw-never-shown-7f3"
TOKEN = "it-token-never-shown"


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("creds") / "credentials.env"
    path.write_text(
        "IBKR_USERNAME=it_user\n"
        f"IBKR_PASSWORD={PASSWORD}\n"
        "IBKR_TRADING_MODE=paper\n"
        "TWS_MAJOR_VRSN=1030\n"
        f"DISCORD_WEBHOOK_URL=http://127.0.0.1:{demo.DISCORD_PORT}/api/webhooks/1/{TOKEN}\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def options() -> InstallOptions:
    return demo.install_options(real_ibc_zip(), wait_s=120)


def run(spec: str, d: Deployment, options: InstallOptions) -> HostReport:
    return install_host(spec, d, options, lambda message: print(f"[{spec}] {message}"))


def shell(guest: sandbox.Guest, command: str) -> str:
    conn = open_host(guest.name, ssh_configs=(guest.ssh_config,))
    try:
        return str(conn.run(command, hide=True, warn=True, in_stream=False).stdout)
    finally:
        conn.close()


def main_pid(guest: sandbox.Guest, unit: str = "ibkr-gateway.service") -> int:
    return int(shell(guest, f"systemctl show -p MainPID --value {unit}").strip())


def statuses(report: HostReport) -> dict[str, str]:
    return dict(report.items)


@pytest.fixture(scope="module")
def installed(sandbox_guests: Callable[[int], list[sandbox.Guest]], credentials: Path,
              options: InstallOptions) -> sandbox.Guest:
    guest = sandbox_guests(1)[0]
    report = run(guest.name, load_deployment(credentials), options)
    assert report.error is None, report.error
    assert report.health.startswith("healthy")
    return guest


def test_fresh_install_is_healthy_and_reports_changes(installed: sandbox.Guest) -> None:
    out = shell(installed, "/usr/local/bin/ibkr-health-check; systemctl is-enabled "
                           "ibkr-gateway.service xvfb.service ibkr-gateway-restart.timer "
                           "ibkr-health-check.timer")
    assert "\nhealthy (" in out and out.count("enabled") == 4
    modes = shell(installed, "stat -c '%a %U %n' /etc/ibkr/config.ini /etc/ibkr/credentials.env")
    assert "600 trader /etc/ibkr/config.ini" in modes
    assert "600 root /etc/ibkr/credentials.env" in modes


def test_second_run_changes_and_restarts_nothing(installed: sandbox.Guest, credentials: Path,
                                                 options: InstallOptions) -> None:
    before = main_pid(installed)
    report = run(installed.name, load_deployment(credentials), options)
    assert report.error is None
    assert set(statuses(report).values()) == {"unchanged"}, report.items
    assert main_pid(installed) == before


def test_changed_setting_rewrites_config_and_restarts_only_the_gateway(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions) -> None:
    gateway, display = main_pid(installed), main_pid(installed, "xvfb.service")
    d = load_deployment(credentials, {"IBKR_READ_ONLY_API": "no"})
    report = run(installed.name, d, options)
    changed = {name for name, status in report.items if status == "changed"}
    assert report.error is None, report.error
    assert {"/etc/ibkr/config.ini", "/etc/ibkr/credentials.env"} <= changed
    assert not any(name.startswith("/etc/systemd/") for name in changed)
    assert "ReadOnlyApi=no" in shell(installed, "cat /etc/ibkr/config.ini")
    assert main_pid(installed) != gateway
    assert main_pid(installed, "xvfb.service") == display
    # back to the module's settings for the other tests
    assert run(installed.name, load_deployment(credentials), options).error is None


def test_dry_run_touches_nothing_and_masks_secrets(installed: sandbox.Guest, credentials: Path,
                                                   options: InstallOptions,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    checksums = shell(installed, "sha256sum /etc/ibkr/* /etc/systemd/system/ibkr-*")
    pid = main_pid(installed)
    d = load_deployment(credentials, {"IBKR_API_PORT": "4102", "IBKR_TRADING_MODE": "paper"})
    report = run(installed.name, d, dataclasses.replace(options, dry_run=True))
    assert report.error is None
    assert statuses(report)["/etc/ibkr/config.ini"] == "would change"
    diff = "".join(report.diff)
    assert "-OverrideTwsApiPort=4002" in diff and "+OverrideTwsApiPort=4102" in diff
    assert PASSWORD not in diff and TOKEN not in diff and "********" in diff
    assert shell(installed, "sha256sum /etc/ibkr/* /etc/systemd/system/ibkr-*") == checksums
    assert main_pid(installed) == pid


def test_dry_run_of_a_rotation_masks_the_hosts_secrets_and_the_new_ones(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions,
        tmp_path: Path) -> None:
    """A new password (quotes, backslash, non-ASCII) and webhook: the diff shows the host's
    current files and the planned ones, and no secret of either in any spelling."""
    new_password, new_token = 'Nëw "pw" \\ $x', "rotated-token-never-shown"
    rotated = tmp_path / "rotated.env"
    rotated.write_text(credentials.read_text().replace(f"IBKR_PASSWORD={PASSWORD}", (
        f"IBKR_PASSWORD={envfile.quote(new_password)}")).replace(TOKEN, new_token))
    os.chmod(rotated, 0o600)
    report = run(installed.name, load_deployment(rotated), dataclasses.replace(options,
                                                                               dry_run=True))
    assert report.error is None
    text = "".join(report.diff)
    assert "+IBKR_PASSWORD=******** (changed)" in text and "-IBKR_PASSWORD=********" in text
    assert "+IbPassword=******** (changed)" in text
    for secret in (PASSWORD, TOKEN, new_password, new_token, envfile.quote(new_password),
                   javaprops.escape(new_password)):
        assert secret not in text


def test_password_and_token_appear_in_no_process_journal_or_log(installed: sandbox.Guest) -> None:
    # Everything a local user or an operator could read after an install.
    seen = shell(installed, "ps -eo args; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; "
                            "journalctl --no-pager -o cat; cat /var/log/ibkr/* 2>/dev/null; "
                            "systemctl show ibkr-gateway.service")
    assert "ibcstart.sh" in seen  # the listing really covers the Gateway
    assert PASSWORD not in seen and TOKEN not in seen


def test_two_guests_in_parallel(sandbox_guests: Callable[[int], list[sandbox.Guest]],
                                credentials: Path, options: InstallOptions,
                                capsys: pytest.CaptureFixture[str]) -> None:
    guests = sandbox_guests(2)
    reports = run_install([g.name for g in guests], load_deployment(credentials), options)
    assert [r.error for r in reports] == [None, None]
    assert all(r.health.startswith("healthy") for r in reports)
    out = capsys.readouterr().out
    assert all(f"== {g.name}" in out for g in guests)


def test_one_failing_host_does_not_stop_the_others(installed: sandbox.Guest, credentials: Path,
                                                   options: InstallOptions,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit) as info:
        install_task(Context(), host=[installed.name, "root@127.0.0.1:1"],
                     credentials=[str(credentials)], wait=60.0)
    assert info.value.code == 1
    assert "failed on 1 of 2 host(s): root@127.0.0.1:1" in str(info.value.message)
    out = capsys.readouterr().out
    assert "root@127.0.0.1:1" in out and "cannot connect" in out
    assert re.search(rf"== {installed.name}\n(?:.*\n)*?.*health: healthy", out)


def test_unknown_host_key_is_refused_then_trusted_on_request(
        installed: sandbox.Guest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    known = resolve(installed.name, (installed.ssh_config,))
    stranger = Target(spec=installed.host, hostname=installed.host, port=22, user="root",
                      known_hosts=(tmp_path / "empty",), identity_files=known.identity_files)
    with pytest.raises(OpsError, match=r"unknown host key ssh-ed25519 SHA256:\S+; check it"):
        connect(stranger)
    conn = connect(stranger, trust_new_host=True)
    conn.close()
    recorded = (tmp_path / "ibkr-ops" / "known_hosts").read_text()
    assert recorded.startswith(f"{installed.host} ssh-ed25519 ")
    again = dataclasses.replace(stranger, known_hosts=(tmp_path / "ibkr-ops" / "known_hosts",))
    connect(again).close()


def test_changed_host_key_is_always_refused(installed: sandbox.Guest, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                   check=True)
    forged = tmp_path / "known_hosts"
    key_type, key_data = (tmp_path / "k.pub").read_text().split()[:2]
    forged.write_text(f"{installed.host} {key_type} {key_data}\n")
    known = resolve(installed.name, (installed.ssh_config,))
    target = Target(spec=installed.host, hostname=installed.host, port=22, user="root",
                    known_hosts=(forged,), identity_files=known.identity_files)
    with pytest.raises(OpsError, match="HOST KEY CHANGED"):
        connect(target, trust_new_host=True)


def test_ssh_cut_mid_apply_then_rerun_converges(installed: sandbox.Guest, credentials: Path,
                                                options: InstallOptions,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    d = load_deployment(credentials, {"IBKR_RESTART_TIME": "16:45"})
    real_upload = Host.upload
    writes: list[str] = []

    def cut_after_first(self: Host, content: bytes, name: str) -> str:
        if writes:
            self.conn.client.get_transport().close()  # the network goes away here
        writes.append(name)
        return real_upload(self, content, name)

    monkeypatch.setattr(Host, "upload", cut_after_first)
    report = run(installed.name, d, options)
    assert report.error is not None and len(writes) == 2
    monkeypatch.undo()
    # No half-written file: every managed file is whole (old or new), nothing left staged.
    assert shell(installed, "ls /etc/ibkr /etc/systemd/system | grep -c ibkr-ops-new") == "0\n"
    report = run(installed.name, d, options)
    assert report.error is None and report.health.startswith("healthy")
    assert "OnCalendar=Sun,Mon..Fri 16:45 America/New_York" in shell(
        installed, "cat /etc/systemd/system/ibkr-gateway-restart.timer")
    again = run(installed.name, d, options)
    assert set(statuses(again).values()) == {"unchanged"}
    assert run(installed.name, load_deployment(credentials), options).error is None


def test_fresh_host_without_installer_is_told_what_to_give(own_guest: sandbox.Guest,
                                                          credentials: Path) -> None:
    guest = own_guest
    report = run(guest.name, load_deployment(credentials),
                 InstallOptions(ssh_configs=(guest.ssh_config,)))
    assert report.error is not None and "--gateway-installer" in report.error
    assert shell(guest, "test -e /etc/ibkr/config.ini && echo present || echo absent") == "absent\n"


GATEWAY_DIR = f"/home/trader/Jts/ibgateway/{sim_artifacts.TWS_MAJOR_VRSN}"
# Everything of the Gateway and the settings a refused install could have touched.
_BUILD_STATE = (f"sha256sum /etc/ibkr/* {GATEWAY_DIR}/.ibkr-ops-* {GATEWAY_DIR}/jars/*; "
                f"ls -la --time-style=full-iso {GATEWAY_DIR} {GATEWAY_DIR}/jars")
# A fresh guest's whole tree where an install writes (systemd's own state left out).
_HOST_TREE = ("find /etc /opt /home /usr/local /var/lib /tmp -xdev -path /var/lib/systemd -prune "
              "-o -print | sort")


@pytest.fixture(scope="module")
def arm_installer(tmp_path_factory: pytest.TempPathFactory) -> GatewayInstaller:
    """The simulated Gateway 10.30.1 as IBKR's linux-arm installer."""
    release = sim_artifacts.Release(arch="arm")
    path = tmp_path_factory.mktemp("arm") / release.installer_name
    path.write_bytes(sim_artifacts.build_installer(release))
    return gateway_installer(path)


def test_installed_build_records_its_provenance(installed: sandbox.Guest, credentials: Path,
                                                options: InstallOptions) -> None:
    """Beside the Gateway, and back in the host's facts (what `status` will show)."""
    assert options.gateway is not None
    recorded = parse_provenance(shell(installed, f"cat {GATEWAY_DIR}/.ibkr-ops-provenance"))
    assert recorded == {"sha256": options.gateway.sha256, "version": "10.30.1",
                        "channel": "stable", "arch": "x86_64"}
    conn = open_host(installed.name, ssh_configs=(installed.ssh_config,))
    try:
        facts = gather(Host(conn, installed.name), load_deployment(credentials), [])
    finally:
        conn.close()
    assert facts.gateway_build == recorded


@pytest.mark.parametrize("refused", ["pin mismatch", "arm installer on x86_64"])
def test_refused_installer_leaves_the_running_build_untouched(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions,
        arm_installer: GatewayInstaller, refused: str) -> None:
    before, pid = shell(installed, _BUILD_STATE), main_pid(installed)
    if refused == "pin mismatch":
        d, given = load_deployment(credentials, {"IBKR_GATEWAY_SHA256": "0" * 64}), options
        expected = "but IBKR_GATEWAY_SHA256 pins " + "0" * 64
    else:
        d, given = load_deployment(credentials), dataclasses.replace(options,
                                                                     gateway=arm_installer)
        expected = "is IB Gateway for aarch64, but the host is x86_64"
    report = run(installed.name, d, given)
    assert report.error is not None and expected in report.error and "\n" not in report.error
    assert shell(installed, _BUILD_STATE) == before
    assert main_pid(installed) == pid
    assert "healthy (" in shell(installed, "/usr/local/bin/ibkr-health-check")


def test_fresh_host_refuses_the_other_arch_and_keeps_nothing(
        own_guest: sandbox.Guest, credentials: Path, options: InstallOptions,
        arm_installer: GatewayInstaller) -> None:
    """The arch is known only from the host's facts: read, then nothing written."""
    before = shell(own_guest, _HOST_TREE)
    report = run(own_guest.name, load_deployment(credentials), dataclasses.replace(
        options, gateway=arm_installer, ssh_configs=(own_guest.ssh_config,)))
    assert report.error is not None and "but the host is x86_64" in report.error
    assert shell(own_guest, _HOST_TREE) == before


def test_unreachable_host_is_one_clear_line(credentials: Path) -> None:
    report = run("root@127.0.0.1:1", load_deployment(credentials), InstallOptions())
    assert report.error is not None and "cannot connect" in report.error
    assert "\n" not in report.error



def _api_answers_from_outside(guest: sandbox.Guest) -> bool:
    try:
        with socket.create_connection((guest.host, 4002), timeout=3) as sock:
            sock.sendall(b"API\0" + struct.pack(">I", 9) + b"v157..176")
            return len(sock.recv(64)) > 0  # an untrusted client is closed without a reply
    except OSError:
        return False


def test_trusted_ips_open_the_api_to_listed_addresses_only(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions) -> None:
    assert not _api_answers_from_outside(installed)  # default: loopback only
    operator = installed.host.rsplit(".", 1)[0] + ".1"  # this machine's end of the guest's link
    d = load_deployment(credentials, {"IBKR_TRUSTED_IPS": f"127.0.0.1,{operator}"})
    report = run(installed.name, d, options)
    assert report.error is None and report.health.startswith("healthy")
    assert f"TrustedIPs=127.0.0.1,{operator}" in shell(installed, "cat ~trader/Jts/jts.ini")
    assert _api_answers_from_outside(installed)
    report = run(installed.name, load_deployment(credentials), options)
    assert report.error is None
    assert not _api_answers_from_outside(installed)


def test_wrong_user_is_one_clear_line(installed: sandbox.Guest, credentials: Path) -> None:
    report = run(f"nobody@{installed.name}", load_deployment(credentials),
                 InstallOptions(ssh_configs=(installed.ssh_config,)))
    assert report.error is not None and "SSH login refused for user 'nobody'" in report.error


def test_user_without_sudo_is_refused_before_any_change(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions) -> None:
    key = Path(resolve(installed.name, (installed.ssh_config,)).identity_files[0] + ".pub").read_text()
    shell(installed, "id plain >/dev/null 2>&1 || useradd --create-home plain; "
                     "install -d -m 700 -o plain -g plain ~plain/.ssh; "
                     f"printf '%s' {shlex.quote(key)} > ~plain/.ssh/authorized_keys; "
                     "chown plain: ~plain/.ssh/authorized_keys")
    before = shell(installed, "sha256sum /etc/ibkr/*")
    report = run(f"plain@{installed.name}", load_deployment(credentials), options)
    assert report.error is not None
    assert "neither root nor allowed passwordless sudo" in report.error
    assert shell(installed, "sha256sum /etc/ibkr/*") == before


def test_ibc_download_without_internet_fails_clearly_and_keeps_ibc(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions) -> None:
    before = shell(installed, "cat /opt/ibc/.ibkr-ops-source")
    offline = dataclasses.replace(options, ibc=ibc_from_release("3.24.2"))
    report = run(installed.name, load_deployment(credentials), offline)
    assert report.error is not None and "cannot download IBC 3.24.2" in report.error
    assert "--ibc-zip" in report.error
    assert shell(installed, "cat /opt/ibc/.ibkr-ops-source") == before
    assert "healthy (" in shell(installed, "/usr/local/bin/ibkr-health-check")


def test_status_and_logs_tasks(installed: sandbox.Guest, capfd: pytest.CaptureFixture[str]) -> None:
    status_task(Context(), host=installed.name)
    logs_task(Context(), host=installed.name, lines=50)
    out = capfd.readouterr().out
    assert "ibkr-gateway.service" in out and "ibkr-gateway-restart.timer" in out
    assert "Login has completed" in out
    assert PASSWORD not in out


def test_paper_host_is_not_switched_to_live_by_install(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions) -> None:
    before = shell(installed, "sha256sum /etc/ibkr/*")
    live = load_deployment(credentials, {"IBKR_TRADING_MODE": "live"})
    report = run(installed.name, live, options)
    assert report.error is not None and "invoke go-live" in report.error
    assert shell(installed, "sha256sum /etc/ibkr/*") == before


def test_disk_full_is_one_line_and_leaves_the_old_files(
        installed: sandbox.Guest, credentials: Path, options: InstallOptions) -> None:
    # /etc/ibkr on a full file system: the copy to a sibling name fails, nothing is renamed.
    shell(installed, "mkdir -p /run/ibkr-full && cp -a /etc/ibkr/. /run/ibkr-full/ && "
                     "mount -t tmpfs -o size=64k tmpfs /etc/ibkr && cp -a /run/ibkr-full/. "
                     "/etc/ibkr/ && dd if=/dev/zero of=/etc/ibkr/.filler bs=4k 2>/dev/null; true")
    try:
        before = shell(installed, "sha256sum /etc/ibkr/config.ini /etc/ibkr/credentials.env")
        d = load_deployment(credentials, {"IBKR_RESTART_TIME": "16:50"})
        report = run(installed.name, d, options)
        assert report.error is not None and "disk is full" in report.error
        assert "\n" not in report.error
        assert shell(installed, "sha256sum /etc/ibkr/config.ini /etc/ibkr/credentials.env") == before
        assert shell(installed, "ls -a /etc/ibkr | grep -c ibkr-ops-new") == "0\n"
    finally:
        shell(installed, "umount /etc/ibkr")
    assert run(installed.name, load_deployment(credentials), options).error is None

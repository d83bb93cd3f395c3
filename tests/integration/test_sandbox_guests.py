"""Sandbox guests are real hosts: SSH with Fabric, units, reboots, power-off, clean removal."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import fabric  # type: ignore[import-untyped]
import paramiko
import pytest

from ibkr_ops import sandbox
from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox import base, cgroup, network, ops, records
from ibkr_ops.sandbox.connect import connection
from ibkr_ops.sandbox.paths import CACHE_ENV, RESOURCE_PREFIX, Layout, layout

pytestmark = pytest.mark.root


def sandbox_resources() -> set[str]:
    """Every sandbox namespace, cgroup and overlay mount on the machine, of any state dir."""
    found = {str(p) for p in network.NETNS_DIR.glob(f"{RESOURCE_PREFIX}*")}
    for root in cgroup.hierarchies(Path("/proc/self/mounts").read_text()):
        found |= {str(p) for p in root.glob(f"{RESOURCE_PREFIX}*")}
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return found | {line.split()[1] for line in mounts if "/guests/" in line}


def assert_no_trace(where: Layout, name: str, slot: int) -> None:
    """Nothing of guest `name` is left: files, mounts, namespace, cgroups, processes."""
    assert not where.guest(name).dir.exists()
    assert str(where.guest(name).root) not in Path("/proc/mounts").read_text()
    assert not network.exists(slot)
    assert not any(path.exists() for path in cgroup.paths(slot))
    marker = str(where.guest(name).dir).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert marker not in cmdline.read_bytes()
        except FileNotFoundError:
            continue


def wait_until(what: str, probe: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def test_fabric_connects_and_runs_a_unit(sandbox_guest: sandbox.Guest) -> None:
    """A transient unit runs under the guest's own systemd, reached over SSH with Fabric."""
    with connection(sandbox_guest.name) as conn:
        conn.run("systemd-run --unit=it-probe --wait -p RemainAfterExit=no "
                 "/bin/sh -c 'hostname > /run/it-probe'", hide=True)
        assert conn.run("cat /run/it-probe", hide=True).stdout.strip() == sandbox_guest.name
        assert conn.run("cat /proc/1/comm", hide=True).stdout.strip() == "systemd"


def test_guest_has_no_route_off_its_link(sandbox_guest: sandbox.Guest) -> None:
    """Like a locked-down server: no default route, so nothing beyond the host is reachable."""
    with connection(sandbox_guest.name) as conn:
        assert conn.run("ip route show default", hide=True).stdout.strip() == ""


def test_unknown_host_key_is_refused(sandbox_guest: sandbox.Guest, tmp_path: Path) -> None:
    """A Connection checks the guest's key against the sandbox's known_hosts: another key fails."""
    other = tmp_path / "known_hosts"
    fake = paramiko.RSAKey.generate(1024)
    other.write_text(f"{sandbox_guest.name},{sandbox_guest.host} ssh-rsa {fake.get_base64()}\n")
    config = fabric.Config(runtime_ssh_path=sandbox_guest.ssh_config,
                           overrides={"run": {"in_stream": False}})
    conn = fabric.Connection(sandbox_guest.name, config=config)
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn.client.load_host_keys(str(other))
    with pytest.raises(paramiko.SSHException):
        conn.run("true", hide=True)


def test_up_again_changes_nothing(
    sandbox_guest: sandbox.Guest, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-running `up` with the guest up leaves the same boot running and says so."""
    files = layout().guest(sandbox_guest.name)
    before = files.nspawn_pid.read_text()
    sandbox.up([sandbox_guest.name])
    assert "nothing changed" in capsys.readouterr().out
    assert files.nspawn_pid.read_text() == before


def test_two_guests_have_separate_addresses(
    sandbox_guests: Callable[[int], list[sandbox.Guest]],
) -> None:
    """Two guests at once: distinct addresses, each answers as itself, neither sees the other."""
    first, second = sandbox_guests(2)
    assert first.host != second.host
    for guest in (first, second):
        with connection(guest.name) as conn:
            assert conn.run("hostname", hide=True).stdout.strip() == guest.name
    with connection(first.name) as conn:
        assert not conn.run(f"nc -z -w 2 {second.host} 22", hide=True, warn=True).ok


def test_reboot_restarts_enabled_units_only(own_guest: sandbox.Guest) -> None:
    """After `systemctl reboot` in the guest, an enabled unit runs again, a disabled one not."""
    unit = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"
    with connection(own_guest.name) as conn:
        for name in ("it-enabled", "it-disabled"):
            conn.run(f"printf '{unit}' > /etc/systemd/system/{name}.service", hide=True)
        conn.run("systemctl daemon-reload && systemctl enable --now it-enabled "
                 "&& systemctl start it-disabled && touch /run/it-before-reboot", hide=True)
    sandbox.reboot(own_guest.name)
    with connection(own_guest.name) as conn:
        assert not conn.run("test -e /run/it-before-reboot", hide=True, warn=True).ok
        assert conn.run("systemctl is-active it-enabled", hide=True, warn=True).ok
        down = conn.run("systemctl is-active it-disabled", hide=True, warn=True)
        assert down.stdout.strip() == "inactive"


def test_poweroff_then_down_leaves_nothing(own_guest: sandbox.Guest) -> None:
    """`systemctl poweroff` stops the guest for good; `down` then removes every trace."""
    where = layout()
    record = records.load(where, own_guest.name)
    assert record is not None
    with connection(own_guest.name) as conn:
        conn.run("systemctl poweroff", hide=True, warn=True)
    wait_until("the guest to stop", lambda: ops.state_of(where, own_guest.name) == "stopped")
    assert sandbox.down(own_guest.name) == [own_guest.name]
    assert_no_trace(where, own_guest.name, record.index)
    assert own_guest.name not in where.ssh_config.read_text()


def test_corrupt_base_tree_is_reported_and_cleaned_up(
    sandbox_layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base tree without an init fails to boot: `up` says so and leaves nothing behind."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    broken = layout()
    for release in ("etc/os-release", "usr/lib/os-release"):
        (broken.base / release).parent.mkdir(parents=True, exist_ok=True)
        (broken.base / release).write_text("ID=debian\n")
    base.write_stamp(broken)
    before = sandbox_resources()
    with pytest.raises(OpsError, match=r"failed to start and were removed: corrupt: .*execv"):
        sandbox.up(["corrupt"])
    assert not broken.guest("corrupt").dir.exists()
    assert sandbox_resources() == before
    assert b"/guests/corrupt/" not in b"".join(
        p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists()
    )
    assert "corrupt" not in broken.known_hosts.read_text()

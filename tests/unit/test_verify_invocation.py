"""`ibkr_ops.verify`: the ssh_config it writes (read back by OpenSSH itself) and the pytest
command it builds for a host."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ibkr_ops import verify
from ibkr_ops.remote.hosts import Target


def target(tmp_path: Path, user: str | None = "root") -> Target:
    known = tmp_path / "known_hosts"
    known.write_text("")
    return Target(spec="gw1", hostname="192.0.2.10", port=2222, user=user,
                  known_hosts=(known, tmp_path / "absent_known_hosts"),
                  identity_files=(str(tmp_path / "id key"),))


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH client not installed")
def test_openssh_reads_the_config_as_strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ssh -G` (OpenSSH's own parser) sees the address, key files and strict checking."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config of the developer's
    config = tmp_path / "ssh_config"
    config.write_text(verify.ssh_config_text(target(tmp_path), "gateway-host", tmp_path))
    shown = subprocess.run(["ssh", "-G", "-F", str(config), "gateway-host"], capture_output=True,
                           text=True, check=True).stdout.lower().splitlines()
    assert "hostname 192.0.2.10" in shown
    assert "port 2222" in shown
    assert "stricthostkeychecking true" in shown or "stricthostkeychecking yes" in shown
    assert f"userknownhostsfile {tmp_path / 'known_hosts'}".lower() in shown
    assert f"identityfile {tmp_path / 'id key'}".lower() in shown
    assert "batchmode yes" in shown


def test_missing_known_hosts_files_are_left_out(tmp_path: Path) -> None:
    """Only existing known_hosts files are listed; none at all means nothing is trusted."""
    text = verify.ssh_config_text(target(tmp_path), "gateway-host", tmp_path)
    assert "absent_known_hosts" not in text
    lonely = Target("gw", "192.0.2.1", 22, None, (tmp_path / "nope",), ())
    assert "UserKnownHostsFile /dev/null" in verify.ssh_config_text(lonely, "gw", tmp_path)
    assert "StrictHostKeyChecking yes" in verify.ssh_config_text(lonely, "gw", tmp_path)


def test_invocation_for_a_non_root_user_adds_sudo(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A login that is not root runs the checks through sudo; flags are passed on."""
    monkeypatch.setenv("HOME", str(tmp_path))
    call = verify.invocation("deploy@192.0.2.10:2222", tmp_path / "ssh_config", destructive=True,
                             junitxml="out.xml")
    assert "--sudo" in call.argv and "--destructive" in call.argv
    assert "--hosts=ssh://gateway-host" in call.argv
    assert f"--ssh-config={tmp_path / 'ssh_config'}" in call.argv
    assert "--junitxml=out.xml" in call.argv
    assert "HostName 192.0.2.10\n    Port 2222\n    User deploy\n" in call.ssh_config


def test_invocation_as_root_has_no_sudo_and_no_destructive(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    call = verify.invocation("root@192.0.2.10", tmp_path / "ssh_config")
    assert "--sudo" not in call.argv and "--destructive" not in call.argv

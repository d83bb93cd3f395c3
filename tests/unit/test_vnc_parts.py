"""`invoke vnc`'s parts that need no host: the password, the server's command lines."""

from __future__ import annotations

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.host import vnc as host_vnc
from ibkr_ops.remote import vnc


def test_one_time_passwords_are_fresh_and_of_vnc_length() -> None:
    seen = {vnc.one_time_password() for _ in range(200)}
    assert len(seen) == 200
    assert all(len(p) == 8 and p.isalnum() and p.isascii() for p in seen)
    assert all(host_vnc.check_password(p + "\n") == p for p in seen)


@pytest.mark.parametrize("line", ["", "short\n", "toolongpassword\n", "has spc1\n", "p@ssw0rd\n"])
def test_the_server_takes_only_a_generated_password(line: str) -> None:
    with pytest.raises(UsageError, match="8-character one-time password"):
        host_vnc.check_password(line)


def test_x11vnc_listens_on_loopback_and_is_view_only_unless_interactive() -> None:
    viewing = host_vnc.x11vnc_argv(":1", interactive=False)
    clicking = host_vnc.x11vnc_argv(":1", interactive=True)
    for argv in (viewing, clicking):
        assert {"-localhost", "-noipv6", "-nocmds", "-noremote", "-norc"} <= set(argv)
        assert argv[argv.index("-passwdfile") + 1] == "/dev/stdin"
        assert "-passwd" not in argv and "-rfbauth" not in argv
    assert "-viewonly" in viewing and "-viewonly" not in clicking


def test_the_unit_is_bounded_sandboxed_and_carries_no_secret() -> None:
    command = vnc.server_command("ibkr-vnc-0a1b2c3d", interactive=True, max_s=630)
    assert command.startswith("systemd-run --quiet --collect --pipe --unit=ibkr-vnc-0a1b2c3d ")
    assert "--property=RuntimeMaxSec=630" in command
    assert "--property=DynamicUser=yes" in command
    assert "'--property=RestrictAddressFamilies=AF_UNIX AF_INET'" in command
    assert command.endswith("/usr/local/bin/ibkr-vnc-server --interactive")
    assert vnc.server_command("u", interactive=False, max_s=60).endswith("ibkr-vnc-server")


def test_the_port_is_read_from_x11vnc_once_it_says_it() -> None:
    assert vnc.parse_port("The VNC desktop is:      localhost:0\n") is None
    assert vnc.parse_port("The VNC desktop is:      localhost:1\nPORT=5901\n") == 5901

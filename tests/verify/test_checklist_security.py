"""Checklist item 11: secret files are private, and the password has leaked nowhere."""

from __future__ import annotations

import pytest
from checklist import Expect, run_hostside
from testinfra.host import Host


@pytest.mark.checklist(11)
@pytest.mark.parametrize(("path", "owner"), [("/etc/ibkr/credentials.env", "root"),
                                             ("/etc/ibkr/config.ini", "service user")])
def test_secret_file_private(host: Host, expect: Expect, path: str, owner: str) -> None:
    """credentials.env is 0600 root; IBC's config.ini is 0600 and owned by the service user."""
    user = "root" if owner == "root" else expect.service_user
    f = host.file(path)
    assert f.is_file, f"{path} is missing"
    assert f.mode == 0o600, f"{path} has mode {f.mode:o}, expected 600"
    assert (f.user, f.group) == (user, user), f"{path} is owned by {f.user}:{f.group}, expected {user}:{user}"


@pytest.mark.checklist(11)
def test_password_leaks_nowhere(host: Host) -> None:
    """The password is in no process's arguments or environment, the journal or /var/log/ibkr."""
    scan = run_hostside(host, "secret_scan.py")
    assert scan["password_set"], "IBKR_PASSWORD is empty in the host's credentials.env"
    assert scan["journal_status"] == 0, "journalctl failed on the host: the journal was not searched"
    leaks = {where: places for where, places in scan["found"].items() if places}
    assert not leaks, f"the password appears in: {leaks}"

"""Checklist item 11: secret files are private, and the password has leaked nowhere."""

from __future__ import annotations

import shlex

from ibkr_ops.checks import parse
from ibkr_ops.checks.expect import Expect
from ibkr_ops.checks.result import Failed, Passed, check, require
from ibkr_ops.checks.runner import Runner, run_hostside
from ibkr_ops.layout import DEFAULT, Layout


def secret_files(layout: Layout = DEFAULT) -> tuple[tuple[str, str], ...]:
    """Each secret file of a Gateway and who must own it: root, or the service user (IBC
    reads config.ini)."""
    return ((layout.credentials, "root"), (layout.config_ini, "service user"))


SECRET_FILES = secret_files()


@check(11)
def secret_file_private(runner: Runner, expect: Expect, path: str, owner: str) -> Passed:
    """The file is 0600 and owned (user and group) by its owner."""
    user = "root" if owner == "root" else expect.service_user
    info = parse.stat_line(runner.run(f"stat -c '%F|%a|%U|%G' {shlex.quote(path)}").stdout)
    if info is None or not info.is_file:
        raise Failed(f"{path} is missing")
    require(info.mode == 0o600, f"{path} has mode {info.mode:o}, expected 600")
    require((info.user, info.group) == (user, user),
            f"{path} is owned by {info.user}:{info.group}, expected {user}:{user}")
    return Passed.of(f"{path} 0600 {user}:{user}")


@check(11)
def password_leaks_nowhere(runner: Runner, layout: Layout = DEFAULT) -> Passed:
    """The password is in no process's arguments or environment, the journal or the logs."""
    scan = run_hostside(runner, "secret_scan.py", layout=layout)
    require(scan["password_set"], "IBKR_PASSWORD is empty in the host's credentials.env")
    require(scan["journal_status"] == 0, "journalctl failed on the host: the journal was not searched")
    leaks = {where: places for where, places in scan["found"].items() if places}
    require(not leaks, f"the password appears in: {leaks}")
    counts = scan["scanned"]
    return Passed.of(f"not in {counts['processes']} processes, {counts['journal_entries']} "
                     f"journal entries or {counts['log_files']} log files")

"""Sandbox logic that needs no guest: names, cgroup discovery, SSH files, records, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import cast

import paramiko
import pytest

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.sandbox import base, cgroup, records, runtime, ssh
from ibkr_ops.sandbox.ops import names_for
from ibkr_ops.sandbox.paths import Layout, check_name
from ibkr_ops.sandbox.progress import wait_for

HYBRID = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
UNIFIED = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"

#: Runs the sandbox tasks the way `invoke sandbox.X` does, without needing tasks.py.
TASKS = """\
import sys
from invoke import Collection, Program
from ibkr_ops.tasks.sandbox import ns
Program(namespace=Collection(sandbox=ns), binary="invoke").run(["invoke", *sys.argv[1:]])
"""


@pytest.fixture
def where(tmp_path: Path) -> Layout:
    return Layout(cache=tmp_path / "cache", state=tmp_path / "state")


def run_tasks(*argv: str, env: dict[str, str] | None = None,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-c", TASKS, *argv], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


@pytest.mark.parametrize(("name", "count", "expected"), [
    (None, 1, ["sbx1"]),
    (None, 3, ["sbx1", "sbx2", "sbx3"]),
    ("web", 1, ["web"]),
    ("web", 2, ["web1", "web2"]),
])
def test_guest_names(name: str | None, count: int, expected: list[str]) -> None:
    """NAME alone, or NAME1..NAMEn for a count."""
    assert names_for(name, count) == expected


@pytest.mark.parametrize("bad", ["", "Web", "1st", "a_b", "x" * 21, "a/b"])
def test_bad_names_are_usage_errors(bad: str) -> None:
    """Names end up in host names, namespaces and cgroups: anything else is refused."""
    with pytest.raises(UsageError, match="bad sandbox name"):
        check_name(bad)


def test_count_below_one_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--count"):
        names_for(None, 0)


@pytest.mark.parametrize(("mounts", "expected"), [
    (HYBRID, ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"]),
    (UNIFIED, ["/sys/fs/cgroup"]),
])
def test_cgroup_hierarchies(mounts: str, expected: list[str]) -> None:
    """Hybrid machines need the guest's cgroup in the unified and name=systemd trees."""
    assert cgroup.hierarchies(mounts) == [Path(p) for p in expected]


def test_no_cgroup_hierarchy_is_an_error() -> None:
    with pytest.raises(OpsError, match="no cgroup hierarchy"):
        cgroup.hierarchies("proc /proc proc rw 0 0\n")


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (openssh-client) missing")
def test_ssh_files_are_read_by_paramiko_and_openssh(where: Layout) -> None:
    """Fabric (paramiko) and `ssh -F` both find the guest's address, key and host key."""
    private, public = ssh.new_host_key("web1")
    assert b"PRIVATE KEY" in private
    ssh.write_files(where, [("web1", "10.231.7.2", public)])

    config = paramiko.SSHConfig.from_path(str(where.ssh_config)).lookup("web1")
    assert config["hostname"] == "10.231.7.2"
    assert (config["user"], config["port"]) == ("root", "22")
    assert cast(list[str], config["identityfile"]) == [str(where.identity_file)]
    assert config["userknownhostsfile"] == str(where.known_hosts)
    assert config["stricthostkeychecking"] == "yes"

    known = paramiko.HostKeys(str(where.known_hosts))
    for alias in ("web1", "10.231.7.2"):
        entry = known.lookup(alias)
        assert entry is not None
        assert entry["ssh-ed25519"].get_base64() == public.split()[1]
    resolved = subprocess.run(["ssh", "-G", "-F", str(where.ssh_config), "web1"],
                              capture_output=True, text=True, check=True).stdout
    assert "hostname 10.231.7.2" in resolved
    assert "stricthostkeychecking true" in resolved


def test_ssh_files_drop_removed_guests(where: Layout) -> None:
    ssh.write_files(where, [("a", "10.231.1.2", "ssh-ed25519 AAAA"),
                            ("b", "10.231.2.2", "ssh-ed25519 BBBB")])
    ssh.write_files(where, [("b", "10.231.2.2", "ssh-ed25519 BBBB")])
    assert "Host a\n" not in where.ssh_config.read_text()
    assert where.known_hosts.read_text() == "b,10.231.2.2 ssh-ed25519 BBBB\n"


def test_records_round_trip(where: Layout) -> None:
    """What is saved is loaded; a guest without a record (half-made) is not listed."""
    record = records.GuestRecord(name="web1", index=7, host_key="ssh-ed25519 AAAA root@web1")
    where.guest("web1").dir.mkdir(parents=True)
    where.guest("half").dir.mkdir(parents=True)
    records.save(where, record)
    assert records.load(where, "web1") == record
    assert record.address == "10.231.7.2"
    assert records.load_all(where) == [record]
    assert records.load(where, "nope") is None


def test_unreadable_record_names_the_fix(where: Layout) -> None:
    where.guest("web1").dir.mkdir(parents=True)
    where.guest("web1").record.write_text("{not json")
    with pytest.raises(OpsError, match=r"sandbox\.down --name web1"):
        records.load(where, "web1")


def test_free_index_takes_the_lowest_gap() -> None:
    assert records.free_index(set()) == 1
    assert records.free_index({1, 2, 4}) == 3


def test_base_stamp_decides_reuse(where: Layout) -> None:
    """Only a complete tree stamped with today's package list is reused."""
    assert not base.is_current(where)
    where.base.mkdir(parents=True)
    assert not base.is_current(where)  # a tree without its stamp is a half-built one
    base.write_stamp(where)
    assert base.is_current(where)
    outdated = json.loads(where.base_stamp.read_text())
    outdated["packages"] = outdated["packages"][1:]
    where.base_stamp.write_text(json.dumps(outdated))
    assert not base.is_current(where)


def test_live_pid_checks_the_command_line(tmp_path: Path) -> None:
    """A pid file counts only while its process runs and is the expected program."""
    pidfile = tmp_path / "pid"
    with subprocess.Popen(["sleep", "30"]) as proc:
        pidfile.write_text(f"{proc.pid}\n")
        # Popen returns after fork; until exec the child still shows this test's command line.
        wait_for("sleep to exec", lambda: runtime.live_pid(pidfile, "sleep"), timeout=10,
                 poll=0.01)
        assert runtime.live_pid(pidfile, "sleep") == proc.pid
        assert runtime.live_pid(pidfile, runtime.SUPERVISOR_MODULE) is None
        proc.kill()
    assert runtime.live_pid(pidfile, "sleep") is None


def test_wait_for_returns_the_first_answer() -> None:
    answers = iter([None, None, "running"])
    assert wait_for("thing", lambda: next(answers), timeout=10, poll=0) == "running"


def test_wait_for_timeout_names_what_was_awaited() -> None:
    with pytest.raises(OpsError, match="waiting for the guest; console says no"):
        wait_for("the guest", lambda: None, timeout=0, failure=lambda: "console says no")


def test_task_usage_error_is_one_line() -> None:
    """Bad input: exit status 2, one line on stderr, no traceback."""
    done = run_tasks("sandbox.up", "--count", "0")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --count must be at least 1, not 0"


def test_task_list_json_is_empty_without_guests(where: Layout) -> None:
    env = dict(os.environ, IBKR_OPS_SANDBOX_DIR=str(where.state))
    done = run_tasks("sandbox.list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_task_up_refuses_without_root(where: Layout) -> None:
    """Without root `sandbox.up` stops at once with one line that says what is missing."""
    drop = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    prefix = drop if os.geteuid() == 0 else ()
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) missing: cannot drop root for this check")
    # HOME elsewhere: the unprivileged user may not read root's Invoke config files.
    env = dict(os.environ, IBKR_OPS_SANDBOX_DIR=str(where.state), HOME="/nonexistent")
    done = run_tasks("sandbox.up", env=env, prefix=prefix)
    assert done.returncode == 1
    assert "need root" in done.stderr
    assert "Traceback" not in done.stderr
    assert not where.state.exists()

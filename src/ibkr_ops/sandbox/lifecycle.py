"""One guest's life: create its files, start it (netns, cgroup, overlay, supervisor), wait
until systemd and SSH answer, stop it, and remove every trace of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ibkr_ops.errors import OpsError
from ibkr_ops.sandbox import cgroup, network, runtime, ssh
from ibkr_ops.sandbox.paths import GuestPaths, Layout
from ibkr_ops.sandbox.progress import say, wait_for
from ibkr_ops.sandbox.records import GuestRecord, load, save
from ibkr_ops.sandbox.supervisor import LOG_PREFIX as SUPERVISOR_LOG_PREFIX
from ibkr_ops.sandbox.system import run

#: nspawn refuses to clean up after a guest unless this is a writable tmpfs.
NSPAWN_RUNTIME = Path("/run/systemd/nspawn")
BOOT_TIMEOUT = 120.0
SSH_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def create(layout: Layout, name: str, index: int) -> GuestRecord:
    """Lay out a new guest: its overlay directories and the files that give it an identity.

    The host key is generated here, on the host side, so known_hosts is right before the
    guest's first boot.
    """
    files = layout.guest(name)
    for path in (files.upper, files.work, files.root):
        path.mkdir(parents=True, exist_ok=True)
    etc = files.upper / "etc"
    (etc / "ssh").mkdir(parents=True, exist_ok=True)
    private, public = ssh.new_host_key(name)
    _write(etc / "ssh/ssh_host_ed25519_key", private, 0o600)
    _write(etc / "ssh/ssh_host_ed25519_key.pub", f"{public}\n".encode(), 0o644)
    _write(etc / "machine-id", f"{uuid.uuid4().hex}\n".encode(), 0o444)
    _write(etc / "hostname", f"{name}\n".encode(), 0o644)
    dot_ssh = files.upper / "root/.ssh"
    dot_ssh.mkdir(parents=True, exist_ok=True)
    dot_ssh.chmod(0o700)
    (files.upper / "root").chmod(0o700)
    client_key = layout.identity_file.with_suffix(".pub").read_bytes()
    _write(dot_ssh / "authorized_keys", client_key, 0o600)
    record = GuestRecord(name=name, index=index, host_key=public)
    save(layout, record)
    return record


def _write(path: Path, content: bytes, mode: int) -> None:
    path.write_bytes(content)
    path.chmod(mode)


def start(layout: Layout, record: GuestRecord) -> list[str]:
    """Bring up whatever of the guest is not running; return what was started."""
    files = layout.guest(record.name)
    started: list[str] = []
    if not os.path.ismount(NSPAWN_RUNTIME):
        NSPAWN_RUNTIME.mkdir(parents=True, exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(NSPAWN_RUNTIME)])
    if not network.exists(record.index):
        network.create(record.index)
        started.append("network namespace")
    cgroup.create(record.index)
    if not os.path.ismount(files.root):
        options = f"lowerdir={layout.base},upperdir={files.upper},workdir={files.work}"
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(files.root)])
        started.append("overlay")
    if supervisor_pid(files) is None:
        _spawn_supervisor(record.name, files)
        started.append("guest")
    return started


def supervisor_pid(files: GuestPaths) -> int | None:
    return runtime.live_pid(files.supervisor_pid, runtime.SUPERVISOR_MODULE)


def leader_pid(files: GuestPaths) -> int | None:
    """The guest's init, when its nspawn is running."""
    nspawn = runtime.live_pid(files.nspawn_pid, "systemd-nspawn")
    return runtime.leader(nspawn) if nspawn else None


def _spawn_supervisor(name: str, files: GuestPaths) -> None:
    """Start the supervisor detached (double fork, own session) so it outlives this process.

    Returns once the supervisor's pid file is written: the pipe's write end closes when the
    grandchild execs (pipes are close-on-exec), and not before.
    """
    files.supervisor_pid.unlink(missing_ok=True)
    argv = [sys.executable, "-m", runtime.SUPERVISOR_MODULE, name]
    ready, written = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child only
        try:
            os.close(ready)
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDONLY)
                log = os.open(files.console_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                files.supervisor_pid.write_text(f"{os.getpid()}\n")
                os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell
        finally:
            os._exit(0)
    os.close(written)
    os.waitpid(child, 0)
    with os.fdopen(ready, "rb") as pipe:
        pipe.read()


def console_tail(files: GuestPaths, lines: int = 8) -> str:
    """The last lines of the guest's console log (not the supervisor's own), for errors."""
    try:
        text = files.console_log.read_text(errors="replace")
    except OSError:
        return "no console output"
    kept = [line for line in text.splitlines()
            if line.strip() and not line.startswith(SUPERVISOR_LOG_PREFIX)][-lines:]
    return " | ".join(kept) if kept else "no console output"


def wait_up(layout: Layout, record: GuestRecord, *, after_leader: int | None = None) -> str:
    """Wait until systemd in the guest is running (or degraded) and SSH logs in.

    `after_leader` is the init pid of a boot that must end first (a reboot in progress).
    Return the system state; a degraded guest's failed units are listed.
    """
    name, files = record.name, layout.guest(record.name)

    def booted() -> str | None:
        if supervisor_pid(files) is None:
            raise OpsError(f"sandbox {name} stopped while booting: {console_tail(files)}")
        leader = leader_pid(files)
        if leader is None or leader == after_leader:
            return None
        state = runtime.system_state(leader)
        return state if state in runtime.UP_STATES else None

    state = wait_for(f"{name}: systemd in the guest", booted, timeout=BOOT_TIMEOUT,
                     failure=lambda: console_tail(files))
    if state == "degraded":
        leader = leader_pid(files)
        failed = runtime.failed_units(leader) if leader else []
        say(f"{name}: degraded; failed units: {', '.join(failed) or 'unknown'}")
    wait_for(f"{name}: ssh", lambda: True if ssh.ssh_answers(layout, name) else None,
             timeout=SSH_TIMEOUT)
    return state


def stop(layout: Layout, record: GuestRecord) -> None:
    """Power the guest off cleanly; SIGTERM then SIGKILL whatever does not stop in time."""
    files = layout.guest(record.name)
    leader = leader_pid(files)
    if leader is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            runtime.inside(leader, ["systemctl", "poweroff"], timeout=10)
    if not _gone(files, STOP_TIMEOUT if leader else 0):
        supervisor = supervisor_pid(files)
        if supervisor is not None:
            os.kill(supervisor, signal.SIGTERM)
        _gone(files, 10)
    cgroup.kill_all(record.index)


def _gone(files: GuestPaths, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while supervisor_pid(files) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def destroy(layout: Layout, name: str) -> None:
    """Stop the guest and remove its mounts, namespace, cgroups and files.

    A guest without a record was never started (the record is written before the first
    start), so only its files are left to remove.
    """
    files = layout.guest(name)
    record = load(layout, name)
    if record is not None:
        stop(layout, record)
    if os.path.ismount(files.root):
        run(["umount", str(files.root)])
    if record is not None:
        network.remove(record.index)
        cgroup.remove(record.index)
    shutil.rmtree(files.dir, ignore_errors=True)

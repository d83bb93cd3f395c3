"""How a check reads a host: a shell command as root, and a TCP tunnel to a port on it.

Two implementations: `FabricRunner` over the project's own checked connection (go-live and
migrate, in-process) and, in the testinfra suite, one over testinfra's ssh backend. A check
never knows which: it gets a `Runner`.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import paramiko
from invoke.exceptions import CommandTimedOut, ThreadException

from ibkr_ops import resources
from ibkr_ops.errors import OpsError
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote.primitives import Host


class Unreachable(OpsError):
    """The host did not answer (SSH failed, it is rebooting, a command timed out)."""


@dataclass(frozen=True)
class Ran:
    """A finished command: exit status and output."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def last_error(self) -> str:
        """The command's last line of stderr (or stdout), for a one-line detail."""
        lines = [ln for ln in (self.stderr or self.stdout).strip().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else f"exit {self.rc}, no output"


class Runner(Protocol):
    """A host as the checks see it. Commands run as root; output is never shown."""

    @property
    def name(self) -> str: ...

    def run(self, command: str, *, timeout: float | None = None) -> Ran:
        """Run a shell command; `Unreachable` when the host does not answer."""
        ...

    def forward(self, host: str, port: int) -> AbstractContextManager[int]:
        """A local port forwarded to ``host:port`` as seen from the host; yields the port."""
        ...


def program(command: str) -> str:
    """The program a shell command runs (past ``NAME=value`` assignments), to name it."""
    return next((word for word in command.split() if "=" not in word), command[:40])


def output(runner: Runner, command: str, *, timeout: float | None = None) -> str:
    """A command's stdout; a non-zero exit is an `OpsError` with its last error line."""
    ran = runner.run(command, timeout=timeout)
    if not ran.ok:
        raise OpsError(f"`{program(command)}` failed on the host: {ran.last_error()}")
    return ran.stdout


def quietly(runner: Runner, command: str) -> Ran | None:
    """`runner.run`, but a host that does not answer (rebooting) is None, not an error."""
    try:
        return runner.run(command, timeout=30)
    except Unreachable:
        return None


def hostside_command(script: str, layout: Layout = DEFAULT) -> str:
    """The command that runs a host-side probe with the host's python3 and tools; an
    instance's probe is given that instance's settings file (the default one finds its own)."""
    settings = f" {shlex.quote(layout.ops_json)}" if layout.instance else ""
    return (f"python3 -c {shlex.quote(resources.hostside(script))} "
            f"{shlex.quote(layout.tools_zip)}{settings}")


def run_hostside(runner: Runner, script: str, *, timeout: float = 300,
                 layout: Layout = DEFAULT) -> dict[str, Any]:
    """Run one of the host-side probes with the host's python3; the JSON it prints.

    The source travels as an argument (it holds no secret), followed by the host tools zip it
    imports the host's paths from; the probe reads secrets itself on the host and sends back
    only what it found.
    """
    ran = runner.run(hostside_command(script, layout), timeout=timeout)
    if not ran.ok:
        raise OpsError(f"{script} failed on the host (exit {ran.rc}): {ran.last_error()}")
    try:
        return dict(json.loads(ran.stdout))
    except ValueError:
        raise OpsError(f"{script} printed no JSON on the host: {ran.last_error()}") from None


def free_port() -> int:
    """A local TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def wait_for_port(port: int, timeout: float, what: str) -> None:
    """Until a local forwarder listens on ``port``; `Unreachable` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise Unreachable(f"{what} did not open within {timeout:g} s")
        time.sleep(0.1)


@dataclass
class FabricRunner:
    """The checks over an open `remote.primitives.Host` (root directly or through sudo)."""

    host: Host
    timeout: float = 120.0

    @property
    def name(self) -> str:
        return self.host.name

    def run(self, command: str, *, timeout: float | None = None) -> Ran:
        limit = timeout or self.timeout
        try:
            result = self.host.root(command, warn=True, timeout=int(limit))
        except CommandTimedOut:
            self._drop()
            raise Unreachable(f"`{program(command)}` gave no answer within {limit:g} s") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self._drop()
            raise Unreachable(f"{self.name}: {exc or type(exc).__name__}") from None
        return Ran(int(result.exited), str(result.stdout), str(result.stderr))

    def _drop(self) -> None:
        """Close a connection that stopped answering (a rebooting host leaves it half-open),
        so the next command connects afresh, with the same host-key checks."""
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            self.host.conn.close()

    @contextlib.contextmanager
    def forward(self, host: str, port: int) -> Iterator[int]:
        local = free_port()
        try:
            with self.host.conn.forward_local(local_port=local, remote_port=port,
                                              remote_host=host, local_host="127.0.0.1"):
                wait_for_port(local, 20, "the SSH tunnel to the API port")
                yield local
        except ThreadException as exc:
            raise Unreachable(f"the SSH tunnel to {host}:{port} failed: {exc}") from None

"""`invoke vnc`: a person sees (and with --interactive, answers) the Gateway's screen.

On the host, x11vnc serves the Xvfb display on 127.0.0.1 only, as the main process of a
transient systemd unit with a dynamic user, its own hardening and a hard time limit
(`RuntimeMaxSec=`), so it ends even if this machine vanishes mid-session. Its one-time
password travels over the SSH channel's standard input (never argv, never the journal:
`systemd-run --pipe` keeps the unit's output on the channel). On this machine, a local port
on 127.0.0.1 is forwarded to it through the same SSH connection. The session ends on
Ctrl-C, when no viewer has been connected for the idle bound, or at the hard limit; the
unit and the forward are stopped either way.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import paramiko

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host.vnc import PASSWORD_ALPHABET, PASSWORD_LENGTH
from ibkr_ops.layout import DEFAULT, VNC_SERVER
from ibkr_ops.remote.primitives import Host
from ibkr_ops.remote.switch import open_root
from ibkr_ops.remote.tunnel import LocalForward

SERVER = DEFAULT.tool(VNC_SERVER)
UNIT_PREFIX = "ibkr-vnc-"
START_TIMEOUT_S = 20.0
#: The transient unit's sandbox: x11vnc reaches the display through its abstract socket and
#: listens on loopback; it needs no file, no privilege and no other address family.
HARDENING = (
    "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
    "PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "ProtectControlGroups=yes",
    "ProtectClock=yes", "ProtectHostname=yes", "RestrictAddressFamilies=AF_UNIX AF_INET",
    "RestrictNamespaces=yes", "RestrictRealtime=yes", "LockPersonality=yes",
    "SystemCallArchitectures=native", "CapabilityBoundingSet=", "UMask=0077",
)


def one_time_password() -> str:
    """A fresh password of the length VNC's authentication uses (8 characters)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def server_command(unit: str, *, interactive: bool, max_s: int) -> str:
    """The systemd-run command line that starts x11vnc on the host (no secret in it)."""
    properties = [*HARDENING, f"RuntimeMaxSec={max_s}"]
    argv = ["systemd-run", "--quiet", "--collect", "--pipe", f"--unit={unit}",
            *(f"--property={p}" for p in properties), SERVER]
    argv += ["--interactive"] if interactive else []
    return " ".join(shlex.quote(a) for a in argv)


def parse_port(output: str) -> int | None:
    """The port from x11vnc's `PORT=5900` line, once it has printed it."""
    for line in output.splitlines():
        if line.startswith("PORT=") and line[5:].strip().isdigit():
            return int(line[5:])
    return None


@dataclass
class Server:
    """x11vnc running on the host in its transient unit, its output drained here."""

    unit: str
    port: int
    channel: paramiko.Channel
    output: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return not self.channel.exit_status_ready()

    def last_words(self) -> str:
        lines = [ln for ln in "".join(self.output).splitlines() if ln.strip()]
        return lines[-1][:200] if lines else "no output"


def start(host: Host, password: str, *, interactive: bool, max_s: int) -> Server:
    """Start x11vnc in a transient unit and return once it listens (bounded)."""
    unit = f"{UNIT_PREFIX}{secrets.token_hex(4)}"
    transport = host.conn.client.get_transport()
    if transport is None:
        raise OpsError(f"{host.name}: the SSH connection is closed")
    channel = transport.open_session()
    channel.set_combine_stderr(True)
    channel.exec_command(host.as_root(server_command(unit, interactive=interactive,
                                                     max_s=max_s)))
    channel.sendall((password + "\n").encode())
    server = Server(unit, 0, channel)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if channel.recv_ready():
            server.output.append(channel.recv(4096).decode(errors="replace"))
            port = parse_port("".join(server.output))
            if port is not None:
                server.port = port
                threading.Thread(target=_drain, args=(server,), daemon=True).start()
                return server
        elif channel.exit_status_ready():
            raise OpsError(f"{host.name}: the VNC server did not start (exit status "
                           f"{channel.recv_exit_status()}: {server.last_words()})")
        else:
            time.sleep(0.05)
    stop(host, server)
    raise OpsError(f"{host.name}: the VNC server did not listen within {START_TIMEOUT_S:.0f} s "
                   f"({server.last_words()})")


def _drain(server: Server) -> None:
    """Keep reading x11vnc's output so a full pipe never stalls it; keep the tail."""
    with contextlib.suppress(OSError, EOFError):
        while True:
            data = server.channel.recv(4096)
            if not data:
                return
            server.output = [*server.output[-20:], data.decode(errors="replace")]


def stop(host: Host, server: Server) -> None:
    """Stop the unit (x11vnc and everything in it) and close its channel."""
    with contextlib.suppress(OSError, OpsError):
        host.root(f"systemctl stop {shlex.quote(server.unit)}", warn=True, timeout=30)
    server.channel.close()


@dataclass
class Session:
    """A running session: where the viewer connects, with what, and its parts."""

    host: Host
    server: Server
    forward: LocalForward
    password: str
    interactive: bool

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.forward.port}"


@contextlib.contextmanager
def session(spec: str, *, interactive: bool, max_s: int, local_port: int = 0,
            ssh_configs: Sequence[str] = ()) -> Iterator[Session]:
    """Server and forward for the `with` block; both are stopped when it ends, however."""
    if not 60 <= max_s <= 24 * 3600:
        raise UsageError("--limit must be between 60 and 86400 seconds")
    host = open_root(spec, ssh_configs=ssh_configs)
    try:
        password = one_time_password()
        # The host-side limit is a backstop for a vanished operator: a little past ours.
        server = start(host, password, interactive=interactive, max_s=max_s + 30)
        try:
            transport = host.conn.client.get_transport()
            if transport is None:
                raise OpsError(f"{spec}: the SSH connection is closed")
            forward = LocalForward(transport, server.port, local_port)
            try:
                yield Session(host, server, forward, password, interactive)
            finally:
                forward.close()
        finally:
            stop(host, server)
    finally:
        host.conn.close()


def wait(s: Session, *, idle_s: float, max_s: float,
         stop_when: Callable[[], bool] = lambda: False) -> str:
    """Block until the session should end; say why."""
    started = time.monotonic()
    while True:
        if not s.server.running:
            raise OpsError(f"the VNC server on {s.host.name} stopped: {s.server.last_words()}")
        if s.forward.errors:
            raise OpsError(s.forward.errors[-1])
        if stop_when():
            return "stopped"
        if s.forward.idle_for() >= idle_s:
            return f"no viewer connected for {idle_s:.0f} s"
        if time.monotonic() - started >= max_s:
            return f"the session's limit of {max_s:.0f} s is reached"
        time.sleep(0.25)

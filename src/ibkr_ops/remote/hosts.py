"""Turning `--host` values into Fabric connections that check host keys.

Fabric auto-adds unknown host keys and never reads known_hosts. A brokerage login must not
be pushed to a machine an attacker answers for, so here every connection loads the user's
known_hosts, the files named by ``UserKnownHostsFile`` and the project's own file, refuses
an unknown key (with its fingerprint) unless the user opts in, and always refuses a changed
one (paramiko raises BadHostKeyException).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fabric  # type: ignore[import-untyped]
import paramiko

from ibkr_ops.errors import OpsError, UsageError

_SPEC = re.compile(r"(?:(?P<user>[A-Za-z0-9_.-]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)"
                   r"(?::(?P<port>\d{1,5}))?")
CONNECT_TIMEOUT = 15


def project_known_hosts() -> Path:
    """Host keys the user accepted with --trust-new-host (kept apart from ~/.ssh)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ibkr-ops" / "known_hosts"


def load_ssh_config(extra: Sequence[str] = ()) -> paramiko.SSHConfig:
    """The user's ~/.ssh/config, then the ``extra`` files the caller names (the task layer
    adds the sandbox's, so guest names work as hosts); missing files are left out."""
    config = paramiko.SSHConfig()
    files = [Path.home() / ".ssh" / "config", *map(Path, extra)]
    for path in (f for f in files if f.is_file()):
        with path.open() as handle:
            config.parse(handle)
    return config


@dataclass(frozen=True)
class Target:
    """One host as given on the command line, resolved through the SSH config."""

    spec: str
    hostname: str
    port: int
    user: str | None
    known_hosts: tuple[Path, ...]
    identity_files: tuple[str, ...]

    @property
    def key_name(self) -> str:
        """The name known_hosts lists this host under."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def resolve(spec: str, ssh_configs: Sequence[str] = ()) -> Target:
    """Parse ``[user@]host[:port]`` or an SSH-config name into a ``Target``."""
    match = _SPEC.fullmatch(spec.strip())
    if not match:
        raise UsageError(f"host {spec!r}: expected [user@]host[:port] or a name from your ssh config")
    config = load_ssh_config(ssh_configs)
    alias = match["host"].strip("[]")
    entry = config.lookup(alias)
    port = int(match["port"] or entry.get("port", 22))
    if not 0 < port < 65536:
        raise UsageError(f"host {spec!r}: port {port} is out of range")
    known = [Path.home() / ".ssh" / "known_hosts", project_known_hosts()]
    known += [Path(os.path.expanduser(p)) for p in entry.get("userknownhostsfile", "").split()]
    return Target(spec=spec, hostname=entry.get("hostname", alias), port=port,
                  user=match["user"] or entry.get("user"),
                  known_hosts=tuple(dict.fromkeys(known)),
                  identity_files=tuple(entry.get("identityfile", [])))


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, the form `ssh-keygen -lf` and ssh's own prompt show."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _UnknownHostPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown keys with their fingerprint, or record them when the user opted in."""

    def __init__(self, target: Target, trust_new_host: bool) -> None:
        self.target = target
        self.trust = trust_new_host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if not self.trust:
            raise OpsError(
                f"{self.target.spec}: unknown host key {key.get_name()} {fingerprint(key)}; "
                "check it with the host's owner, then re-run with --trust-new-host "
                "(or add it to ~/.ssh/known_hosts)")
        path = project_known_hosts()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(f"{self.target.key_name} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def connect(target: Target, *, trust_new_host: bool = False) -> fabric.Connection:
    """Open a checked connection; every failure is one OpsError line saying what to do."""
    # Commands never read the operator's terminal: a prompt on the host must fail, not hang.
    conn = fabric.Connection(target.hostname, user=target.user, port=target.port,
                             config=fabric.Config(overrides={"run": {"in_stream": False}}),
                             connect_timeout=CONNECT_TIMEOUT,
                             connect_kwargs={"key_filename": list(target.identity_files)}
                             if target.identity_files else {})
    for path in target.known_hosts:
        if path.is_file():
            conn.client.load_host_keys(str(path))
    conn.client.set_missing_host_key_policy(_UnknownHostPolicy(target, trust_new_host))
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        raise OpsError(
            f"{target.spec}: HOST KEY CHANGED (now {fingerprint(exc.key)}); this may be an attack. "
            f"If the host was rebuilt, remove its old line: ssh-keygen -R '{target.key_name}'"
        ) from None
    except paramiko.AuthenticationException:
        raise OpsError(f"{target.spec}: SSH login refused for user {conn.user!r}; check the user "
                       "name and that your key is in its ~/.ssh/authorized_keys") from None
    except TimeoutError:
        raise OpsError(f"{target.spec}: no answer on port {target.port} within "
                       f"{CONNECT_TIMEOUT} s; check the address, port and firewall") from None
    except (OSError, paramiko.SSHException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise OpsError(f"{target.spec}: cannot connect ({reason}); check the address and that "
                       "sshd runs") from None
    return conn


def open_host(spec: str, *, trust_new_host: bool = False,
              ssh_configs: Sequence[str] = ()) -> fabric.Connection:
    """``resolve`` then ``connect``: what every task does with a `--host` value."""
    return connect(resolve(spec, ssh_configs), trust_new_host=trust_new_host)

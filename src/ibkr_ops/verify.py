"""`invoke verify`: run the go-live checklist (the testinfra suite wrapping `ibkr_ops.checks`)
against one host.

testinfra's paramiko backend accepts any host key and its ssh backend trusts whatever
~/.ssh/config says, so a host is resolved here the way `install` resolves it (sandbox names,
ssh-config names, the same known_hosts files) and written into a private ssh_config that
insists on a known host key. testinfra's ssh backend then runs plain OpenSSH with it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops import resources
from ibkr_ops.errors import UsageError
from ibkr_ops.remote.hosts import Target, resolve


@dataclass(frozen=True)
class Invocation:
    """The pytest command for one host and the ssh_config it needs (written by `run`)."""

    argv: tuple[str, ...]
    ssh_config: str


def ssh_config_text(target: Target, alias: str, control_dir: Path) -> str:
    """An ssh_config for `alias` only: the resolved address, keys and known_hosts, strict
    host key checking, and a shared connection (one TCP session for the whole suite)."""
    known = " ".join(_quoted(p) for p in target.known_hosts if p.is_file())
    lines = [
        f"Host {alias}",
        f"    HostName {target.hostname}",
        f"    Port {target.port}",
        *([f"    User {target.user}"] if target.user else []),
        *(f"    IdentityFile {_quoted(Path(f).expanduser())}" for f in target.identity_files),
        *(["    IdentitiesOnly yes"] if target.identity_files else []),
        f"    UserKnownHostsFile {known or '/dev/null'}",
        "    StrictHostKeyChecking yes",
        "    BatchMode yes",
        f"    ControlPath {_quoted(control_dir / 'cm-%C')}",
        "    ServerAliveInterval 5",
        "    ServerAliveCountMax 3",
    ]
    user_config = Path.home() / ".ssh" / "config"
    if user_config.is_file():
        # Other options (ProxyJump, ...) still come from the user's file; the ones above win.
        lines.append(f"    Include {_quoted(user_config)}")
    return "\n".join(lines) + "\n"


def _quoted(path: Path) -> str:
    return f'"{path}"' if " " in str(path) else str(path)


def invocation(host_spec: str, config_path: Path, *, destructive: bool = False,
               junitxml: str | None = None, extra: Sequence[str] = (),
               ssh_configs: Sequence[str] = ()) -> Invocation:
    """Resolve the host and build the pytest command (pure, apart from reading ssh configs)."""
    target = resolve(host_spec, ssh_configs)
    alias = "gateway-host"
    text = ssh_config_text(target, alias, config_path.parent)
    suite = resources.verify_suite()
    if not suite.is_dir():
        raise UsageError(f"the checklist suite is not here ({suite}); run from a checkout of "
                         "ibkr-ops")
    argv = [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider",
            f"--hosts=ssh://{alias}", f"--ssh-config={config_path}",
            f"--verify-label={host_spec}"]
    if target.user not in (None, "root"):
        argv.append("--sudo")
    if destructive:
        argv.append("--destructive")
    if junitxml:
        argv.append(f"--junitxml={junitxml}")
    return Invocation(tuple([*argv, *extra]), text)


def run(host_spec: str, *, destructive: bool = False, junitxml: str | None = None,
        extra: Sequence[str] = (), quiet: bool = False, ssh_configs: Sequence[str] = ()) -> int:
    """Run the checklist against one host; return pytest's exit status (0: all passed).

    `quiet` drops pytest's output (the table included): for callers that read the JUnit XML.
    """
    with tempfile.TemporaryDirectory(prefix="ibkr-verify-") as scratch:
        config_path = Path(scratch) / "ssh_config"
        call = invocation(host_spec, config_path, destructive=destructive, junitxml=junitxml,
                          extra=extra, ssh_configs=ssh_configs)
        config_path.write_text(call.ssh_config)
        if not quiet:
            print(f"verify {host_spec}: the go-live checklist"
                  f"{' with destructive checks' if destructive else ''}", flush=True)
        try:
            done = subprocess.run(call.argv, cwd=resources.verify_suite().parents[1], check=False,
                                  stdout=subprocess.DEVNULL if quiet else None)
        finally:
            subprocess.run(["ssh", "-F", str(config_path), "-O", "exit", "gateway-host"],
                           capture_output=True, check=False)
        return done.returncode

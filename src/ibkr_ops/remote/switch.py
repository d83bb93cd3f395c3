"""Moving a running deployment: read it as it stands, back it up, stop and start the Gateway.

Shared by `migrate` (host to host) and `go-live` (paper to live on one host). The host keeps
every setting in its credentials.env, so that file is the deployment "as it stands";
it is read as root into memory and never written anywhere on the operator's machine.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ibkr_ops import checks
from ibkr_ops.errors import OpsError
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import gateways, systemctl
from ibkr_ops.remote.hosts import open_host
from ibkr_ops.remote.install import Progress, wait_healthy
from ibkr_ops.remote.primitives import Host
from ibkr_ops.settings import Deployment, parse_deployment


@dataclass
class SwitchReport:
    """What a switch of a host's Gateway (go-live, upgrade) did, step by step, and the health
    it ended with."""

    host: str
    steps: list[str] = field(default_factory=list)
    health: str = ""


def stack_units(layout: Layout = DEFAULT) -> tuple[str, ...]:
    """What "stopped" means: the Gateway and the timers that would start it again (the daily
    restart) or alert about it (the health check). Xvfb is left alone: it holds no login."""
    return (layout.gateway_unit, layout.restart_timer, layout.health_timer)


def open_root(spec: str, *, trust_new_host: bool = False, ssh_configs: Sequence[str] = ()) -> Host:
    """A checked connection that can act as root (directly or with passwordless sudo)."""
    conn = open_host(spec, trust_new_host=trust_new_host, ssh_configs=ssh_configs)
    host = Host(conn, spec)
    probe = conn.run('[ "$(id -u)" = 0 ] && echo root || { sudo -n true 2>/dev/null && echo sudo; }',
                     hide=True, warn=True, in_stream=False).stdout.strip()
    if probe not in ("root", "sudo"):
        conn.close()
        raise OpsError(f"{spec}: the SSH user is neither root nor allowed passwordless sudo; "
                       "connect as root or add a NOPASSWD sudoers rule")
    host.sudo = probe == "sudo"
    return host


def read_deployment(host: Host, path: str = DEFAULT.credentials,
                    missing: str = "is this an ibkr-ops host (`invoke install`)?") -> Deployment:
    """The deployment a host runs (or a backup of one), parsed in memory."""
    data = host.read_file(path)
    if data is None:
        raise OpsError(f"{host.name}: {path} does not exist; {missing}")
    return parse_deployment(data.decode(errors="replace"), source=f"{host.name}:{path}")


def backup(host: Host, name: str, layout: Layout = DEFAULT) -> str:
    """Copy the host's settings into the backup directory's ``name`` (0700 directory, 0600
    files, root)."""
    target = f"{layout.backup_dir}/{name}"
    quoted = shlex.quote(target)
    config = shlex.quote(layout.config_ini)
    host.root(f"install -d -m 0700 -o root -g root {shlex.quote(layout.backup_dir)} {quoted} && "
              f"install -m 0600 -o root -g root {shlex.quote(layout.credentials)} "
              f"{quoted}/credentials.env && "
              f"if [ -f {config} ]; then install -m 0600 -o root -g root {config} "
              f"{quoted}/config.ini; fi", what=f"backing up the settings to {target}")
    return target


def backup_name(label: str) -> str:
    """A backup directory name that sorts by time and never overwrites an older one."""
    return f"{label}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"


def gateway_active(host: Host, layout: Layout = DEFAULT) -> bool:
    """Whether the Gateway's unit runs (or is starting) now."""
    result = host.root(systemctl.is_active(layout.gateway_unit), warn=True)
    return result.stdout.strip() in ("active", "activating", "reloading")


def stop_gateway(host: Host, layout: Layout = DEFAULT) -> None:
    """Stop and disable the Gateway and its timers; its files stay where they are.

    Stopping waits for the unit's TimeoutStopSec, so the Gateway logs out and releases the
    account before the next step (another Gateway's login) begins.
    """
    host.root(systemctl.disable_now(stack_units(layout), layout.gateway_unit),
              what="stopping the Gateway", timeout=180)


def start_gateway(host: Host, *, restart: bool = False, layout: Layout = DEFAULT) -> None:
    """Enable and start the Gateway and its timers; ``restart`` forces a new (cold) login."""
    units = stack_units(layout)
    verb = "restart" if restart else "start"
    gateway = layout.gateway_unit
    host.root(f"{systemctl.reset_failed(gateway)}; {systemctl.enable(units)} && "
              f"{systemctl.control(verb, [gateway])} && {systemctl.start(units)}",
              what=f"{verb}ing the Gateway", timeout=180)


def restart_allowed(host: Host, *, force: bool, why: str, layout: Layout = DEFAULT) -> str:
    """The host's pre-restart check of the layout's Gateway (trading session, blackouts);
    OpsError when refused."""
    forced = ("--force", "--reason", why) if force else ()
    result = host.root(gateways.tool_command(layout.pre_restart_tool, layout, "--json", *forced),
                       warn=True, timeout=60)
    try:
        verdict = json.loads(result.stdout)
    except json.JSONDecodeError:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise OpsError(f"{host.name}: the pre-restart check did not answer: "
                       f"{lines[-1][:200] if lines else f'exit {result.exited}'}") from None
    if not verdict.get("allowed"):
        raise OpsError(f"{host.name}: not now: {verdict.get('reason', 'refused')}; "
                       "try after the close, or give --force")
    reason = str(verdict.get("reason", ""))
    return f"FORCED, would have refused: {reason}" if verdict.get("forced") else reason


def ready(host: Host, wait_s: float, progress: Progress, layout: Layout = DEFAULT) -> str:
    """The readiness gate of the layout's Gateway before and after a switch: healthy within
    ``wait_s``, then the read-only go-live checks pass on this connection (OpsError naming
    what failed otherwise)."""
    summary = wait_healthy(host, wait_s, progress, layout)
    progress("running the read-only go-live checks")
    results = checks.read_only(checks.FabricRunner(host), progress, layout=layout)
    return f"{summary}; {gate(results, host.name, layout)}"


def gate(results: list[checks.Result], spec: str, layout: Layout = DEFAULT) -> str:
    """The gate's verdict on the checks' results: a summary, or an OpsError naming each failed
    item. An item that is not configured (no webhook) is said, and does not stop the switch."""
    failed = [r for r in results if r.failed]
    if failed:
        raise OpsError("healthy, but go-live checks failed: " + "; ".join(
            f"{r.item} ({r.title}) {r.detail}" for r in failed)
            + f"; see `invoke verify --host {spec}{layout.instance_args}`")
    passed = sum(r.status is checks.Status.OK for r in results)
    unset = sorted({f"{r.item} ({r.title})" for r in results
                    if r.status is checks.Status.NOT_CONFIGURED})
    return f"go-live checks passed ({passed} ok" + (
        f"; not configured: {', '.join(unset)})" if unset else ")")

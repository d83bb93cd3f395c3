"""`invoke install` for one host: facts, plan, its steps (``converge``), health, report.

The install runs over a connection it is given, so go-live and migrate install on the
connection they already hold: one SSH session per host per task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ibkr_ops.botunit import dropins
from ibkr_ops.errors import OpsError
from ibkr_ops.gateway_installer import check_arch, check_fits
from ibkr_ops.instances import Instance
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import converge, diff
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource, host_tools
from ibkr_ops.remote.facts import Facts, facts_command, parse_facts, preflight
from ibkr_ops.remote.hosts import open_host
from ibkr_ops.remote.plan import Plan, make_plan
from ibkr_ops.remote.primitives import Host, run_steps
from ibkr_ops.render import ManagedFile, render
from ibkr_ops.settings import Deployment

Progress = Callable[[str], None]


@dataclass(frozen=True)
class InstallOptions:
    """How to run an install (sources of IBC and the Gateway, trust, dry run, waits)."""

    ibc: IbcSource | None = None
    gateway: GatewayInstaller | None = None
    dry_run: bool = False
    trust_new_host: bool = False
    wait_s: float = 300.0
    notify: bool = True
    # Files and units beyond the deployment's (the demo's in-guest Discord receiver).
    extra_files: tuple[ManagedFile, ...] = ()
    extra_units: tuple[str, ...] = ()
    # Paper to live only through go-live (confirmation, checks, backup) or a live migration.
    allow_live_switch: bool = False
    # False: put everything in place but leave the Gateway as it is, neither started nor
    # restarted (migrate's live guard starts it only once the source has stopped).
    start_gateway: bool = True
    # The user's bot services (names checked by botunit.service_names): each gets a drop-in
    # that starts it only once the Gateway is healthy, waiting up to bot_wait_s.
    bot_units: tuple[str, ...] = ()
    bot_wait_s: int = 300
    # ssh_config files beyond ~/.ssh/config whose names work as hosts (the sandbox's).
    ssh_configs: tuple[str, ...] = ()
    # A new build on a running host switches even inside the session (`invoke upgrade --force`).
    force: bool = False


@dataclass
class HostReport:
    """What happened on one host, for the summary table."""

    host: str
    items: list[tuple[str, str]] = field(default_factory=list)  # (item, changed|unchanged|...)
    warnings: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    seconds: float = 0.0
    health: str = ""
    error: str | None = None

    @property
    def changed(self) -> bool:
        return any(status != "unchanged" for _, status in self.items)


def desired_files(d: Deployment, layout: Layout = DEFAULT) -> list[ManagedFile]:
    """Everything the host should hold: the rendered configuration and the host tools."""
    return sorted(render(d, layout) + host_tools(), key=lambda f: f.path)


def instance_files(instances: Sequence[Instance], *, tools: bool = True) -> list[ManagedFile]:
    """Every file of a host's Gateways, each rendered in its own layout, and (``tools``) the
    host tools they share, once."""
    files = [f for i in instances for f in render(i.deployment, i.layout)]
    return sorted(files + (host_tools() if tools else []), key=lambda f: f.path)


def gather(host: Host, d: Deployment, files: list[ManagedFile],
           extra_units: tuple[str, ...] = (), layout: Layout = DEFAULT) -> Facts:
    """Read the host's facts in one round trip."""
    command = facts_command([f.path for f in files], [*layout.enabled_units, *extra_units],
                            d.service_user, d.gateway_dir, layout)
    result = host.conn.run(command, hide=True, warn=True, in_stream=False)
    if not result.ok:
        raise OpsError(f"reading the host's facts failed: {result.stderr.strip()[-200:]}")
    return parse_facts(result.stdout)


def install_host(spec: str, d: Deployment, options: InstallOptions,
                 progress: Progress) -> HostReport:
    """Connect to one host and install there; failures end up in the report, never as an
    exception (a host that cannot be reached included)."""
    try:
        check_fits(options.gateway, d.gateway_sha256, d.tws_major_vrsn)
        conn = open_host(spec, trust_new_host=options.trust_new_host,
                         ssh_configs=options.ssh_configs)
    except OpsError as exc:
        return HostReport(host=spec, error=str(exc))
    try:
        return install_on(Host(conn, spec), d, options, progress)
    finally:
        conn.close()


def install_on(host: Host, d: Deployment, options: InstallOptions,
               progress: Progress) -> HostReport:
    """Install over a connection the caller holds (and keeps: go-live and migrate go on using
    it); failures end up in the report, never as an exception."""
    report = HostReport(host=host.name)
    started = time.monotonic()
    try:
        check_fits(options.gateway, d.gateway_sha256, d.tws_major_vrsn)
        files = sorted([*desired_files(d), *options.extra_files,
                        *dropins(options.bot_units, options.bot_wait_s)], key=lambda f: f.path)
        facts = gather(host, d, files, options.extra_units)
        report.warnings = preflight(facts)
        check_arch(options.gateway, facts.arch)
        host.sudo = facts.privilege == "sudo"
        if facts.trading_mode not in (None, "live") and d.is_live and not options.allow_live_switch:
            now = ("trades paper" if facts.trading_mode == "paper" else
                   "has installed settings that do not read, so it is not known to trade live")
            raise OpsError(f"this host {now}; switch it to live with `invoke go-live` "
                           "(confirmation, checks, a paper backup and automatic rollback)")
        plan = make_plan(facts, files, options.ibc, options.gateway, options.extra_units,
                         tuple(f.path for f in options.extra_files))
        if not options.start_gateway:
            plan.gateway_action = None
        if not facts.gateway_source and options.gateway is None:
            raise OpsError(f"IB Gateway {d.tws_major_vrsn} is not installed at {d.gateway_dir}; "
                           "give --gateway-installer PATH (the offline Linux installer)")
        if facts.ibc_source is None and options.ibc is None:
            raise OpsError(f"IBC is not installed in {DEFAULT.ibc_dir}; give --ibc-zip PATH "
                           "or --ibc-version X.Y.Z")
        if plan.gateway is not None and replaces_running_build(facts, options):
            from ibkr_ops.remote import upgrade  # noqa: PLC0415 - it imports install_on

            return upgrade.from_install(host, d, plan.gateway, options, progress)
        report.items = plan_items(plan, dry_run=options.dry_run)
        if options.dry_run:
            report.diff = _diffs(host, plan, d)
            report.health = "not checked (dry run)"
            return report
        run_steps(host, converge.steps(plan, d), progress)
        if not options.start_gateway:
            report.health = "not checked (Gateway left for the caller to start)"
            return report
        report.health = wait_healthy(host, options.wait_s, progress)
        if plan.changes_anything and options.notify:
            notify(host, "info", f"ibkr-ops: installed and healthy ({d.trading_mode}, API port "
                                 f"{d.api_port}); changed: {change_summary(report)}")
    except OpsError as exc:
        report.error = str(exc)
    except OSError as exc:  # the connection dropped mid-run
        report.error = (f"connection lost ({exc.strerror or type(exc).__name__}); re-run: "
                        "completed steps are kept and the rest is redone")
    finally:
        report.seconds = time.monotonic() - started
        with contextlib.suppress(OSError):
            host.cleanup()
    return report


def install_files(host: Host, d: Deployment, options: InstallOptions,
                  progress: Progress) -> HostReport:
    """Everything of ``d`` in place with the Gateway left as it runs and nobody notified, for
    a caller that restarts it itself (go-live, upgrade); OpsError when that fails."""
    report = install_on(host, d, dataclasses.replace(options, start_gateway=False, notify=False),
                        progress)
    if report.error:
        raise OpsError(report.error)
    return report


def replaces_running_build(facts: Facts, options: InstallOptions) -> bool:
    """Whether a new build would replace the Gateway a host has enabled: then it goes beside
    it, with the upgrade's switch and rollback (a dry run only shows the plan)."""
    enabled = facts.units.get(DEFAULT.gateway_unit, ("none", ""))[0] == "enabled"
    return enabled and options.start_gateway and not options.dry_run


def change_summary(report: HostReport) -> str:
    """What changed, short enough for a notification: items by name, files by count."""
    changed = [name for name, status in report.items if status != "unchanged"]
    files = [name for name in changed if name.startswith("/")]
    named = [name for name in changed if not name.startswith("/")]
    return ", ".join([*named, f"{len(files)} file(s)"] if files else named)


def plan_items(plan: Plan, *, dry_run: bool) -> list[tuple[str, str]]:
    """The plan as report rows; a dry run says 'would change'."""
    mark = "would change" if dry_run else "changed"
    rows = [("packages" + (f" ({' '.join(plan.packages)})" if plan.packages else ""),
             mark if plan.packages else "unchanged"),
            ("service user", mark if plan.create_user else "unchanged"),
            ("IBC", mark if plan.ibc else "unchanged"),
            ("IB Gateway", mark if plan.gateway else "unchanged")]
    rows += [(f.path, mark) for f in plan.files]
    rows += [(f.path, "unchanged") for f in plan.unchanged_files]
    rows.append(("units enabled", mark if plan.enable else "unchanged"))
    action = f"{plan.gateway_action} ({plan.gateway_reason})" if plan.gateway_action else ""
    rows.append((f"gateway {action}".rstrip(), mark if plan.gateway_action else "unchanged"))
    return rows


def health(host: Host) -> tuple[bool, str]:
    """Run the host's health check once: (healthy, one-line summary)."""
    result = host.root(f"{DEFAULT.health_check_tool} --json", warn=True, timeout=60)
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return False, lines[-1][:200] if lines else f"no output (exit {result.exited})"
    failing = [f"{c['name']}: {c['status']} {c.get('detail', '')}".strip()
               for c in data.get("checks", []) if c.get("status") in ("fail", "warn")]
    if data.get("healthy"):
        accounts = ",".join(data.get("accounts") or [])
        return True, f"healthy (accounts {accounts or '?'}, {data.get('elapsed_ms', '?')} ms)"
    return False, "; ".join(failing) or "unhealthy"


def wait_healthy(host: Host, wait_s: float, progress: Progress) -> str:
    """Poll the health check until it passes, saying what is awaited; bounded."""
    started = time.monotonic()
    last_said = -10.0
    while True:
        ok, summary = health(host)
        elapsed = time.monotonic() - started
        if ok:
            return summary
        if elapsed > wait_s:
            raise OpsError(f"not healthy after {wait_s:.0f} s: {summary}; see `invoke logs "
                           f"--host {host.name}`")
        if elapsed - last_said >= 10:
            progress(f"waiting for the Gateway to log in and answer ({elapsed:.0f} s): {summary}")
            last_said = elapsed
        time.sleep(2)


def notify(host: Host, level: str, message: str) -> None:
    """Send a notification from the host (it holds the webhook); failures only warn."""
    host.root(f"{DEFAULT.notify_tool} --level {shlex.quote(level)} {shlex.quote(message)}",
              warn=True,
              timeout=90)


def _diffs(host: Host, plan: Plan, d: Deployment) -> list[str]:
    """The dry run's diffs: every secret masked, the host's current ones included."""
    planned = [s.reveal() for s in (d.password, d.discord_webhook_url) if s is not None]
    binary = [f for f in plan.files if f.path.endswith(".zip")]
    text = [(f.path, host.read_file(f.path), f.content) for f in plan.files if f not in binary]
    return [*(f"~ {f.path} (binary, {len(f.content)} bytes)" for f in binary),
            *diff.unified(text, planned)]

"""`invoke install` for one host: facts, plan, apply, wait for health, report.

Order matters for "never half-configured": everything is uploaded and put in place (each file
by rename) before any service is touched, so the running Gateway keeps running on complete
old files until the new ones are all there, and a run cut short converges on the next run.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ibkr_ops.botunit import dropins
from ibkr_ops.errors import OpsError
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import diff
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource, host_tools
from ibkr_ops.remote.facts import Facts, facts_command, parse_facts, preflight
from ibkr_ops.remote.hosts import open_host
from ibkr_ops.remote.plan import Plan, make_plan
from ibkr_ops.remote.primitives import Host
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
    """Install on one host; failures end up in the report, never as an exception."""
    report = HostReport(host=spec)
    started = time.monotonic()
    host: Host | None = None
    try:
        conn = open_host(spec, trust_new_host=options.trust_new_host,
                         ssh_configs=options.ssh_configs)
        host = Host(conn, spec)
        files = sorted([*desired_files(d), *options.extra_files,
                        *dropins(options.bot_units, options.bot_wait_s)], key=lambda f: f.path)
        facts = gather(host, d, files, options.extra_units)
        report.warnings = preflight(facts)
        host.sudo = facts.privilege == "sudo"
        if facts.trading_mode == "paper" and d.is_live and not options.allow_live_switch:
            raise OpsError("this host trades paper; switch it to live with `invoke go-live` "
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
        report.items = plan_items(plan, dry_run=options.dry_run)
        if options.dry_run:
            report.diff = _diffs(host, plan, d)
            report.health = "not checked (dry run)"
            return report
        apply(host, d, plan, progress)
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
        if host is not None:
            with contextlib.suppress(OSError):
                host.cleanup()
            host.conn.close()
    return report


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


def apply(host: Host, d: Deployment, plan: Plan, progress: Progress) -> None:
    """Carry out a plan; each step is safe to repeat if the run is cut short."""
    user, layout = shlex.quote(d.service_user), plan.layout
    if plan.packages:
        progress(f"installing packages: {' '.join(plan.packages)}")
        host.root("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                  + " ".join(shlex.quote(p) for p in plan.packages),
                  what="apt-get install", timeout=900)
    if plan.create_user:
        progress(f"creating service user {d.service_user}")
        host.root(f"useradd --create-home --user-group --shell /bin/bash {user}",
                  what="creating the service user")
    host.root(f"install -d -m 0755 {_words(layout.root_dirs)} && "
              f"install -d -m 0750 -o {user} -g {user} {_words(layout.user_dirs(d.home))}")
    if plan.ibc:
        install_ibc(host, plan.ibc, progress, layout)
    if plan.gateway:
        install_gateway(host, d, plan.gateway, progress)
    for f in plan.files:
        progress(f"writing {f.path}")
        host.put_file(f.path, f.content, f.mode, f.owner, f.group)
    if plan.daemon_reload:
        host.root("systemctl daemon-reload")
    if plan.enable:
        progress(f"enabling {' '.join(plan.enable)}")
        host.root("systemctl enable --quiet " + " ".join(plan.enable))
    # The login watch runs before the Gateway (re)starts, so it sees that login.
    host.root(f"systemctl start {layout.restart_timer} {layout.health_timer} "
              f"{layout.watch_unit} " + " ".join(plan.extra_units))
    if plan.restart_watch:
        host.root(f"systemctl restart {layout.watch_unit}")
    if plan.restart_extra:
        host.root("systemctl restart " + " ".join(plan.restart_extra))
    if plan.restart_display:
        host.root(f"systemctl restart {layout.display_unit}")
    if plan.gateway_action:
        progress(f"{plan.gateway_action}ing the Gateway ({plan.gateway_reason})")
        host.root(f"systemctl reset-failed {layout.gateway_unit} 2>/dev/null; "
                  f"systemctl {plan.gateway_action} {layout.gateway_unit}")


def _words(paths: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(p) for p in paths)


def install_ibc(host: Host, ibc: IbcSource, progress: Progress,
                layout: Layout = DEFAULT) -> None:
    """Unpack IBC beside its directory, then swap directories: never a half-unpacked IBC."""
    progress(f"installing IBC {ibc.version}")
    if ibc.data is not None:
        zip_path = host.upload(ibc.data, "ibc.zip")
        fetch = ""
    else:
        zip_path = f"{host.tmpdir()}/ibc.zip"
        fetch = (f"curl -fsSL --max-time 120 -o {shlex.quote(zip_path)} "
                 f"{shlex.quote(ibc.url or '')} || {{ echo 'cannot download IBC {ibc.version} "
                 "on the host (no access to github.com?); use --ibc-zip' >&2; exit 1; }; ")
    final = layout.ibc_dir
    new, old = f"{final}.ibkr-ops-new", f"{final}.ibkr-ops-old"
    host.root(
        f"set -e; {fetch}unzip -tq {shlex.quote(zip_path)} >/dev/null; rm -rf {new} {old}; "
        f"mkdir -p {new}; unzip -q -o {shlex.quote(zip_path)} -d {new}; "
        f"chmod -R u=rwX,go=rX {new}; chmod 0755 {new}/*.sh {new}/scripts/*.sh; "
        f"printf '%s\\n' {shlex.quote(ibc.ident)} > {layout.source_marker(new)}; "
        f"if [ -e {final} ]; then mv {final} {old}; fi; mv {new} {final}; rm -rf {old}",
        what="installing IBC", timeout=300)


def install_gateway(host: Host, d: Deployment, gateway: GatewayInstaller,
                    progress: Progress) -> None:
    """Run the install4j installer unattended as the service user; mark it complete last."""
    progress(f"installing IB Gateway into {d.gateway_dir} (unattended)")
    with gateway.path.open("rb") as handle:
        staged = host.put_stream(handle, "gateway-installer.sh")
    user, target = shlex.quote(d.service_user), shlex.quote(d.gateway_dir)
    marker = shlex.quote(DEFAULT.source_marker(d.gateway_dir))
    runnable = shlex.quote(f"{d.home}/.ibkr-ops-installer.sh")
    host.root(
        f"set -e; install -m 0700 -o {user} -g {user} {shlex.quote(staged)} {runnable}; "
        f"rm -rf {target}; runuser -u {user} -- {runnable} -q -dir {target} >/dev/null; "
        f"rm -f {runnable}; test -d {target}/jars || "
        f"{{ echo 'the installer left no jars/ in {d.gateway_dir}' >&2; exit 1; }}; "
        f"printf '%s\\n' {shlex.quote(gateway.ident)} > {marker}; chown {user}:{user} {marker}",
        what="installing the Gateway", timeout=900)


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

"""`invoke install` for one host: facts, plan, its steps (``converge``), health, report.

The install runs over a connection it is given, so go-live and migrate install on the
connection they already hold: one SSH session per host per task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ibkr_ops.botunit import dropins
from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.gateway_installer import check_arch, check_fits
from ibkr_ops.host import schema
from ibkr_ops.instances import Instance, check_installed, check_memory, left_alone, stagger
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import converge, diff
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource, host_tools
from ibkr_ops.remote.facts import Facts, facts_command, parse_facts, preflight
from ibkr_ops.remote.gateways import tool_command
from ibkr_ops.remote.hosts import open_host
from ibkr_ops.remote.plan import HostPlan, Plan, make_host_plan
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
    exit_code: int = 1
    # The Gateway instances installed (none: the single-Gateway layout).
    instances: list[str] = field(default_factory=list)

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
           extra_units: tuple[str, ...] = (), layout: Layout = DEFAULT,
           layouts: Sequence[Layout] = ()) -> Facts:
    """Read the host's facts in one round trip (the units of ``layout`` and ``layouts``)."""
    units = dict.fromkeys([*layout.enabled_units, *(u for other in layouts
                                                    for u in other.enabled_units), *extra_units])
    command = facts_command([f.path for f in files], units, d.service_user, d.gateway_dir, layout)
    result = host.conn.run(command, hide=True, warn=True, in_stream=False)
    if not result.ok:
        raise OpsError(f"reading the host's facts failed: {result.stderr.strip()[-200:]}")
    return parse_facts(result.stdout)


def install_host(spec: str, d: Deployment | Sequence[Instance], options: InstallOptions,
                 progress: Progress) -> HostReport:
    """Connect to one host and install there (one deployment on the single-Gateway layout, or
    a host's instances); failures end up in the report, never as an exception (a host that
    cannot be reached included)."""
    found = _as_instances(d)
    try:
        first = found[0].deployment
        check_fits(options.gateway, first.gateway_sha256, first.tws_major_vrsn)
        conn = open_host(spec, trust_new_host=options.trust_new_host,
                         ssh_configs=options.ssh_configs)
    except OpsError as exc:
        return HostReport(host=spec, error=str(exc), exit_code=exc.exit_code)
    try:
        return install_instances(Host(conn, spec), found, options, progress)
    finally:
        conn.close()


def _as_instances(d: Deployment | Sequence[Instance]) -> list[Instance]:
    # A deployment given as such keeps its restart time: it is the host's one Gateway.
    return [Instance("", d, None, restart_set=True)] if isinstance(d, Deployment) else list(d)


def install_on(host: Host, d: Deployment, options: InstallOptions,
               progress: Progress) -> HostReport:
    """Install one deployment on the single-Gateway layout over a connection the caller holds
    (and keeps: go-live and migrate go on using it); failures end up in the report."""
    return install_instances(host, _as_instances(d), options, progress)


def install_instances(host: Host, instances: Sequence[Instance], options: InstallOptions,
                      progress: Progress) -> HostReport:
    """Install a host's Gateways in one plan over a connection the caller holds: one facts
    round trip, what they share once, each instance's files and units, each Gateway started
    or restarted by its own changes only, then each one's health. Failures end up in the
    report, never as an exception."""
    report = HostReport(host=host.name, instances=[i.name for i in instances if i.name])
    started = time.monotonic()
    try:
        d = instances[0].deployment
        check_fits(options.gateway, d.gateway_sha256, d.tws_major_vrsn)
        extra = [*options.extra_files, *_bot_dropins(instances, options)]
        facts = gather(host, d, [*instance_files(instances), *extra], options.extra_units,
                       instances[0].layout, [i.layout for i in instances] + [DEFAULT])
        report.warnings = preflight(facts)
        check_arch(options.gateway, facts.arch)
        host.sudo = facts.privilege == "sudo"
        into = migration_target(instances, facts)
        check_installed(instances, facts)
        check_memory(instances, facts)
        instances = stagger(instances, _others(instances, facts), _installed(facts, into))
        _check_live_switch(instances, facts, into, options)
        extra_paths = tuple(f.path for f in options.extra_files)
        plan = make_host_plan(
            facts, [(i.layout, sorted([*instance_files([i]), *(extra if n == 0 else [])],
                                      key=lambda f: f.path))
                    for n, i in enumerate(instances)],
            options.ibc, options.gateway, options.extra_units, extra_paths,
            into.layout if into else None)
        if not options.start_gateway:
            for one in plan.plans:
                one.gateway_action = None
        _check_sources(facts, options, d)
        single = len(instances) == 1 and instances[0].name is None
        if plan.shared.gateway is not None and replaces_running_build(
                facts, options, [i.layout for i in instances]) and (
                single or switches_together(facts, instances, plan)):
            from ibkr_ops.remote import upgrade  # noqa: PLC0415 - it imports install_on

            return upgrade.from_install(host, d if single else instances, plan.shared.gateway,
                                        options, progress)
        report.items = plan_items(plan, dry_run=options.dry_run)
        if options.dry_run:
            report.diff = _diffs(host, plan, instances)
            report.health = "not checked (dry run)"
            return report
        run_steps(host, converge.host_steps(plan, [i.deployment for i in instances]), progress)
        if not options.start_gateway:
            report.health = "not checked (Gateway left for the caller to start)"
            return report
        healths = [(i, wait_healthy(host, options.wait_s, progress, i.layout)) for i in instances]
        report.health = "; ".join(f"{i.name}: {h}" if i.name else h for i, h in healths)
        if options.notify:
            for i, one in zip(instances, plan.plans, strict=True):
                if one.changes_anything or plan.migrate_into is not None:
                    notify(host, "info", installed_message(i, report), i.layout)
    except OpsError as exc:
        report.error, report.exit_code = str(exc), exc.exit_code
    except OSError as exc:  # the connection dropped mid-run
        report.error = (f"connection lost ({exc.strerror or type(exc).__name__}); re-run: "
                        "completed steps are kept and the rest is redone")
    finally:
        report.seconds = time.monotonic() - started
        with contextlib.suppress(OSError):
            host.cleanup()
    return report


def _check_sources(facts: Facts, options: InstallOptions, d: Deployment) -> None:
    """IBC and the Gateway come from the options or are on the host already."""
    if not facts.gateway_source and options.gateway is None:
        raise OpsError(f"IB Gateway {d.tws_major_vrsn} is not installed at {d.gateway_dir}; "
                       "give --gateway-installer PATH (the offline Linux installer)")
    if facts.ibc_source is None and options.ibc is None:
        raise OpsError(f"IBC is not installed in {DEFAULT.ibc_dir}; give --ibc-zip PATH "
                       "or --ibc-version X.Y.Z")


def installed_message(i: Instance, report: HostReport) -> str:
    """The install's notification of one Gateway, its instance named."""
    d = i.deployment
    what = f"instance {i.name}, {d.trading_mode}" if i.name else d.trading_mode
    return (f"ibkr-ops: installed and healthy ({what}, API port {d.api_port}); changed: "
            f"{change_summary(report)}")


def _bot_dropins(instances: Sequence[Instance], options: InstallOptions) -> list[ManagedFile]:
    if options.bot_units and len(instances) > 1:
        raise UsageError("--bot-unit orders a bot after one Gateway: give it with one "
                         "credentials file (one instance) at a time")
    return dropins(options.bot_units, options.bot_wait_s, instances[0].layout)


def migration_target(instances: Sequence[Instance], facts: Facts) -> Instance | None:
    """The instance that takes over the host's single-Gateway layout: the one that logs in
    as its IBKR_USERNAME (one login, one account's settings). None when the host has no such
    layout or no named instance is given; a host whose Gateways would otherwise be left
    beside, or in the way of, the files given is refused (UsageError)."""
    named = [i for i in instances if i.name is not None]
    if not named:
        # Beside a single-Gateway layout that is there already, a file without a name is
        # that Gateway's, as before instances existed; it never makes one beside instances.
        if facts.instances and not facts.single_layout:
            raise UsageError(
                f"this host runs Gateway instances ({', '.join(facts.instances)}); give each "
                f"its credentials file with {schema.INSTANCE.key}, not one file without it")
        return None
    if not facts.single_layout:
        return None
    username = facts.installed[None].username
    found = [i for i in named if username is not None
             and i.deployment.username.casefold() == username.casefold()]
    if not found:
        login = f"{schema.USERNAME.key} {username}" if username else \
            f"whose {schema.USERNAME.key} could not be read"
        raise UsageError(f"this host runs a single Gateway ({login}) that none of the files "
                         "logs in as; add its credentials file or uninstall it first")
    return found[0]


def _others(instances: Sequence[Instance], facts: Facts) -> dict[str, tuple[str, str]]:
    """The restart times of the host's instances this install leaves alone."""
    return {name: found.restart for name, found in left_alone(instances, facts).items()
            if found.restart is not None}


def _installed(facts: Facts, into: Instance | None) -> dict[str | None, tuple[str, str]]:
    """The restart time each instance has on the host now; the instance that takes over the
    single-Gateway layout has that Gateway's."""
    have = {name: found.restart for name, found in facts.installed.items()
            if found.restart is not None}
    if into is not None and None in have:
        have[into.name] = have.pop(None)
    return have


def _check_live_switch(instances: Sequence[Instance], facts: Facts, into: Instance | None,
                       options: InstallOptions) -> None:
    """Paper to live only through go-live (confirmation, checks, backup) or a live migration."""
    for i in instances:
        if not i.deployment.is_live or options.allow_live_switch:
            continue
        # By name: the stagger may have given the instance a new restart time (a new value).
        moved = into is not None and i.name == into.name
        if i.name is None:
            mode = facts.trading_mode
        else:
            found = facts.installed.get(None if moved else i.name)
            mode = found.trading_mode if found else None
        if mode in (None, "live"):
            continue
        now = ("trades paper" if mode == "paper" else
               "has installed settings that do not read, so it is not known to trade live")
        whose = f"this host's Gateway {i.name}" if i.name and not moved else "this host"
        raise OpsError(f"{whose} {now}; switch it to live with `invoke go-live` "
                       "(confirmation, checks, a paper backup and automatic rollback)")


def install_files(host: Host, d: Deployment | Sequence[Instance], options: InstallOptions,
                  progress: Progress) -> HostReport:
    """Everything of ``d`` (the single Gateway's deployment, or instances) in place with the
    Gateway left as it runs and nobody notified, for a caller that restarts it itself
    (go-live, upgrade); OpsError when that fails."""
    report = install_instances(host, _as_instances(d),
                               dataclasses.replace(options, start_gateway=False, notify=False),
                               progress)
    if report.error:
        raise OpsError(report.error)
    return report


def replaces_running_build(facts: Facts, options: InstallOptions,
                           layouts: Sequence[Layout] = (DEFAULT,)) -> bool:
    """Whether a new build would replace a Gateway a host has enabled: then it goes beside
    it, with the upgrade's switch and rollback (a dry run only shows the plan)."""
    enabled = any(facts.units.get(layout.gateway_unit, ("none", ""))[0] == "enabled"
                  for layout in layouts)
    return enabled and options.start_gateway and not options.dry_run


def switches_together(facts: Facts, instances: Sequence[Instance], plan: HostPlan) -> bool:
    """Whether the upgrade can switch a host of instances to a new build: every instance
    given is installed there already and none moves out of the single-Gateway layout (the
    upgrade switches every Gateway of the host; a new instance is installed as before)."""
    return plan.migrate_into is None and all(i.name in facts.installed for i in instances)


def change_summary(report: HostReport) -> str:
    """What changed, short enough for a notification: items by name, files by count."""
    changed = [name for name, status in report.items if status != "unchanged"]
    files = [name for name in changed if name.startswith("/")]
    named = [name for name in changed if not name.startswith("/")]
    return ", ".join([*named, f"{len(files)} file(s)"] if files else named)


def plan_items(plan: Plan | HostPlan, *, dry_run: bool) -> list[tuple[str, str]]:
    """The plan as report rows, what the Gateways share first, then each instance's; a dry
    run says 'would change'."""
    host = plan if isinstance(plan, HostPlan) else HostPlan([plan])
    mark = "would change" if dry_run else "changed"
    shared = host.shared
    rows = [("packages" + (f" ({' '.join(shared.packages)})" if shared.packages else ""),
             mark if shared.packages else "unchanged"),
            ("service user", mark if shared.create_user else "unchanged"),
            ("IBC", mark if shared.ibc else "unchanged"),
            ("IB Gateway", mark if shared.gateway else "unchanged")]
    if host.migrate_into is not None:
        rows.append((f"{DEFAULT.gateway_unit} moves into {host.migrate_into.gateway_unit} "
                     "(settings and state kept, one restart)", mark))
    rows += [(f.path, mark) for f in host.files]
    rows += [(f.path, "unchanged") for f in host.unchanged_files]
    for one in host.plans:
        whose = f" ({one.layout.instance})" if one.layout.instance else ""
        rows.append((f"units enabled{whose}", mark if one.enable else "unchanged"))
        action = f"{one.gateway_action} ({one.gateway_reason})" if one.gateway_action else ""
        rows.append((f"gateway{whose} {action}".rstrip(),
                     mark if one.gateway_action else "unchanged"))
    return rows


def health(host: Host, layout: Layout = DEFAULT) -> tuple[bool, str]:
    """Run the host's health check of one Gateway once: (healthy, one-line summary)."""
    result = host.root(tool_command(layout.health_check_tool, layout, "--json"), warn=True,
                       timeout=60)
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


def wait_healthy(host: Host, wait_s: float, progress: Progress,
                 layout: Layout = DEFAULT) -> str:
    """Poll one Gateway's health check until it passes, saying what is awaited; bounded."""
    started = time.monotonic()
    last_said = -10.0
    whose = f"Gateway {layout.instance}" if layout.instance else "Gateway"
    while True:
        ok, summary = health(host, layout)
        elapsed = time.monotonic() - started
        if ok:
            return summary
        if elapsed > wait_s:
            instance = f" --instance {layout.instance}" if layout.instance else ""
            raise OpsError(f"{'' if layout.instance is None else whose + ' '}not healthy after "
                           f"{wait_s:.0f} s: {summary}; see `invoke logs --host {host.name}"
                           f"{instance}`")
        if elapsed - last_said >= 10:
            progress(f"waiting for the {whose} to log in and answer ({elapsed:.0f} s): {summary}")
            last_said = elapsed
        time.sleep(2)


def notify(host: Host, level: str, message: str, layout: Layout = DEFAULT) -> None:
    """Send a notification from the host (it holds the webhook) as one Gateway's; failures
    only warn."""
    host.root(tool_command(layout.notify_tool, layout, "--level", level, message), warn=True,
              timeout=90)


def _diffs(host: Host, plan: HostPlan, instances: Sequence[Instance]) -> list[str]:
    """The dry run's diffs: every secret masked, the host's current ones included."""
    planned = [s.reveal() for i in instances
               for s in (i.deployment.password, i.deployment.discord_webhook_url)
               if s is not None]
    binary = [f for f in plan.files if f.path.endswith(".zip")]
    text = [(f.path, host.read_file(f.path), f.content) for f in plan.files if f not in binary]
    return [*(f"~ {f.path} (binary, {len(f.content)} bytes)" for f in binary),
            *diff.unified(text, planned)]

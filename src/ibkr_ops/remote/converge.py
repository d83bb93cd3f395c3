"""A plan as the ordered steps that carry it out on a host, each naming its command.

Order matters for "never half-configured": everything is uploaded and put in place (each file
by rename) before any service is touched, so the running Gateway keeps running on complete
old files until the new ones are all there, and a run cut short converges on the next run.
Every step is safe to repeat. Pure: the steps are data, run by ``primitives.run_steps``.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence

from ibkr_ops.gateway_installer import PROVENANCE_FILE
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import added, builds, files, systemctl
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource
from ibkr_ops.remote.plan import HostPlan, Plan
from ibkr_ops.remote.primitives import STAGED, Step, Upload
from ibkr_ops.settings import Deployment


def steps(plan: Plan, d: Deployment) -> list[Step]:
    """Every step of ``plan`` for deployment ``d``, in the order they run."""
    return host_steps(HostPlan([plan]), [d])


def host_steps(plan: HostPlan, deployments: Sequence[Deployment]) -> list[Step]:
    """Every step of a host's plan, one deployment per instance plan: what the Gateways share
    once, every file, the move out of the single-Gateway layout, one daemon-reload, then each
    instance's units; a Gateway is started or restarted only by its own plan."""
    shared, d = plan.shared, deployments[0]
    user = shlex.quote(d.service_user)
    layouts = [p.layout for p in plan.plans]
    out: list[Step] = []
    if shared.packages:
        out.append(Step(added.recording_packages(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            + files.quoted(shared.packages)),
                        what="apt-get install", say=f"installing packages: "
                        f"{' '.join(shared.packages)}", timeout=900))
    if shared.create_user:
        out.append(Step(f"useradd --create-home --user-group --shell /bin/bash {user} && "
                        f"{added.recording_user(d.service_user)}",
                        what="creating the service user",
                        say=f"creating service user {d.service_user}"))
    root_dirs = dict.fromkeys(p for layout in layouts for p in layout.root_dirs)
    user_dirs = dict.fromkeys(p for layout in layouts for p in layout.user_dirs(d.home))
    out.append(Step(f"{files.make_dirs(root_dirs, 0o755)} && "
                    f"{files.make_dirs(user_dirs, 0o750, d.service_user)}",
                    what="creating the directories"))
    if shared.ibc:
        out.append(install_ibc(shared.ibc, shared.layout))
    if shared.gateway:
        out.append(install_gateway(d, shared.gateway, shared.layout))
    out += [files.put(f) for f in plan.files]
    if plan.migrate_into is not None:
        out += migration(plan.migrate_into, d)
    if plan.daemon_reload:
        out.append(Step(systemctl.daemon_reload(), what="systemctl daemon-reload"))
    for one in plan.plans:
        out += _instance_steps(one)
    return out


def _instance_steps(plan: Plan) -> list[Step]:
    """One Gateway's units: enabled, its timers and login watch started, what changed
    restarted, and its Gateway started or restarted if its own plan says so."""
    layout = plan.layout
    whose = f" of {layout.instance}" if layout.instance else ""
    out: list[Step] = []
    if plan.enable:
        out.append(Step(systemctl.enable(plan.enable), what=f"enabling the units{whose}",
                        say=f"enabling {' '.join(plan.enable)}"))
    # The login watch runs before the Gateway (re)starts, so it sees that login.
    out.append(Step(systemctl.start((layout.restart_timer, layout.health_timer,
                                     layout.watch_unit, *plan.extra_units)),
                    what=f"starting the timers and the login watch{whose}"))
    restarts = ([layout.watch_unit] if plan.restart_watch else []) + plan.restart_extra
    restarts += [layout.display_unit] if plan.restart_display else []
    out += [Step(systemctl.restart([unit]), what=f"restarting {unit}") for unit in restarts]
    if plan.gateway_action:
        out.append(Step(systemctl.afresh(plan.gateway_action, layout.gateway_unit),
                        what=f"{plan.gateway_action}ing the Gateway{whose}",
                        say=f"{plan.gateway_action}ing the Gateway{whose} "
                            f"({plan.gateway_reason})"))
    return out


def migration(into: Layout, d: Deployment) -> list[Step]:
    """The single-Gateway layout handed over to instance ``into``: its units stopped (the
    Gateway logs out cleanly, its settings saved), the Gateway's settings (jts.ini and the
    account directories, not the installation they sit beside) and the host tools' state
    copied where the instance keeps them, without overwriting what the instance already has
    (a repeated run), then its settings files moved into the backup directory and its units,
    needrestart override and metrics file (node_exporter would go on reading it) removed.
    The instance's own start comes later, with the others': with the stop here, one restart
    of that Gateway."""
    old = DEFAULT
    settings, new_settings = old.settings_dir(d.home), into.settings_dir(d.home)
    installation = posixpath.relpath(Layout.gateway_builds(d.home), settings)
    # Host-wide, not that Gateway's: it stays where it is.
    record = Layout.added_record()
    backup = f"{old.backup_dir}/single-gateway"
    oneshots = [u for u in old.units if u not in old.enabled_units]
    unit_files = files.quoted(old.unit_path(u) for u in old.units)
    kept = files.quoted((old.credentials, old.config_ini, old.ops_json))
    q = shlex.quote
    return [
        Step(f"{systemctl.disable_now(old.enabled_units, old.gateway_unit)}; "
             f"systemctl stop {' '.join(oneshots)}",
             what=f"stopping {old.gateway_unit}",
             say=f"stopping {old.gateway_unit}: its Gateway moves into {into.gateway_unit}",
             timeout=300),
        Step(f"set -e; cd {q(settings)}; for e in * .[!.]*; do [ -e \"$e\" ] || continue; "
             f"[ \"$e\" = {q(installation)} ] && continue; [ -e {q(new_settings)}/\"$e\" ] || "
             f"cp -a \"$e\" {q(new_settings)}/; done; "
             f"for e in {q(old.state_dir)}/*; do [ -f \"$e\" ] || continue; "
             f"[ \"$e\" = {q(record)} ] && continue; "
             f"[ -e {q(into.state_dir)}/\"${{e##*/}}\" ] || cp -a \"$e\" {q(into.state_dir)}/; done",
             what="copying the Gateway's settings and state",
             say=f"copying {settings} (not {installation}/) to {new_settings} and the state "
                 f"to {into.state_dir}"),
        # The settings files first: once ops.json is gone, the host has no single-Gateway
        # layout for a repeated run to move.
        Step(f"set -e; install -d -m 0700 -o root -g root {q(old.backup_dir)} {q(backup)}; "
             f"for f in {kept}; do if [ -f \"$f\" ]; then mv -f \"$f\" {q(backup)}/; fi; done; "
             f"rm -f {unit_files} {q(old.needrestart_conf)} {q(old.metrics_file)}",
             what="removing the single-Gateway layout",
             say=f"removing {old.gateway_unit} and its units; its settings files go to {backup}"),
    ]


def install_ibc(ibc: IbcSource, layout: Layout = DEFAULT) -> Step:
    """Unpack IBC beside its directory, then swap directories: never a half-unpacked IBC.
    A release (no zip given) is downloaded by the host itself into the staged path."""
    final = layout.ibc_dir
    new = f"{final}.ibkr-ops-new"
    fetch = "" if ibc.data is not None else (
        f"curl -fsSL --max-time 120 -o {STAGED} {shlex.quote(ibc.url or '')} || {{ echo "
        f"'cannot download IBC {ibc.version} on the host (no access to github.com?); use "
        "--ibc-zip' >&2; exit 1; }; ")
    return Step(
        f"set -e; {fetch}unzip -tq {STAGED} >/dev/null; rm -rf {new} {final}.ibkr-ops-old; "
        f"mkdir -p {new}; unzip -q -o {STAGED} -d {new}; "
        f"chmod -R u=rwX,go=rX {new}; chmod 0755 {new}/*.sh {new}/scripts/*.sh; "
        f"{files.record(ibc.ident, layout.source_marker(new))}; {files.swap_dir(new, final)}",
        what="installing IBC", say=f"installing IBC {ibc.version}", timeout=300,
        upload=Upload("ibc.zip", data=ibc.data))


def install_gateway(d: Deployment, gateway: GatewayInstaller, layout: Layout = DEFAULT, *,
                    link: bool = True) -> Step:
    """Run the install4j installer unattended as the service user into the build's own
    directory, beside any other build; mark it complete last. ``link``: point
    ``ibgateway/<major>`` at it now (a host with no Gateway running); an upgrade links it
    only while it switches (``builds.switch_command``)."""
    user = shlex.quote(d.service_user)
    build = Layout.build_dir(d.home, gateway.version)
    target = shlex.quote(build)
    runnable = shlex.quote(f"{d.home}/.ibkr-ops-installer.sh")
    marker = layout.source_marker(build)
    provenance = f"{build}/{PROVENANCE_FILE}"
    linked = f"; {builds.link(d.home, d.tws_major_vrsn, build, d.service_user)}" if link else ""
    return Step(
        f"set -e; install -m 0700 -o {user} -g {user} {STAGED} {runnable}; "
        f"rm -rf {target}; runuser -u {user} -- mkdir -p {target}; "
        f"runuser -u {user} -- {runnable} -q -dir {target} >/dev/null || "
        f"{{ rm -rf {target} {runnable}; exit 1; }}; "
        f"rm -f {runnable}; test -d {target}/jars || "
        f"{{ echo 'the installer left no jars/ in {build}' >&2; rm -rf {target}; exit 1; }}; "
        f"{files.record(gateway.provenance, provenance)}; {files.record(gateway.ident, marker)}; "
        f"chown {user}:{user} {shlex.quote(marker)} {shlex.quote(provenance)}{linked}",
        what="installing the Gateway", timeout=900,
        say=f"installing IB Gateway {gateway.version} into {build} (unattended)",
        upload=Upload("gateway-installer.sh", path=gateway.path))

"""A plan as the ordered steps that carry it out on a host, each naming its command.

Order matters for "never half-configured": everything is uploaded and put in place (each file
by rename) before any service is touched, so the running Gateway keeps running on complete
old files until the new ones are all there, and a run cut short converges on the next run.
Every step is safe to repeat. Pure: the steps are data, run by ``primitives.run_steps``.
"""

from __future__ import annotations

import shlex

from ibkr_ops.gateway_installer import PROVENANCE_FILE
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import added, builds, files, systemctl
from ibkr_ops.remote.artifacts import GatewayInstaller, IbcSource
from ibkr_ops.remote.plan import Plan
from ibkr_ops.remote.primitives import STAGED, Step, Upload
from ibkr_ops.settings import Deployment


def steps(plan: Plan, d: Deployment) -> list[Step]:
    """Every step of ``plan`` for deployment ``d``, in the order they run."""
    layout, user = plan.layout, shlex.quote(d.service_user)
    out: list[Step] = []
    if plan.packages:
        out.append(Step(added.recording_packages(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            + files.quoted(plan.packages)),
                        what="apt-get install", say=f"installing packages: "
                        f"{' '.join(plan.packages)}", timeout=900))
    if plan.create_user:
        out.append(Step(f"useradd --create-home --user-group --shell /bin/bash {user} && "
                        f"{added.recording_user(d.service_user)}",
                        what="creating the service user",
                        say=f"creating service user {d.service_user}"))
    out.append(Step(f"{files.make_dirs(layout.root_dirs, 0o755)} && "
                    f"{files.make_dirs(layout.user_dirs(d.home), 0o750, d.service_user)}",
                    what="creating the directories"))
    if plan.ibc:
        out.append(install_ibc(plan.ibc, layout))
    if plan.gateway:
        out.append(install_gateway(d, plan.gateway, layout))
    out += [files.put(f) for f in plan.files]
    if plan.daemon_reload:
        out.append(Step(systemctl.daemon_reload(), what="systemctl daemon-reload"))
    if plan.enable:
        out.append(Step(systemctl.enable(plan.enable), what="enabling the units",
                        say=f"enabling {' '.join(plan.enable)}"))
    # The login watch runs before the Gateway (re)starts, so it sees that login.
    out.append(Step(systemctl.start((layout.restart_timer, layout.health_timer,
                                     layout.watch_unit, *plan.extra_units)),
                    what="starting the timers and the login watch"))
    restarts = ([layout.watch_unit] if plan.restart_watch else []) + plan.restart_extra
    restarts += [layout.display_unit] if plan.restart_display else []
    out += [Step(systemctl.restart([unit]), what=f"restarting {unit}") for unit in restarts]
    if plan.gateway_action:
        out.append(Step(systemctl.afresh(plan.gateway_action, layout.gateway_unit),
                        what=f"{plan.gateway_action}ing the Gateway",
                        say=f"{plan.gateway_action}ing the Gateway ({plan.gateway_reason})"))
    return out


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

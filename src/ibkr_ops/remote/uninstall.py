"""`invoke uninstall` for one host: survey, plan what goes, show it or remove it, report.

Everything the install put on a host goes: units (the single Gateway's, every instance's,
templates), their enablement links, the drop-ins of the user's bot services (never the bot's
own unit), the host tools, the needrestart override, IBC, the Gateway builds, state, logs and
(unless kept) the settings. Two things the install may have added stay unless ``purge``: the
service user and the packages, because other software on the host may have come to use them;
the install's record of them (``remote.added``) stays with them, so a later purge still knows
which they are. The plan is pure (``make_plan`` on a survey), so what goes is testable without
a host; the dry run prints it and changes nothing.
"""

from __future__ import annotations

import dataclasses
import posixpath
import shlex
import time
from collections.abc import Callable

from ibkr_ops.errors import OpsError
from ibkr_ops.layout import DEFAULT, LIB_DIR, TOOLS, UNITS, Layout
from ibkr_ops.remote import added, files, systemctl, vnc
from ibkr_ops.remote.footprint import (
    Footprint,
    instance_in,
    parse_survey,
    survey_command,
    template,
)
from ibkr_ops.remote.install import Progress
from ibkr_ops.remote.primitives import Host, Step


@dataclasses.dataclass(frozen=True)
class UninstallOptions:
    """What to keep, and what beyond the layout's names is the product's on a host."""

    keep_settings: bool = False
    purge: bool = False
    dry_run: bool = False
    # Units and paths installs add beyond the layout's (the demo's in-guest Discord receiver).
    extra_units: tuple[str, ...] = ()
    extra_paths: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class UninstallPlan:
    """What goes from one host and what stays, in the order it is removed."""

    units: tuple[str, ...] = ()  # stopped, disabled, cleaned, forgotten by systemd
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (what, paths removed whole)
    prune: tuple[str, ...] = ()  # directories removed only when left empty, in order
    users: tuple[str, ...] = ()  # deleted with their home (purge)
    packages: tuple[str, ...] = ()  # purged unless other software needs them (purge)
    kept: tuple[str, ...] = ()  # what stays, and why
    live: tuple[str, ...] = ()  # Gateways trading live, or whose mode does not read
    bots: tuple[str, ...] = ()  # the user's services that lose their drop-in
    purge_state: bool = False  # the state directory (with the record) goes last

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for _, paths in self.groups for p in paths)

    @property
    def empty(self) -> bool:
        return not (self.units or self.paths or self.users or self.packages
                    or self.purge_state)


def _gateway_label(config_path: str) -> str:
    name = instance_in(config_path, lambda layout: layout.ops_json)
    return f"instance {name}" if name else "the Gateway"


def _summary(what: added.Added) -> str:
    users = [f"service user {user}" for user in what.users]
    return ", ".join([*users, f"{len(what.packages)} package(s)"] if what.packages else users)


def _units(found: Footprint, named: list[Layout], extra_units: tuple[str, ...]) -> list[str]:
    """The units to stop: the single Gateway's and the extras whose files are there, and
    every instance's, from its own files or from a template's."""
    files = found.unit_files
    return list(dict.fromkeys([
        *(u for u in (*DEFAULT.units, *extra_units) if u in files),
        *(layout.unit(u) for layout in named for u in UNITS
          if layout.unit(u) in files or template(u) in files)]))


def _kept(found: Footprint, options: UninstallOptions, users: list[str],
          settings_dirs: list[str], bots: list[str]) -> list[str]:
    """What stays, each with why, for the report."""
    kept = []
    if options.keep_settings:
        kept.append(f"{DEFAULT.config_dir} (settings, credentials, backups) and the Gateway's "
                    f"own settings in {', '.join(settings_dirs) or 'no settings directory'}")
    if options.purge:
        kept += [f"service user {user}: the install did not create it (or was run before "
                 "ibkr-ops recorded it); `userdel --remove` it yourself if unused"
                 for user in users if user not in found.added.users]
    elif found.added.users or found.added.packages:
        kept.append(f"{_summary(found.added)}, which the install added (recorded in "
                    f"{Layout.added_record()}): --purge removes them")
    return kept + [f"{bot}: your bot's service stays (only its drop-in goes); it has no "
                   "Gateway to wait for any more" for bot in bots]


def make_plan(found: Footprint, options: UninstallOptions) -> UninstallPlan:
    """What ``options`` remove of what the survey found (paths not yet checked to exist)."""
    named = [Layout(name) for name in found.instances()]
    layouts = [DEFAULT, *named]
    users = sorted({c.service_user for c in found.configs.values() if c is not None}
                   | set(found.added.users))
    homes = [Layout.home(user) for user in users]
    settings_dirs = sorted({layout.settings_dir(home) for layout in layouts for home in homes})
    groups: list[tuple[str, list[str]]] = [
        ("units", [Layout.unit_path(u) for u in found.unit_files] + found.links),
        ("bot drop-ins", found.dropins),
        ("host tools", [*(Layout.tool(t) for t in TOOLS), LIB_DIR]),
        ("needrestart override", sorted({*found.needrestart_confs(),
                                         *(layout.needrestart_conf for layout in layouts)})),
        ("IBC", [DEFAULT.ibc_dir]),
        ("Gateway builds", [path for home in homes
                            for path in (Layout.gateway_builds(home), Layout.builds_dir(home))]),
        # The record stays with what it records; it goes last, with a purge.
        ("state", [p for p in found.entries.get(DEFAULT.state_dir, [])
                   if p != Layout.added_record()]),
        ("logs", [DEFAULT.log_dir]),
        ("demo", list(options.extra_paths)),
        ("settings", [] if options.keep_settings else [DEFAULT.config_dir, *settings_dirs]),
    ]
    bots = sorted(posixpath.basename(posixpath.dirname(p)).removesuffix(".d")
                  for p in found.dropins)
    conf_dir = posixpath.dirname(DEFAULT.needrestart_conf)
    return UninstallPlan(
        units=tuple(_units(found, named, options.extra_units)),
        groups=tuple((what, tuple(dict.fromkeys(paths))) for what, paths in groups if paths),
        prune=(*sorted({posixpath.dirname(p) for p in found.dropins}), conf_dir,
               posixpath.dirname(conf_dir), DEFAULT.state_dir,
               *(Layout.tws_dir(home) for home in homes)),
        users=tuple(u for u in users if u in found.added.users) if options.purge else (),
        packages=found.added.packages if options.purge else (),
        kept=tuple(_kept(found, options, users, settings_dirs, bots)),
        live=tuple(sorted(_gateway_label(path) for path, config in found.configs.items()
                          if config is None or config.trading_mode == "live")),
        bots=tuple(bots), purge_state=options.purge)


def presence_command(plan: UninstallPlan) -> str:
    """Which of the plan's paths and users exist, and each unit's state (one round trip)."""
    paths = files.quoted((*plan.paths, DEFAULT.state_dir))
    users = " ".join(shlex.quote(u) for u in plan.users)
    units = " ".join(plan.units)
    return (f"for p in {paths}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then "
            f"printf 'HAS %s\\n' \"$p\"; fi; done; "
            f"for u in {users}; do id -u \"$u\" >/dev/null 2>&1 && printf 'USER %s\\n' \"$u\"; "
            f"done; for u in {units}; do "
            f"printf 'UNIT %s %s\\n' \"$u\" \"$(systemctl is-active \"$u\" 2>/dev/null)\"; done; "
            "true")


def narrow(plan: UninstallPlan, text: str) -> tuple[UninstallPlan, dict[str, str]]:
    """The plan with only the paths and users that exist; and each unit's state."""
    words = [line.split(" ", 2) for line in text.splitlines()]
    has = {w[1] for w in words if len(w) == 2 and w[0] == "HAS"}
    users = {w[1] for w in words if len(w) == 2 and w[0] == "USER"}
    states = {w[1]: w[2] for w in words if len(w) == 3 and w[0] == "UNIT"}
    groups = tuple((what, tuple(p for p in paths if p in has)) for what, paths in plan.groups)
    return (UninstallPlan(
        units=plan.units, groups=tuple(g for g in groups if g[1]), prune=plan.prune,
        users=tuple(u for u in plan.users if u in users), packages=plan.packages,
        kept=plan.kept, live=plan.live, bots=plan.bots,
        purge_state=plan.purge_state and DEFAULT.state_dir in has), states)


# Mark the recorded packages automatically installed, then purge those apt itself would now
# autoremove: a package other software has come to depend on (or recommends) stays, and
# nothing the host had before is touched. needrestart is suspended: our services are gone
# and the user's keep their running code until they restart.
_PURGE = r"""set -f
present=$(INSTALLED)
[ -n "$present" ] || { echo "PURGED"; echo "KEPT"; exit 0; }
apt-mark auto $present >/dev/null
gone=$(apt-get -s autoremove 2>/dev/null | awk '/^Remv / {sub(/:.*/, "", $2); print $2}' \
  | grep -xF "$present" || true)
if [ -n "$gone" ]; then
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get purge -y -q $gone >/dev/null
fi
kept=$present
[ -z "$gone" ] || kept=$(printf '%s\n' $present | grep -vxF "$gone" || true)
echo "PURGED" $gone
echo "KEPT" $kept
"""


_PURGE_STEP = "purging the packages"
# Every step ends in bounded time: a removal, even of a Gateway build on a slow disk, takes
# seconds; stopping waits for the Gateway's own stop timeout, a purge for apt.
STEP_TIMEOUT_S = 120
# A screen session `invoke vnc` left running (its transient unit) ends with the display.
VNC_UNITS = f"{vnc.UNIT_PREFIX}*.service"


def steps(plan: UninstallPlan) -> list[Step]:
    """Every step of ``plan``, in order: stop, clean, remove, prune, reload, purge."""
    out: list[Step] = []
    if plan.empty:
        return out
    if plan.units:
        units = " ".join(plan.units)
        out.append(Step(
            f"systemctl disable --now --quiet {units} 2>/dev/null; "
            f"systemctl stop {units} {shlex.quote(VNC_UNITS)} 2>/dev/null; "
            f"! systemctl is-active --quiet {units}",
            what="stopping the units", say=f"stopping and disabling {units}", timeout=300))
        out.append(Step(f"for u in {units}; do systemctl clean --what=all \"$u\" "
                        "2>/dev/null; done; true", what="cleaning the units' state"))
    out += [Step(f"rm -rf -- {files.quoted(paths)}", what=f"removing the {what}",
                 say=f"removing the {what}: " + (" ".join(paths) if len(paths) < 4 else
                                                 f"{len(paths)} paths"))
            for what, paths in plan.groups]
    if plan.prune:
        out.append(Step(f"for d in {files.quoted(plan.prune)}; do rmdir -- \"$d\" "
                        "2>/dev/null; done; true", what="removing emptied directories"))
    if plan.units:
        out.append(Step(f"{systemctl.daemon_reload()} && "
                        f"{{ systemctl reset-failed {' '.join(plan.units)} 2>/dev/null; true; }}",
                        what="systemctl daemon-reload"))
    out += [Step(f"userdel --remove {shlex.quote(user)} 2>&1 | grep -v 'mail spool' >&2; "
                 f"! id -u {shlex.quote(user)} >/dev/null 2>&1",
                 what=f"deleting the service user {user}",
                 say=f"deleting the service user {user} and its home") for user in plan.users]
    if plan.packages:
        script = _PURGE.replace("INSTALLED", added.installed("$RECORDED"))
        out.append(Step(f"RECORDED={shlex.quote(' '.join(plan.packages))} sh -c "
                        f"{shlex.quote(script)}", what=_PURGE_STEP, timeout=900,
                        say=f"purging the packages the install added: "
                            f"{' '.join(plan.packages)}"))
    if plan.purge_state:
        out.append(Step(f"rm -rf -- {shlex.quote(DEFAULT.state_dir)}",
                        what="removing the install's record"))
    return [s if s.timeout else dataclasses.replace(s, timeout=STEP_TIMEOUT_S) for s in out]


@dataclasses.dataclass
class UninstallReport:
    """What happened on one host (or would, on a dry run)."""

    host: str
    plan: UninstallPlan = dataclasses.field(default_factory=UninstallPlan)
    states: dict[str, str] = dataclasses.field(default_factory=dict)
    purged: tuple[str, ...] = ()
    needed: tuple[str, ...] = ()  # recorded packages other software needs: kept
    dry_run: bool = False
    seconds: float = 0.0


def purge_result(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The purge step's two lines: what apt purged, and what stayed because it is needed."""
    lines = {words[0]: tuple(words[1:]) for words in map(str.split, text.splitlines()) if words}
    return lines.get("PURGED", ()), lines.get("KEPT", ())


def survey(host: Host, options: UninstallOptions) -> tuple[UninstallPlan, dict[str, str]]:
    """Read the host (two round trips, changing nothing) and plan what goes."""
    result = host.root(survey_command(), what="surveying the host", timeout=120)
    plan = make_plan(parse_survey(result.stdout, options.extra_units), options)
    present = host.root(presence_command(plan), what="checking what exists", timeout=120)
    return narrow(plan, present.stdout)


def uninstall_on(host: Host, options: UninstallOptions, progress: Progress,
                 confirm: Callable[[UninstallPlan], None]) -> UninstallReport:
    """Survey and plan; then, unless a dry run, let ``confirm`` refuse (a live Gateway:
    nothing has changed yet) and remove. A failed step is an OpsError naming it; every step
    is safe to repeat, so a re-run finishes the job."""
    report = UninstallReport(host=host.name, dry_run=options.dry_run)
    started = time.monotonic()
    progress("surveying what ibkr-ops put on the host")
    report.plan, report.states = survey(host, options)
    if not (options.dry_run or report.plan.empty):
        confirm(report.plan)
        try:
            for step in steps(report.plan):
                if step.say:
                    progress(step.say)
                result = host.run_step(step)
                if step.what == _PURGE_STEP:
                    report.purged, report.needed = purge_result(result.stdout)
        except OSError as exc:  # the connection dropped mid-run
            raise OpsError(f"connection lost ({exc.strerror or type(exc).__name__}); re-run "
                           "the uninstall: what is gone stays gone, the rest goes") from None
    report.seconds = time.monotonic() - started
    return report

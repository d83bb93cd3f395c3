"""What `uninstall` removes and keeps, planned from recorded surveys of hosts, without a host."""

from __future__ import annotations

import base64
import posixpath
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from ibkr_ops.botunit import dropins
from ibkr_ops.errors import UsageError
from ibkr_ops.layout import DEFAULT, LIB_DIR, TOOLS, UNIT_DIR, UNITS, Layout
from ibkr_ops.remote import added
from ibkr_ops.remote.footprint import parse_survey, roots, survey_command, template
from ibkr_ops.remote.uninstall import (
    UninstallOptions,
    UninstallPlan,
    make_plan,
    narrow,
    presence_command,
    purge_result,
    steps,
)
from ibkr_ops.render import render
from ibkr_ops.settings import Deployment, deployment_from_env
from ibkr_ops.tasks.uninstall import confirm_live
from ibkr_ops.tasks.uninstall import uninstall as uninstall_task

HOME = DEFAULT.home("trader")
PAPER, LIVE = Layout("paper"), Layout("live")
DEMO_UNIT, DEMO_DIR = "ibkr-discord-sim.service", "/opt/ibkr-discord-sim"
EXTRAS = UninstallOptions(extra_units=(DEMO_UNIT,), extra_paths=(DEMO_DIR,))


def deployment(mode: str = "paper") -> Deployment:
    return deployment_from_env({"IBKR_USERNAME": "un_user", "IBKR_PASSWORD": "pw-un-secret",
                                "IBKR_TRADING_MODE": mode, "TWS_MAJOR_VRSN": "1030"})


def installed(layout: Layout, d: Deployment, bot: str | None = None) -> dict[str, str]:
    """Every file an install of ``d`` in ``layout`` leaves in the surveyed directories, by
    type (f file, l link), as a host would have them: rendered files, enablement links,
    state, logs and a bot's drop-in."""
    found = {f.path: "f" for f in render(d, layout)}
    found |= {f"{UNIT_DIR}/multi-user.target.wants/{u}": "l" for u in layout.enabled_units}
    found |= {f"{layout.state_dir}/login.json": "f", f"{layout.log_dir}/ibc.log": "f"}
    if bot:
        found |= {f.path: "f" for f in dropins((bot,), 300, layout)}
    return found


def survey(files: dict[str, str], record: str | None = None,
           broken_config: str | None = None, live: tuple[str, ...] = ()) -> str:
    """What ``survey_command`` prints on a host holding ``files``: each root's entries two
    levels down (directories implied), the ops.json files (paper, or live for those in
    ``live``), the install's record."""
    lines: set[str] = set()
    for path, kind in files.items():
        for root in roots():
            if path.startswith(root + "/"):
                parts = path[len(root) + 1:].split("/")
                for depth in (1, 2):
                    if len(parts) >= depth:
                        leaf = depth == len(parts)
                        lines.add(f"ENTRY {kind if leaf else 'd'} {root}/{'/'.join(parts[:depth])}")
    out = sorted(lines)
    for path in sorted(files):
        if path.endswith("/ops.json"):
            content = b"{not json" if path == broken_config else next(
                f.content for f in render(deployment("live" if path in live else "paper"),
                                          _layout_of(path))
                if f.path == path)
            out.append(f"CONFIG {path} {base64.b64encode(content).decode()}")
    if record is not None:
        out.append(f"RECORD {base64.b64encode(record.encode()).decode()}")
    return "\n".join(out) + "\n"


def _layout_of(path: str) -> Layout:
    name = posixpath.basename(posixpath.dirname(path))
    return DEFAULT if name == "ibkr" else Layout(name)


def plan_for(text: str, options: UninstallOptions = EXTRAS) -> UninstallPlan:
    return make_plan(parse_survey(text, options.extra_units), options)


def test_default_install_goes_whole_but_the_user_and_the_record() -> None:
    files = installed(DEFAULT, deployment(), bot="trading-bot.service")
    files[f"{UNIT_DIR}/{DEMO_UNIT}"] = "f"
    files[Layout.added_record()] = "f"
    plan = plan_for(survey(files, record="user trader\npackage x11vnc\n"))
    assert plan.units == (*DEFAULT.units, DEMO_UNIT)
    groups = dict(plan.groups)
    assert set(groups["units"]) == {DEFAULT.unit_path(u) for u in (*DEFAULT.units, DEMO_UNIT)} | {
        p for p, kind in files.items() if kind == "l"}
    assert groups["bot drop-ins"] == (DEFAULT.dropin_path("trading-bot.service"),)
    assert groups["host tools"] == (*(Layout.tool(t) for t in TOOLS), LIB_DIR)
    assert groups["needrestart override"] == (DEFAULT.needrestart_conf,)
    assert groups["IBC"] == (DEFAULT.ibc_dir,)
    assert groups["Gateway builds"] == (Layout.gateway_builds(HOME), Layout.builds_dir(HOME))
    # The record stays with the user and packages it names; the rest of the state goes.
    assert groups["state"] == (f"{DEFAULT.state_dir}/login.json",)
    assert groups["logs"] == (DEFAULT.log_dir,) and groups["demo"] == (DEMO_DIR,)
    assert groups["settings"] == (DEFAULT.config_dir, DEFAULT.settings_dir(HOME))
    assert (plan.users, plan.packages, plan.purge_state) == ((), (), False)
    assert any("service user trader, 1 package(s)" in k and "--purge" in k for k in plan.kept)
    assert plan.bots == ("trading-bot.service",) and plan.live == ()
    # The bot's own unit is never a path of the plan; its emptied drop-in directory may go.
    assert not any(p.endswith("/trading-bot.service") for p in plan.paths)
    assert f"{UNIT_DIR}/trading-bot.service.d" in plan.prune


def test_instances_are_found_by_their_names_and_go_with_their_own_files() -> None:
    files = {**installed(PAPER, deployment(), bot="paper-bot.service"),
             **installed(LIVE, deployment())}
    plan = plan_for(survey(files, live=(LIVE.ops_json,)))
    assert plan.units == (*LIVE.units, *PAPER.units) == tuple(
        f"{u.rpartition('.')[0]}@{i}.{u.rpartition('.')[2]}" for i in ("live", "paper")
        for u in UNITS)
    groups = dict(plan.groups)
    assert set(groups["needrestart override"]) >= {PAPER.needrestart_conf, LIVE.needrestart_conf}
    assert groups["bot drop-ins"] == (PAPER.dropin_path("paper-bot.service"),)
    assert groups["settings"] == (DEFAULT.config_dir, DEFAULT.settings_dir(HOME),
                                  LIVE.settings_dir(HOME), PAPER.settings_dir(HOME))
    assert set(groups["state"]) == {PAPER.state_dir, LIVE.state_dir}
    assert plan.live == ("instance live",)


def test_template_units_stop_every_instance_found() -> None:
    """Installed as systemd templates (ibkr-gateway@.service), instances have no unit file
    of their own: each one found by its settings is stopped from the template."""
    files = {f"{UNIT_DIR}/{template(u)}": "f" for u in UNITS}
    files |= {PAPER.ops_json: "f", f"{UNIT_DIR}/multi-user.target.wants/{PAPER.gateway_unit}": "l"}
    plan = plan_for(survey(files))
    assert plan.units == PAPER.units
    assert set(dict(plan.groups)["units"]) >= {f"{UNIT_DIR}/{template(u)}" for u in UNITS}


def test_keep_settings_keeps_etc_ibkr_and_the_gateways_settings_but_not_its_builds() -> None:
    files = {**installed(DEFAULT, deployment()), **installed(PAPER, deployment())}
    plan = plan_for(survey(files), UninstallOptions(keep_settings=True))
    paths = plan.paths
    assert Layout.gateway_builds(HOME) in paths and DEFAULT.ibc_dir in paths
    assert not any(p.startswith((DEFAULT.config_dir, f"{HOME}/Jts-")) or p == f"{HOME}/Jts"
                   for p in paths)
    assert DEFAULT.log_dir in paths
    (kept,) = [k for k in plan.kept if k.startswith(DEFAULT.config_dir)]
    assert DEFAULT.settings_dir(HOME) in kept and PAPER.settings_dir(HOME) in kept


def test_purge_takes_only_what_the_install_recorded() -> None:
    files = installed(DEFAULT, deployment())
    record = "package netcat-openbsd\npackage libbsd0\nuser trader\n"
    plan = plan_for(survey(files, record=record), UninstallOptions(purge=True))
    assert (plan.users, plan.packages, plan.purge_state) == (
        ("trader",), ("netcat-openbsd", "libbsd0"), True)
    assert not any("--purge" in k for k in plan.kept)
    # A service user the install found already there is left, and said so.
    plan = plan_for(survey(files, record="package netcat-openbsd\n"), UninstallOptions(purge=True))
    assert plan.users == () and any(k.startswith("service user trader: the install did not "
                                                 "create it") for k in plan.kept)


def test_other_software_with_similar_names_is_not_ours() -> None:
    files = {f"{UNIT_DIR}/{name}": "f" for name in (
        "xvfb-other.service", "my-ibkr-gateway.service", "ibkr-gateway@Bad.service",
        "ibkr-gateway.service.bak", "trading-bot.service")}
    files |= {f"{UNIT_DIR}/trading-bot.service.d/override.conf": "f",
              f"{DEFAULT.config_dir}/backup/paper/credentials.env": "f"}
    found = parse_survey(survey(files))
    assert (found.unit_files, found.dropins, found.instances()) == ([], [], [])


def test_an_unreadable_mode_counts_as_live_and_no_settings_means_no_user() -> None:
    files = installed(DEFAULT, deployment())
    plan = plan_for(survey(files, broken_config=DEFAULT.ops_json))
    assert plan.live == ("the Gateway",)
    assert not any(p.startswith("/home/") for p in plan.paths)


@pytest.mark.parametrize("options", [EXTRAS, UninstallOptions(purge=True)])
def test_a_host_without_the_product_has_an_empty_plan(options: UninstallOptions) -> None:
    plan, states = narrow(plan_for(survey({}), options), "")
    assert plan.empty and steps(plan) == [] and states == {}


def test_narrowing_keeps_what_exists_and_reads_unit_states() -> None:
    plan = plan_for(survey(installed(DEFAULT, deployment())), UninstallOptions(purge=True))
    text = (f"HAS {DEFAULT.ibc_dir}\nHAS {DEFAULT.config_dir}\nUNIT {DEFAULT.gateway_unit} "
            "active\nUNIT xvfb.service inactive\n")
    narrowed, states = narrow(plan, text)
    assert narrowed.paths == (DEFAULT.ibc_dir, DEFAULT.config_dir)
    assert narrowed.units == plan.units and narrowed.users == ()
    assert states == {DEFAULT.gateway_unit: "active", "xvfb.service": "inactive"}
    assert all(shlex.quote(p) in presence_command(plan) for p in plan.paths)


def test_steps_stop_before_removing_and_purge_last() -> None:
    files = installed(DEFAULT, deployment(), bot="b.service")
    plan = plan_for(survey(files, record="user trader\npackage x11vnc\n"),
                    UninstallOptions(purge=True))
    whats = [s.what for s in steps(plan)]
    assert whats[:2] == ["stopping the units", "cleaning the units' state"]
    assert whats[-5:] == ["removing emptied directories", "systemctl daemon-reload",
                          "deleting the service user trader", "purging the packages",
                          "removing the install's record"]
    stop = steps(plan)[0].command
    assert "disable --now" in stop and stop.endswith(f"! systemctl is-active --quiet "
                                                     f"{' '.join(plan.units)}")


def test_the_survey_and_removal_commands_are_valid_sh() -> None:
    plan = plan_for(survey(installed(PAPER, deployment())), UninstallOptions(purge=True))
    plan = UninstallPlan(**{**plan.__dict__, "packages": ("x11vnc",), "users": ("trader",)})
    for command in [survey_command(), presence_command(plan), *(s.command for s in steps(plan)),
                    added.recording_packages("true"), added.recording_user("trader")]:
        subprocess.run(["sh", "-n", "-c", command], check=True)


def test_the_record_reads_back_packages_and_users() -> None:
    assert added.parse("package a\nuser trader\npackage b\nsomething new here\n") == added.Added(
        packages=("a", "b"), users=("trader",))


def test_recording_packages_notes_only_the_newly_installed(tmp_path: Path) -> None:
    """The apt step's bookkeeping, run by sh over a stand-in dpkg-query whose list grows
    while a stand-in apt-get "installs" two packages; the record path points into tmp."""
    bin_dir, state = tmp_path / "bin", tmp_path / "dpkg-state"
    bin_dir.mkdir()
    state.write_text("ii base-files\nii libc6\nrc oldpkg\n")
    (bin_dir / "dpkg-query").write_text(f"#!/bin/sh\ncat {state}\n")
    (bin_dir / "dpkg-query").chmod(0o755)
    record = tmp_path / "added.list"
    record.write_text("user trader\n")
    apt = f"printf 'ii x11vnc\\nii libvncserver1\\nii oldpkg\\n' >> {state}; false"
    command = added.recording_packages(apt).replace(Layout.added_record(), str(record))
    command = command.replace(posixpath.dirname(Layout.added_record()), str(tmp_path))
    done = subprocess.run(["sh", "-c", command], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                          check=False)
    assert done.returncode == 1  # apt-get's own status
    assert record.read_text().splitlines() == [
        "package libvncserver1", "package oldpkg", "package x11vnc", "user trader"]


def test_a_live_gateway_goes_only_when_confirmed() -> None:
    live = UninstallPlan(live=("the Gateway",))
    with pytest.raises(UsageError, match=r"LIVE Gateway .*give --yes-live"):
        confirm_live("gw1", live, yes_live=False, ask=None)
    with pytest.raises(UsageError, match="does not match; nothing was changed"):
        confirm_live("gw1", live, yes_live=False, ask=lambda _: "gw2")
    confirm_live("gw1", live, yes_live=False, ask=lambda prompt: "gw1")
    confirm_live("gw1", live, yes_live=True, ask=None)
    confirm_live("gw1", UninstallPlan(), yes_live=False, ask=None)


@pytest.mark.parametrize(("options", "message", "code"), [
    ({}, "--host is required", 2),
    ({"host": "gw1", "keep_settings": True, "purge": True}, "give one", 2),
    ({"host": "root@127.0.0.1:1"}, r"root@127\.0\.0\.1:1: cannot connect", 1),
])
def test_bad_input_and_an_unreachable_host_are_one_line(options: dict[str, object], message: str,
                                                        code: int) -> None:
    with pytest.raises(Exit) as info:
        uninstall_task(Context(), **options)  # type: ignore[arg-type]
    assert info.value.code == code
    text = str(info.value.message)
    assert "\n" not in text and re.search(message, text), text


def _stand_ins(bin_dir: Path, scripts: dict[str, str]) -> dict[str, str]:
    bin_dir.mkdir()
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


@pytest.mark.parametrize(("autoremovable", "purged", "kept"), [
    ("x11vnc libvncserver1 unrelated-old", "x11vnc libvncserver1", "libgtk"),
    ("unrelated-old", "", "x11vnc libvncserver1 libgtk"),
])
def test_purge_removes_what_apt_would_autoremove_of_the_recorded(
        tmp_path: Path, autoremovable: str, purged: str, kept: str) -> None:
    """The purge step over stand-ins for dpkg-query, apt-mark and apt-get: of the recorded
    packages still installed, only those apt would now autoremove are purged (never a package
    the record does not name), and the others are reported as kept."""
    log = tmp_path / "log"
    env = _stand_ins(tmp_path / "bin", {
        "dpkg-query": 'for p in "$@"; do case "$p" in -*) ;; gone-pkg) ;; '
                      '*) printf "ii %s\\n" "$p";; esac; done',
        "apt-mark": f'echo "apt-mark $*" >> {log}',
        "apt-get": f'if [ "$1" = -s ]; then for p in {autoremovable}; do echo "Remv $p:amd64 '
                   f'[1]"; done; else echo "apt-get $*" >> {log}; fi'})
    plan = UninstallPlan(packages=("x11vnc", "libvncserver1", "libgtk", "gone-pkg"))
    (step,) = [s for s in steps(plan) if s.what == "purging the packages"]
    done = subprocess.run(["sh", "-c", step.command], env=env, capture_output=True, text=True,
                          check=True)
    assert done.stdout.splitlines() == [f"PURGED {purged}".rstrip(), f"KEPT {kept}"]
    assert purge_result(done.stdout) == (tuple(purged.split()), tuple(kept.split()))
    calls = log.read_text().splitlines()
    assert calls[0] == "apt-mark auto x11vnc libvncserver1 libgtk"
    assert calls[1:] == ([f"apt-get purge -y -q {purged}"] if purged else [])

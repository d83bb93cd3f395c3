"""Paper and live side by side on one sandbox guest, under the real IBC and the stand-in.

One guest for the module: first the old single-Gateway host (one file, the default layout),
then `invoke install --credentials paper.env --credentials live.env` on it, which installs
both instances in one run and moves the old Gateway into the paper instance, which logs in
as its account. The tests then read what a user would check: both healthy on their own
ports, ib_async on each, the restarts staggered as systemd sees them, a second run that
changes nothing, and a killed JVM that takes nothing of the other instance with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import migrate_support as ms
import pytest
from invoke.context import Context
from invoke.exceptions import Exit
from sim_support import real_ibc_zip, wait_for

from ibkr_ops import sandbox, verify
from ibkr_ops.checks.runner import FabricRunner
from ibkr_ops.gateway_installer import gateway_installer
from ibkr_ops.instances import RESTART_GAP_MIN
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import upgrade
from ibkr_ops.remote.install import HostReport, install_host
from ibkr_ops.sandbox.paths import Layout as SandboxLayout
from ibkr_ops.settings import load_deployment
from ibkr_ops.sim import artifacts as sim_artifacts
from ibkr_ops.tasks.common import instances
from ibkr_ops.tasks.hosts import install as install_task
from ibkr_ops.tasks.hosts import logs as logs_task
from ibkr_ops.tasks.hosts import restart as restart_task
from ibkr_ops.tasks.hosts import status as status_task
from ibkr_ops.tasks.migrate import go_live as go_live_task

GUEST = "instances"
HOME = "/home/trader"
PAPER, LIVE = Layout("paper"), Layout("live")
# Small Gateways, so that two fit a CI machine; live on a display and command port of its own.
SMALL = "IBKR_MEMORY_MAX_MB=1024\nIBKR_JAVA_HEAP_MB=512\n"
LIVE_EXTRA = SMALL + "IBKR_DISPLAY=:2\nIBKR_COMMAND_SERVER_PORT=7463\n"
# What the old Gateway keeps of its own in ~/Jts: an account's settings directory.
ACCOUNT_DIR = "inst-account"
MARKER = "kept-through-the-move"


@dataclasses.dataclass(frozen=True)
class OldHost:
    """What the single-Gateway host had before the move: its logins, its state files."""

    logins: int
    state: set[str]


@dataclasses.dataclass(frozen=True)
class Migrated:
    """The dry run of the move (its report) and whether it left the host as it was."""

    dry: HostReport
    untouched: bool


def private(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    os.chmod(path, 0o600)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("instances")
    live = ms.credentials_text("live", "inst_live", LIVE_EXTRA)
    return {"paper": private(where, "paper.env", ms.credentials_text("paper", "inst_paper",
                                                                     SMALL)),
            "live": private(where, "live.env", live),
            "live-named": private(where, "live-named.env", live + "IBKR_INSTANCE=live\n")}


def run(command: str) -> str:
    return ms.run(GUEST, command)


def main_pid(unit: str) -> int:
    return int(run(f"systemctl show -p MainPID --value {unit}").strip() or 0)


def java_pid(layout: Layout) -> str:
    """The JVM IBC's code runs in, the child of the instance's ibcstart.sh."""
    return run(f"pgrep -P {main_pid(layout.gateway_unit)} -f IbcGateway").strip()


def logins(settings_dir: str) -> int:
    """How many logins the stand-in recorded in a Gateway settings directory."""
    lines = run(f"cat {settings_dir}/ibkr-gateway-sim-logins.jsonl 2>/dev/null").splitlines()
    return sum(json.loads(line)["event"] == "login" for line in lines if line.startswith("{"))


def health(layout: Layout) -> dict[str, object]:
    out = run(f"{layout.health_check_tool} --instance {layout.instance} --json")
    return dict(json.loads(out)) if out.startswith("{") else {"healthy": False, "out": out}


def options_args() -> dict[str, str]:
    """The task's artifact options: the real IBC zip and the simulated Gateway installer."""
    gateway = ms.options().gateway
    assert gateway is not None
    return {"ibc_zip": str(real_ibc_zip()), "gateway_installer": str(gateway.path)}


def tree() -> str:
    """Checksums of the product's files and the units' states: what a dry run must keep."""
    return run("find /etc/ibkr /etc/systemd/system /home/trader/Jts-* -type f 2>/dev/null | "
               "sort | xargs -r sha256sum; systemctl list-units --all --no-legend 'ibkr-*' "
               "'xvfb*'")


@pytest.fixture(scope="module")
def old_host(sandbox_layout: SandboxLayout, files: dict[str, str]) -> Iterator[OldHost]:
    """The guest as a host installed before instances: paper alone, the default layout, with
    an account's settings in ~/Jts; what it had before the move."""
    sandbox.up([GUEST])
    try:
        report = install_host(GUEST, load_deployment(Path(files["paper"])), ms.options(), ms.say)
        assert report.error is None, report.error
        run(f"install -d -o trader -g trader {HOME}/Jts/{ACCOUNT_DIR} && printf '%s\\n' "
            f"{MARKER} > {HOME}/Jts/{ACCOUNT_DIR}/settings.xml && chown trader: "
            f"{HOME}/Jts/{ACCOUNT_DIR}/settings.xml")
        # Its own state: not the host-wide record of what the install added to the host.
        state = set(run(f"find {DEFAULT.state_dir} -maxdepth 1 -type f -printf '%f\\n'").split())
        yield OldHost(logins(f"{HOME}/Jts"), state - {Layout.added_record().rsplit("/", 1)[1]})
    finally:
        sandbox.down(GUEST)


@pytest.fixture(scope="module")
def migrated(old_host: OldHost, files: dict[str, str]) -> Migrated:
    """paper + live through `invoke install`, the paper instance taking over the old Gateway,
    after a dry run of the same (its report rows, and whether it changed anything)."""
    pair = [files["paper"], files["live"]]
    before = tree()
    dry = install_host(GUEST, instances(pair, {}), dataclasses.replace(ms.options(),
                                                                       dry_run=True), ms.say)
    untouched = tree() == before
    install_task(Context(), host=[GUEST], credentials=pair, wait=240.0, **options_args())
    return Migrated(dry, untouched)


def test_the_dry_run_announces_the_move_and_its_one_restart(migrated: Migrated) -> None:
    dry = migrated.dry
    assert dry.error is None, dry.error
    assert migrated.untouched
    assert dry.instances == ["paper", "live"]
    rows = dict(dry.items)
    assert rows["ibkr-gateway.service moves into ibkr-gateway@paper.service (settings and "
                "state kept, one restart)"] == "would change"
    assert rows["gateway (paper) start (moved in from the single-Gateway layout: "
                "ibkr-gateway.service stops, this one starts)"] == "would change"
    assert rows["gateway (live) start (not running)"] == "would change"


def test_both_instances_are_healthy_on_their_own_ports(migrated: Migrated) -> None:
    reports = {layout.instance: health(layout) for layout in (PAPER, LIVE)}
    assert all(r.get("healthy") for r in reports.values()), reports
    accounts = {name: [str(a) for a in r["accounts"]]  # type: ignore[attr-defined]
                for name, r in reports.items()}
    assert accounts["paper"] and all(a.startswith("DU") for a in accounts["paper"]), accounts
    assert accounts["live"] and all(a.startswith("U") for a in accounts["live"]), accounts
    listening = run("ss -Hltnp")
    for port, layout in ((4002, PAPER), (4001, LIVE)):
        line = next(ln for ln in listening.splitlines() if f"127.0.0.1:{port} " in ln)
        pid = line.split("pid=", 1)[1].split(",", 1)[0]
        assert layout.gateway_unit in run(f"cat /proc/{pid}/cgroup"), (port, line)


@pytest.mark.parametrize(("layout", "port", "prefix"), [(PAPER, 4002, "DU"), (LIVE, 4001, "U")])
def test_ib_async_connects_to_each(migrated: Migrated, layout: Layout, port: int,
                                   prefix: str) -> None:
    with ms.root(GUEST) as host, FabricRunner(host).forward("127.0.0.1", port) as local:
        done = subprocess.run([sys.executable, "-m", "ibkr_ops.checks.botclient", str(local),
                               "31"], capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    accounts = json.loads(done.stdout.strip().splitlines()[-1])["accounts"]
    assert accounts and all(a.startswith(prefix) for a in accounts), accounts


def test_the_old_gateway_moved_in_with_one_restart_keeping_its_settings(
        migrated: Migrated, old_host: OldHost) -> None:
    assert run(f"systemctl list-unit-files --no-legend {DEFAULT.gateway_unit} "
               f"{DEFAULT.display_unit}").strip() == ""
    assert run(f"ls {DEFAULT.config_ini} {DEFAULT.ops_json} {DEFAULT.credentials} "
               f"{DEFAULT.needrestart_conf} 2>&1").count("No such file") == 4
    backup = f"{DEFAULT.backup_dir}/single-gateway"
    assert run(f"stat -c '%a %U' {backup}").strip() == "700 root"
    assert run(f"ls {backup}").split() == ["config.ini", "credentials.env", "ops.json"]
    # Its Gateway settings, without the installation beside them; its state.
    settings = PAPER.settings_dir(HOME)
    assert run(f"cat {settings}/{ACCOUNT_DIR}/settings.xml").strip() == MARKER
    assert run(f"test -f {settings}/jts.ini && test ! -e {settings}/ibgateway && echo ok") \
        .strip() == "ok"
    state = set(run(f"ls {PAPER.state_dir}").split())
    assert old_host.state and old_host.state <= state, (old_host.state, state)
    assert run(f"test -f {Layout.added_record()} && echo kept").strip() == "kept"
    # One restart: the old Gateway stopped, the instance logged in once, with its login.
    assert logins(settings) == old_host.logins + 1
    assert "IbLoginId=inst_paper" in run(f"cat {PAPER.config_ini}")


def test_the_daily_restarts_are_staggered(migrated: Migrated) -> None:
    shown = {layout.instance: dict(
        line.split("=", 1) for line in run(
            f"systemctl show -p TimersCalendar -p NextElapseUSecRealtime "
            f"{layout.restart_timer}").splitlines() if "=" in line) for layout in (PAPER, LIVE)}
    assert "16:30:00 America/New_York" in shown["paper"]["TimersCalendar"], shown
    assert "16:45:00 America/New_York" in shown["live"]["TimersCalendar"], shown
    paper, live = (int(run(f"date -d {json.dumps(shown[n]['NextElapseUSecRealtime'])} +%s"))
                   for n in ("paper", "live"))
    assert live - paper == RESTART_GAP_MIN * 60


def test_a_second_run_changes_and_restarts_nothing(migrated: Migrated,
                                                   files: dict[str, str]) -> None:
    pids = [main_pid(layout.gateway_unit) for layout in (PAPER, LIVE)]
    options = dataclasses.replace(ms.options(), gateway=None)
    report = install_host(GUEST, instances([files["paper"], files["live"]], {}), options, ms.say)
    assert report.error is None, report.error
    assert {status for _, status in report.items} == {"unchanged"}, report.items
    # The live file alone, named: that instance only, and of it only the settings file that
    # records the new key (IBKR_INSTANCE), which no Gateway reads at start; then back.
    for given, changed in (([files["live-named"]], {LIVE.credentials}),
                           ([files["paper"], files["live"]], {LIVE.credentials})):
        report = install_host(GUEST, instances(given, {}), options, ms.say)
        assert report.error is None, report.error
        assert {item for item, status in report.items if status != "unchanged"} == changed
    assert [main_pid(layout.gateway_unit) for layout in (PAPER, LIVE)] == pids


def test_one_file_without_an_instance_is_refused_on_an_instance_host(
        migrated: Migrated, files: dict[str, str]) -> None:
    before = tree()
    with pytest.raises(Exit) as info:
        install_task(Context(), host=[GUEST], credentials=[files["live"]], **options_args())
    assert info.value.code == 2
    assert tree() == before


def test_host_tasks_cover_every_instance_or_refuse_to_guess(
        migrated: Migrated, capfd: pytest.CaptureFixture[str]) -> None:
    status_task(Context(), host=GUEST)
    logs_task(Context(), host=GUEST, instance="live", lines=50)
    out = capfd.readouterr().out
    assert "== Gateway instance paper" in out and "== Gateway instance live" in out
    assert "ibkr-gateway-restart@paper.timer" in out and "ibkr-gateway-restart@live.timer" in out
    with pytest.raises(Exit) as info:
        restart_task(Context(), host=GUEST)
    assert info.value.code == 2
    assert str(info.value.message) == ("error: this host runs several Gateways (live, paper); "
                                       "name one with --instance")
    with pytest.raises(Exit) as info:
        status_task(Context(), host=GUEST, instance="other")
    assert info.value.code == 2 and "has no Gateway instance 'other'" in str(info.value.message)


def test_a_killed_jvm_leaves_the_other_instance_alone(migrated: Migrated) -> None:
    paper_java, paper_logins = java_pid(PAPER), logins(PAPER.settings_dir(HOME))
    live_java = java_pid(LIVE)
    run(f"kill -9 {live_java}")
    wait_for(lambda: java_pid(LIVE) not in ("", live_java) and health(LIVE).get("healthy"),
             240, "the live instance to come back", interval=2)
    assert java_pid(PAPER) == paper_java
    assert logins(PAPER.settings_dir(HOME)) == paper_logins
    assert health(PAPER).get("healthy")


def test_verify_checks_each_instance_on_its_own(migrated: Migrated) -> None:
    """`invoke verify` on the pair: one checklist per instance, each against that instance's
    own settings, port, JVM and secret files, both ready; --instance checks just the one."""
    reports = verify.run(GUEST, ssh_configs=(sandbox.ssh_config_path(),))
    assert [r.instance for r in reports] == ["live", "paper"]
    for report in reports:
        assert report.ready, verify.table(report)
        details = {r.name: r.detail for r in report.results}
        layout = Layout(report.instance)
        assert details["gateway_starts"] == (f"{layout.display_unit} and {layout.gateway_unit} "
                                             "active, 1 JVM, all as trader")
        port = 4001 if report.instance == "live" else 4002
        assert details["api_port_listens"] == f"listening on 127.0.0.1:{port} only"
        secrets = [r.detail for r in report.results if r.name == "secret_file_private"]
        assert secrets[0].startswith(layout.credentials), secrets
    (alone,) = verify.run(GUEST, instance="paper", ssh_configs=(sandbox.ssh_config_path(),))
    assert alone.instance == "paper" and alone.ready


def test_go_live_rolls_back_and_re_adds_a_live_instance_beside_paper(
        migrated: Migrated, files: dict[str, str]) -> None:
    """The live instance was added beside paper: its rollback stops it (there is no paper to
    return it to) and go-live starts it again; paper's JVM and login never change."""
    paper_java, paper_logins = java_pid(PAPER), logins(PAPER.settings_dir(HOME))
    go_live_task(Context(), host=GUEST, instance="live", rollback=True, wait=240.0)
    assert run(f"systemctl is-active {LIVE.gateway_unit}").strip() == "inactive"
    assert run(f"systemctl is-enabled {LIVE.gateway_unit}").strip() == "disabled"
    with pytest.raises(Exit) as info:  # the paper instance was never live
        go_live_task(Context(), host=GUEST, instance="paper", rollback=True)
    assert info.value.code == 1 and "is not live (it runs paper)" in str(info.value.message)
    go_live_task(Context(), host=GUEST, credentials=files["live-named"], yes_live=True,
                 wait=240.0)
    assert health(LIVE).get("healthy")
    assert run(f"systemctl is-enabled {LIVE.gateway_unit}").strip() == "enabled"
    assert java_pid(PAPER) == paper_java
    assert logins(PAPER.settings_dir(HOME)) == paper_logins


def api_builds() -> list[str]:
    """The build each Gateway's API answers from (the stand-in's API child runs from its
    build's jars and names its version)."""
    children = run("ps -eo args | grep '[i]bkr-gateway-sim.pyz api'").splitlines()
    return sorted(f"{line.split('/jars/')[0].rsplit('/', 1)[-1]} "
                  f"{line.split('--gateway-version ')[1].split()[0]}" for line in children)


def test_an_upgrade_switches_both_instances_and_rollback_returns_both(
        migrated: Migrated, tmp_path: Path) -> None:
    """Last in the module (it restarts both): the pair upgraded to another simulated build,
    both healthy on it, then `--rollback`, both healthy on the build from before."""
    release = sim_artifacts.Release("10.30.3")
    path = tmp_path / release.installer_name
    path.write_bytes(sim_artifacts.build_installer(release))
    # The guest's clock may be inside the trading session: the checks are asked and overruled.
    options = upgrade.UpgradeOptions(dataclasses.replace(ms.options(240.0), gateway=None),
                                     force=True)
    before = sim_artifacts.GATEWAY_VERSION
    with ms.root(GUEST) as host:
        report = upgrade.upgrade(host, gateway_installer(path), options, ms.say)
    assert report.error is None, report.lines()
    assert report.instances == ["live", "paper"]
    assert report.running.startswith("10.30.3") and report.kept[0].startswith(before)
    assert all(health(layout).get("healthy") for layout in (PAPER, LIVE))
    assert api_builds() == ["10.30.3 10.30.3", "10.30.3 10.30.3"]
    with ms.root(GUEST) as host:
        back = upgrade.rollback(host, options, ms.say)
    assert back.error is None, back.lines()
    assert back.running.startswith(before)
    assert all(health(layout).get("healthy") for layout in (PAPER, LIVE))
    assert api_builds() == [f"{before} {before}", f"{before} {before}"]

"""Several Gateways installed in one plan, against recorded host facts, without a host.

The recorded connection (``test_converge.RecordedHost``) answers the facts script and the
health checks and keeps every command: a whole install runs here, and the order of what it
sends, the move out of the single-Gateway layout and every refusal can be read back.
"""

from __future__ import annotations

import json
import re

import pytest
from test_converge import HEALTHY, INSTALLED, PASSWORD, RecordedHost, with_sums

from ibkr_ops.instances import Instance, host_instances
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import converge, gateways
from ibkr_ops.remote.facts import parse_facts
from ibkr_ops.remote.gateways import parse_listing, tool_command
from ibkr_ops.remote.install import HostReport, InstallOptions, install_instances, instance_files
from ibkr_ops.remote.plan import make_host_plan
from ibkr_ops.remote.primitives import Host
from ibkr_ops.render import ManagedFile
from ibkr_ops.settings import Deployment, deployment_from_env

PAPER, LIVE = Layout("paper"), Layout("live")
# What the facts read of an installed Gateway's credentials.env beyond its login and restart
# time: API port, command-server port, display, MemoryMax= (paper's defaults, live's beside it).
PAPER_HOLDS, LIVE_HOLDS = "4002 7462 :1 2048", "4001 7463 :2 2048"
# The installed Gateway of the recorded host, as the facts' layout lines show it.
SINGLE = f"\nLAYOUT - paper\nLENV - rec 16:30 America/New_York {PAPER_HOLDS}"
# A recorded host with instances installed instead of the single-Gateway layout.
INSTALLED_LIVE = f"\nLAYOUT live live\nLENV live rec_live 16:45 America/New_York {LIVE_HOLDS}"
NAMED = INSTALLED_LIVE + ("\nLAYOUT paper paper\nLENV paper rec 16:30 America/New_York "
                          + PAPER_HOLDS)
HEALTH = {"ibkr-health-check --instance": json.dumps(HEALTHY)}


def deployment(user: str = "rec", mode: str = "paper", **extra: str) -> Deployment:
    return deployment_from_env({"IBKR_USERNAME": user, "IBKR_PASSWORD": PASSWORD,
                                "IBKR_TRADING_MODE": mode, "TWS_MAJOR_VRSN": "1030", **extra})


def pair(**live: str) -> list[Instance]:
    return host_instances([
        ("paper.env", deployment()),
        ("live.env", deployment("rec_live", "live", IBKR_DISPLAY=":2",
                                IBKR_COMMAND_SERVER_PORT="7463", **live))])


def install(facts: str, found: list[Instance], **answers: str) -> tuple[RecordedHost, HostReport]:
    conn = RecordedHost(facts, answers={**HEALTH, **answers})
    report = install_instances(Host(conn, "rec"), found, InstallOptions(), lambda _: None)
    return conn, report


def units_of(found: list[Instance]) -> str:
    return "".join(f"\nUNIT {u} enabled active" for i in found for u in i.layout.enabled_units)


def test_two_instances_are_one_plan_shared_steps_once_then_each_gateway() -> None:
    found = pair()
    conn, report = install(INSTALLED.replace("MODE paper", ""), found)
    assert report.error is None, report.error
    sent = conn.sent()
    assert sum("ARCH $(uname -m)" in c for c in conn.commands) == 1  # one facts round trip
    assert sent.count("systemctl daemon-reload") == 1
    writes = [re.search(r"&& mv -f \S+ (\S+)", c)[1] for c in sent  # type: ignore[index]
              if c.startswith("STAGED=")]
    assert sorted(writes) == sorted(f.path for f in instance_files(found))  # tools once
    gateways = [c for c in sent if "systemctl start ibkr-gateway@" in c
                or "systemctl restart ibkr-gateway@" in c]
    assert gateways == [
        "systemctl reset-failed ibkr-gateway@paper.service 2>/dev/null; "
        "systemctl start ibkr-gateway@paper.service",
        "systemctl reset-failed ibkr-gateway@live.service 2>/dev/null; "
        "systemctl start ibkr-gateway@live.service"]
    # Everything is written before any unit is touched.
    last_write = max(i for i, c in enumerate(sent) if c.startswith("STAGED="))
    assert all(i > last_write for i, c in enumerate(sent) if c.startswith("systemctl "))
    assert [c for c in sent if c.startswith("/usr/local/bin/ibkr-health-check")] == [
        "/usr/local/bin/ibkr-health-check --instance paper --json",
        "/usr/local/bin/ibkr-health-check --instance live --json"]
    notes = [c for c in sent if c.startswith("/usr/local/bin/ibkr-notify")]
    assert [n.split()[:3] for n in notes] == [["/usr/local/bin/ibkr-notify", "--instance",
                                               "paper"], ["/usr/local/bin/ibkr-notify",
                                                          "--instance", "live"]]
    assert "installed and healthy (instance live, live, API port 4001)" in notes[1]
    assert report.health.startswith("paper: healthy (")
    assert "; live: healthy (" in report.health
    assert not any(PASSWORD in c for c in conn.commands)


def test_an_unchanged_pair_is_only_checked() -> None:
    found = pair()
    facts = with_sums(INSTALLED.replace("MODE paper", ""), instance_files(found)) + \
        units_of(found) + NAMED
    conn, report = install(facts, found)
    assert report.error is None and not report.changed
    assert [c for c in conn.sent() if not c.startswith(("systemctl start ibkr-", "install -d"))] == [
        "/usr/local/bin/ibkr-health-check --instance paper --json",
        "/usr/local/bin/ibkr-health-check --instance live --json"]  # no restart, no notice


def test_one_instance_alone_leaves_the_other_and_keeps_clear_of_its_restart() -> None:
    (live,) = host_instances([("live.env", deployment(
        "rec_live", "live", IBKR_INSTANCE="live", IBKR_DISPLAY=":2",
        IBKR_COMMAND_SERVER_PORT="7463"))])
    # The host's live instance at paper's time (set so by hand): live moves clear of paper.
    host = NAMED.replace("LENV live rec_live 16:45", "LENV live rec_live 16:30")
    conn, report = install(INSTALLED.replace("MODE paper", "") + host, [live])
    assert report.error is None, report.error
    sent = " ".join(conn.sent())
    assert "@paper" not in sent and "/paper/" not in sent
    timer = next(f for f in conn.uploads if f.endswith("ibkr-gateway-restart@live.timer"))
    assert b"OnCalendar=Sun,Mon..Fri 16:45 America/New_York" in conn.uploads[timer]


def test_the_single_gateway_moves_into_the_instance_of_its_login_with_one_restart() -> None:
    found = pair()
    conn, report = install(INSTALLED.replace("MODE paper", "") + SINGLE, found)
    assert report.error is None, report.error
    sent = conn.sent()
    what = [c for c in sent if "ibkr-gateway.service" in c or ("ibkr-gateway@paper" in c
            and "systemctl" in c)]
    assert what[0].startswith("systemctl disable --now --quiet xvfb.service "
                              "ibkr-gateway.service ")
    assert "cp -a" in sent[sent.index(what[0]) + 1]
    assert "/home/trader/Jts-paper" in sent[sent.index(what[0]) + 1]
    assert '[ "$e" = ibgateway ] && continue' in sent[sent.index(what[0]) + 1]
    assert '[ "$e" = /var/lib/ibkr-ops/added.list ] && continue' in sent[sent.index(what[0]) + 1]
    removal = sent[sent.index(what[0]) + 2]
    assert "/etc/ibkr/backup/single-gateway" in removal and "rm -f" in removal
    assert removal.index("mv -f") < removal.index("rm -f")
    # One restart of that Gateway: the old one stops above, the instance starts once.
    assert [c for c in sent if "ibkr-gateway@paper.service" in c and "systemctl" in c
            and ("start" in c or "restart" in c) and "enable" not in c] == [
        "systemctl reset-failed ibkr-gateway@paper.service 2>/dev/null; "
        "systemctl start ibkr-gateway@paper.service"]
    rows = dict(report.items)
    assert rows["ibkr-gateway.service moves into ibkr-gateway@paper.service (settings and "
                "state kept, one restart)"] == "changed"
    # The instance keeps the single Gateway's restart time; live comes after it.
    timers = {path: data for path, data in conn.uploads.items() if "restart@" in path
              and path.endswith(".timer")}
    assert {(b"16:30" in d, b"16:45" in d) for d in timers.values()} == {(True, False),
                                                                         (False, True)}


def test_a_dry_run_announces_the_move_and_sends_nothing() -> None:
    conn = RecordedHost(INSTALLED.replace("MODE paper", "") + SINGLE, answers=HEALTH)
    report = install_instances(Host(conn, "rec"), pair(), InstallOptions(dry_run=True),
                               lambda _: None)
    assert report.error is None, report.error
    assert all("base64 -w0" in c for c in conn.sent())
    assert ("gateway (paper) start (moved in from the single-Gateway layout: "
            "ibkr-gateway.service stops, this one starts)", "would change") in report.items


@pytest.mark.parametrize(("facts", "message"), [
    (SINGLE.replace("LENV - rec ", "LENV - someone_else "),
     "this host runs a single Gateway (IBKR_USERNAME someone_else) that none of the files logs "
     "in as; add its credentials file or uninstall it first"),
    ("\nLAYOUT - paper",
     "this host runs a single Gateway (whose IBKR_USERNAME could not be read) that none of"),
])
def test_a_single_gateway_none_of_the_files_logs_in_as_is_refused(facts: str,
                                                                  message: str) -> None:
    conn, report = install(INSTALLED.replace("MODE paper", "") + facts, pair())
    assert report.error is not None and report.error.startswith(message)
    assert report.exit_code == 2
    assert conn.sent() == []


def test_one_file_without_a_name_on_an_instance_host_is_refused() -> None:
    (alone,) = host_instances([("paper.env", deployment())])
    conn, report = install(INSTALLED + NAMED, [alone])
    assert report.error == ("this host runs Gateway instances (live, paper); give each its "
                            "credentials file with IBKR_INSTANCE, not one file without it")
    assert conn.sent() == []


def test_more_gateways_than_the_memory_holds_are_refused_before_any_change() -> None:
    conn, report = install(INSTALLED.replace("MEM_KB 8000000", "MEM_KB 4000000"), pair())
    assert report.error is not None and "2 Gateways need" in report.error
    assert report.exit_code == 2
    assert conn.sent() == []


def test_a_live_instance_installed_as_paper_goes_through_go_live() -> None:
    host = NAMED.replace("LAYOUT live live", "LAYOUT live paper")
    conn, report = install(INSTALLED.replace("MODE paper", "") + host, pair())
    assert report.error is not None
    assert report.error.startswith("this host's Gateway live trades paper; switch it to live "
                                   "with `invoke go-live`")
    assert conn.sent() == []


def test_an_unchanged_single_gateway_host_gets_todays_two_steps() -> None:
    d = deployment()
    files: list[ManagedFile] = instance_files([Instance("", d, None)])
    one = make_host_plan(parse_facts(with_sums(INSTALLED, files)), [(DEFAULT, files)], None, None)
    assert [s.what for s in converge.host_steps(one, [d])] == [
        "creating the directories", "starting the timers and the login watch"]


def test_a_hosts_gateways_are_found_by_their_settings_files() -> None:
    listing = "\n".join(["/etc/ibkr/live/ops.json", "/etc/ibkr/ops.json",
                         "/etc/ibkr/backup/ops.json", "/etc/ibkr/paper/ops.json"])
    assert parse_listing(listing) == [DEFAULT, LIVE, PAPER]  # a backup's copy is no Gateway
    assert parse_listing("") == []
    assert gateways.names([LIVE, PAPER]) == "live, paper"


def test_a_host_tool_is_pointed_at_one_gateway() -> None:
    assert tool_command(DEFAULT.restart_tool, DEFAULT, "--mode", "warm") == \
        "/usr/local/bin/ibkr-gateway-restart --mode warm"
    assert tool_command(DEFAULT.notify_tool, LIVE, "--level", "info", "a b") == \
        "/usr/local/bin/ibkr-notify --instance live --level info 'a b'"


def test_a_paper_single_gateway_is_not_moved_into_a_live_instance() -> None:
    found = host_instances([("live.env", deployment("rec", "live")),
                            ("paper.env", deployment("rec_paper", IBKR_DISPLAY=":2",
                                                     IBKR_COMMAND_SERVER_PORT="7463"))])
    # The live instance keeps the single Gateway's restart time, not the one given out first.
    single = SINGLE.replace("16:30", "16:45")
    conn, report = install(INSTALLED.replace("MODE paper", "") + single, found)
    assert report.error is not None
    assert report.error.startswith("this host trades paper; switch it to live with `invoke "
                                   "go-live`")
    assert conn.sent() == []


def test_one_file_without_a_name_updates_a_single_gateway_that_has_instances_beside_it() -> None:
    (alone,) = host_instances([("paper.env", deployment())])
    facts = INSTALLED + SINGLE + INSTALLED_LIVE
    conn, report = install(facts, [alone])
    assert report.error is None, report.error
    assert report.instances == []
    assert not any("@live" in c or "/live/" in c for c in conn.sent())


def third(user: str = "rec_test", **extra: str) -> Instance:
    """A third Gateway, 'test', on ports, a display and a login of its own (but ``extra``)."""
    settings = {"IBKR_INSTANCE": "test", "IBKR_API_PORT": "4010",
                "IBKR_COMMAND_SERVER_PORT": "7470", "IBKR_DISPLAY": ":3", **extra}
    (found,) = host_instances([("test.env", deployment(user, **settings))])
    return found


@pytest.mark.parametrize(("extra", "why"), [
    ({"IBKR_API_PORT": "4001"}, "both use port 4001 (IBKR_API_PORT); give one of them another "
                                "port"),
    ({"IBKR_COMMAND_SERVER_PORT": "7462"}, "both use port 7462 (IBKR_COMMAND_SERVER_PORT)"),
    ({"IBKR_API_PORT": "7463"}, "both use port 7463 (IBKR_API_PORT in the first, "
                                "IBKR_COMMAND_SERVER_PORT in the second)"),
    ({"IBKR_DISPLAY": ":2"}, "both use X display :2 (IBKR_DISPLAY)"),
    ({"IBKR_USERNAME": "REC_LIVE"}, "both log in as the same IBKR_USERNAME: the second login "
                                    "would log the first out"),
])
def test_a_file_claiming_what_an_installed_instance_holds_is_refused(extra: dict[str, str],
                                                                     why: str) -> None:
    found = third(extra.pop("IBKR_USERNAME", "rec_test"), **extra)
    conn, report = install(INSTALLED.replace("MODE paper", "") + NAMED, [found])
    who = "paper" if "7462" in why else "live"
    assert report.error is not None
    assert report.error.startswith(f"test.env and the host's Gateway instance '{who}' "
                                   f"(installed, left as it is): {why}"), report.error
    assert "\n" not in report.error and report.exit_code == 2
    assert conn.sent() == []


def test_a_file_beside_installed_instances_on_their_own_ports_is_installed() -> None:
    conn, report = install(INSTALLED.replace("MODE paper", "") + NAMED, [third()])
    assert report.error is None, report.error
    assert not any("@live" in c or "@paper" in c for c in conn.sent())


def test_an_instance_being_reinstalled_is_not_compared_with_its_installed_self() -> None:
    # live as installed: its own ports, display and login are its, not a clash.
    (live,) = host_instances([("live.env", deployment(
        "rec_live", "live", IBKR_INSTANCE="live", IBKR_DISPLAY=":2",
        IBKR_COMMAND_SERVER_PORT="7463"))])
    _, report = install(INSTALLED.replace("MODE paper", "") + NAMED, [live])
    assert report.error is None, report.error


def test_a_third_gateway_on_a_host_full_with_two_is_refused() -> None:
    full = INSTALLED.replace("MODE paper", "").replace("MEM_KB 8000000", "MEM_KB 6000000")
    conn, report = install(full + NAMED, [third()])
    assert report.error == (
        "test.env, beside the host's Gateway instances 'live', 'paper' (installed, left as they "
        "are): 3 Gateways need 6912 MB (2048 + 2048 + 2048 MB of IBKR_MEMORY_MAX_MB, 384 MB for "
        "the system and 128 MB beside each Gateway), but the host has 5859 MB; lower "
        "IBKR_MEMORY_MAX_MB or use a larger host")
    assert report.exit_code == 2 and conn.sent() == []
    # The two that are there fit: reinstalling them alone is no refusal.
    conn, report = install(full + NAMED, pair())
    assert report.error is None, report.error


def test_an_installed_instance_whose_file_gives_no_limit_counts_the_default() -> None:
    full = INSTALLED.replace("MODE paper", "").replace("MEM_KB 8000000", "MEM_KB 6000000")
    host = NAMED.replace(f"16:45 America/New_York {LIVE_HOLDS}",
                         "16:45 America/New_York - - - -")
    _, report = install(full + host, [third()])
    assert report.error is not None and "(2048 + 2048 + 2048 MB of" in report.error

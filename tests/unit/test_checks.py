"""The go-live checks on command output recorded on a demo-installed sandbox guest, without
root: what each check concludes from a good host, and from each way a host can be wrong.

`checks_recorded.json` holds what the host answered to the very commands the checks run
(`systemctl show`, `ps`, `ss`, the health check, `ibkr-notify`, `stat`, the two host-side
probes). Item 10 runs the real ib_async client against a local simulated Gateway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_support import Sim

from ibkr_ops.checks import (
    Expect,
    Installed,
    Ran,
    Result,
    Status,
    Unreachable,
    bot,
    gateway,
    notification,
    parse,
    read_only,
    security,
)
from ibkr_ops.checks.checklist import everything
from ibkr_ops.checks.expect import installed_layouts, layouts_to_check, settings_match
from ibkr_ops.checks.hostside import secret_scan
from ibkr_ops.checks.runner import free_port, hostside_command
from ibkr_ops.errors import OpsError
from ibkr_ops.layout import DEFAULT, Layout
from ibkr_ops.remote import gateways
from ibkr_ops.remote.switch import gate

RECORDED: dict[str, Any] = json.loads(Path(__file__).with_name("checks_recorded.json").read_text())
HOSTSIDE = ("settings_probe.py", "secret_scan.py")


class Recorded:
    """A `Runner` that answers each command with what the guest answered to it.

    ``changed`` replaces a recorded answer by name; a command nobody recorded fails the test,
    so the checks cannot quietly run something the recording does not cover.
    """

    name = "recorded"

    def __init__(self, **changed: Ran | dict[str, Any] | Exception) -> None:
        self.answers: dict[str, Ran | dict[str, Any] | Exception] = {}
        for key, record in RECORDED.items():
            if key.removesuffix(".py") in ("settings_probe", "secret_scan"):
                self.answers[key] = record
            else:
                self.answers[key] = Ran(record["rc"], record["stdout"], record["stderr"])
        self.answers.update(changed)
        self.commands: list[str] = []
        self.api_port: int | None = None

    def key(self, command: str) -> str:
        for script in HOSTSIDE:
            if command == hostside_command(script):
                return script.removesuffix(".py")
        if command.startswith("/usr/local/bin/ibkr-notify --level info "):
            return "notify"
        if command.startswith("test -r "):
            return "test_readable"
        for key, record in RECORDED.items():
            if isinstance(record, dict) and record.get("command") == command:
                return key
        raise AssertionError(f"no recorded answer for {command!r}")

    def run(self, command: str, *, timeout: float | None = None) -> Ran:
        self.commands.append(command)
        key = self.key(command)
        answer = self.answers.get(key, Ran(0, "", "") if key == "test_readable" else None)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, dict):
            return Ran(0, json.dumps(answer), "")
        assert answer is not None, key
        return answer

    @contextlib.contextmanager
    def forward(self, host: str, port: int) -> Iterator[int]:
        """No SSH here: the tunnel's far end is a local simulated Gateway."""
        assert self.api_port is not None, "this test has no simulated Gateway"
        yield self.api_port


def ran(name: str, **change: object) -> Ran:
    """A recorded answer with some fields changed."""
    record = RECORDED[name]
    return dataclasses.replace(Ran(record["rc"], record["stdout"], record["stderr"]), **change)


def installed(**secrets: bool) -> Installed:
    probe = RECORDED["settings_probe"]
    keys = [k for k in probe["secrets_set"] if secrets.get(k, True)]
    return Installed(probe["env"], probe["ops"], tuple(keys))


EXPECT = Expect.of(installed())


@pytest.fixture
def simulated(sim_factory: Callable[..., Sim]) -> int:
    """A simulated paper Gateway on this machine, logged in; its API port."""
    return sim_factory("--second-factor", "off").port


def test_recorded_good_host_passes_every_read_only_check(simulated: int) -> None:
    """Items 1-5, 7, 10 and 11 (both secret files and the leak scan) all pass."""
    runner = Recorded()
    runner.api_port = simulated
    results = read_only(runner, lambda _: None)
    assert [(r.item, r.status) for r in results] == [
        (n, Status.OK) for n in (1, 2, 3, 4, 5, 7, 10, 11, 11, 11)]
    details = {r.name: r.detail for r in results}
    assert details["gateway_starts"] == ("xvfb.service and ibkr-gateway.service active, 1 JVM, "
                                         "all as trader")
    assert details["timer_scheduled"] == "next restart Wed 2026-12-02 16:30 EST"
    assert details["notification_accepted"] == "Discord accepted message 1577749781239824387"
    figures = {r.name: dict(r.figures) for r in results}
    assert figures["notification_accepted"]["message_id"] == "1577749781239824387"
    assert float(figures["bot_connects"]["connect_s"]) > 0
    assert "12 processes, 140 journal entries" in details["password_leaks_nowhere"]
    assert gate(results, "gw1") == "go-live checks passed (10 ok)"


def test_the_whole_checklist_without_destructive_changes_nothing(simulated: int) -> None:
    """`invoke verify`'s list: item 0 skipped without an operator file, the read-only items as
    go-live sees them, items 6, 8, 9 skipped saying how to run them; no restart, kill or reboot."""
    runner = Recorded()
    runner.api_port = simulated
    results = everything(runner, lambda _: None)
    assert [(r.item, r.status) for r in results] == [
        (0, Status.SKIPPED), *((n, Status.OK) for n in (1, 2, 3, 4, 5, 7, 10, 11, 11, 11)),
        (6, Status.SKIPPED), (8, Status.SKIPPED), (9, Status.SKIPPED)]
    assert {r.detail for r in results if r.item in (6, 8, 9)} == {
        "changes the host's state; run with --destructive"}
    assert not [c for c in runner.commands
                if "systemctl restart" in c or "reboot" in c or c.startswith("kill")]


def test_the_whole_checklist_against_the_operators_file(simulated: int) -> None:
    """With the operator's settings, item 0 says whether the host holds them, and they are the
    expectations: a file that moved the API port fails item 2 as well."""
    runner = Recorded()
    runner.api_port = simulated
    env = dict(installed().env)
    same = {r.item: r.status for r in everything(runner, lambda _: None, operator=env)}
    assert same[0] is Status.OK and same[2] is Status.OK
    moved = everything(runner, lambda _: None, operator={**env, "IBKR_API_PORT": "4010"})
    failed = {r.item: r.detail for r in moved if r.failed}
    assert sorted(failed) == [0, 2], failed
    assert "IBKR_API_PORT" in failed[0]


def test_without_a_webhook_item_7_is_not_configured_and_nothing_is_sent(simulated: int) -> None:
    """A deployment without DISCORD_WEBHOOK_URL passes the gate: item 7 is said, not failed."""
    probe = {**RECORDED["settings_probe"], "secrets_set": ["IBKR_PASSWORD"]}
    runner = Recorded(settings_probe=probe)
    runner.api_port = simulated
    results = read_only(runner, lambda _: None)
    (seven,) = [r for r in results if r.item == 7]
    assert seven.status is Status.NOT_CONFIGURED and not seven.failed
    assert "DISCORD_WEBHOOK_URL is not set" in seven.detail
    assert not any("ibkr-notify" in c for c in runner.commands)
    assert gate(results, "gw1") == ("go-live checks passed (9 ok; not configured: "
                                    "7 (Notifications received))")


def test_gate_names_every_failed_item_and_where_to_look() -> None:
    results = [gateway.gateway_starts(Recorded(show_services=ran(
        "show_services", stdout="MainPID=220\nUser=trader\nActiveState=active\n\n"
                                "MainPID=0\nUser=trader\nActiveState=failed\n")), EXPECT),
               security.secret_file_private(Recorded(stat_credentials=ran(
                   "stat_credentials", stdout="regular file|644|root|root\n")),
                   EXPECT, "/etc/ibkr/credentials.env", "root")]
    with pytest.raises(OpsError) as caught:
        gate(results, "gw1")
    assert str(caught.value) == (
        "healthy, but go-live checks failed: 1 (Gateway starts) ibkr-gateway.service is failed; "
        "11 (Security: modes, owners, no password leaks) /etc/ibkr/credentials.env has mode "
        "644, expected 600; see `invoke verify --host gw1`")


@pytest.mark.parametrize(("changed", "detail"), [
    ({"show_services": ran("show_services", stdout="MainPID=220\nUser=trader\n"
                           "ActiveState=active\n\nMainPID=228\nUser=root\nActiveState=active\n")},
     "ibkr-gateway.service has User='root', expected 'trader'"),
    ({"ps": ran("ps", stdout="\n".join(line for line in RECORDED["ps"]["stdout"].splitlines()
                                      if "java" not in line))},
     "no Gateway JVM (a java process with ibgateway in its arguments) is running"),
    ({"ps": ran("ps", stdout=RECORDED["ps"]["stdout"].replace(" 228 trader ", " 228 root   "))},
     "ibkr-gateway.service's main process runs as 'root'"),
])
def test_gateway_starts_fails(changed: dict[str, Ran], detail: str) -> None:
    result = gateway.gateway_starts(Recorded(**changed), EXPECT)
    assert (result.status, result.detail) == (Status.FAIL, detail)


@pytest.mark.parametrize(("extra", "detail"), [
    ("LISTEN 0 128 0.0.0.0:4002 0.0.0.0:*\n",
     "port 4002 listens on ['0.0.0.0:4002', '127.0.0.1:4002'], expected only 127.0.0.1:4002"),
    ("LISTEN 0 50 *:4002 *:*\n",
     "port 4002 listens on ['0.0.0.0:4002', '127.0.0.1:4002', ':::4002'], expected only "
     "127.0.0.1:4002"),
])
def test_api_port_on_another_address_fails(extra: str, detail: str) -> None:
    runner = Recorded(ss=ran("ss", stdout=RECORDED["ss"]["stdout"] + extra))
    result = gateway.api_port_listens(runner, EXPECT)
    assert (result.status, result.detail) == (Status.FAIL, detail)


def test_api_port_not_listening_fails_and_a_moved_port_passes() -> None:
    moved = dataclasses.replace(EXPECT, api_port=7462)
    assert gateway.api_port_listens(Recorded(), moved).status is Status.OK
    gone = dataclasses.replace(EXPECT, api_port=4001)
    assert gateway.api_port_listens(Recorded(), gone).detail == \
        "nothing listens on port 4001 (expected 127.0.0.1:4001)"


def test_health_check_failing_layer_and_wrong_mode() -> None:
    report = json.loads(RECORDED["health"]["stdout"])
    report["healthy"] = False
    report["checks"][4] = {"name": "api", "status": "fail", "detail": "no handshake in 10 s"}
    result = gateway.health_passes(Recorded(health=Ran(1, json.dumps(report), "")), EXPECT)
    assert result.status is Status.FAIL
    assert result.detail == "health check exit 1: {'api': ('fail', 'no handshake in 10 s')}"
    live = dataclasses.replace(EXPECT, trading_mode="live")
    assert gateway.health_passes(Recorded(), live).detail == \
        "accounts ['DU3281811'] are not live accounts (U...)"
    crashed = gateway.health_passes(Recorded(health=Ran(2, "", "Traceback ...\nKeyError")), EXPECT)
    assert crashed.detail == "health check exit 2: KeyError"


def test_disabled_timer_fails_boot_check() -> None:
    text = RECORDED["show_enabled"]["stdout"].split("\n\n")
    text[3] = "ActiveState=inactive\nUnitFileState=disabled\n"
    result = gateway.enabled_for_boot(Recorded(show_enabled=ran("show_enabled",
                                                                stdout="\n\n".join(text))), EXPECT)
    assert result.detail == "not enabled for boot: ['ibkr-health-check.timer']"


def test_restart_timer_checks() -> None:
    other_time = dataclasses.replace(EXPECT, restart_time="17:00")
    assert gateway.timer_scheduled(Recorded(), other_time).detail == \
        "next restart Wed 2026-12-02 16:30 EST, expected 17:00 America/New_York"
    saturday = Recorded(next_elapse=ran("next_elapse", stdout="Sat 2026-12-05 21:30:00 UTC\n"))
    assert gateway.timer_scheduled(saturday, EXPECT).detail == \
        "next restart Sat 2026-12-05 16:30 EST is not a weekday"
    idle = Recorded(next_elapse=ran("next_elapse", stdout="n/a\n"))
    assert gateway.timer_scheduled(idle, EXPECT).detail == \
        "ibkr-gateway-restart.timer has no next elapse ('n/a'); is it active?"
    five_days_early = Recorded(date=ran("date", stdout=f"{1796235260 - 5 * 86400}\n"))
    assert "not within the next four days" in gateway.timer_scheduled(five_days_early, EXPECT).detail


def test_notification_refused_by_the_webhook() -> None:
    refused = Ran(1, "", "ibkr-notify: the webhook was deleted (Discord 404 Unknown Webhook)\n")
    result = notification.notification_accepted(Recorded(notify=refused), EXPECT)
    assert result.detail == ("ibkr-notify exit 1: ibkr-notify: the webhook was deleted "
                             "(Discord 404 Unknown Webhook)")


@pytest.mark.parametrize(("name", "answer", "detail"), [
    ("stat_credentials", Ran(0, "regular file|600|root|trader\n", ""),
     "/etc/ibkr/credentials.env is owned by root:trader, expected root:root"),
    ("stat_credentials", RECORDED["stat_missing"],
     "/etc/ibkr/credentials.env is missing"),
])
def test_secret_file_wrong_owner_or_missing(name: str, answer: Ran | dict[str, Any],
                                            detail: str) -> None:
    if isinstance(answer, dict):
        answer = Ran(answer["rc"], answer["stdout"], answer["stderr"])
    result = security.secret_file_private(Recorded(**{name: answer}), EXPECT,
                                          "/etc/ibkr/credentials.env", "root")
    assert (result.status, result.detail) == (Status.FAIL, detail)


def test_config_ini_belongs_to_the_service_user() -> None:
    result = security.secret_file_private(Recorded(), EXPECT, "/etc/ibkr/config.ini",
                                          "service user")
    assert result.detail == "/etc/ibkr/config.ini 0600 trader:trader"


def test_password_found_in_the_journal_fails() -> None:
    scan = json.loads(json.dumps(RECORDED["secret_scan"]))
    scan["found"]["journal"] = ["ibcstart.sh at 1796235260000000"]
    result = security.password_leaks_nowhere(Recorded(secret_scan=scan))
    assert result.detail == "the password appears in: {'journal': ['ibcstart.sh at 1796235260000000']}"
    scan = {**RECORDED["secret_scan"], "journal_status": 1}
    assert security.password_leaks_nowhere(Recorded(secret_scan=scan)).detail == \
        "journalctl failed on the host: the journal was not searched"


def test_a_host_that_stops_answering_fails_the_check_in_one_line() -> None:
    runner = Recorded(show_services=Unreachable("Connection reset by peer"))
    result = gateway.gateway_starts(runner, EXPECT)
    assert (result.status, result.detail) == (
        Status.FAIL, "the host did not answer: Connection reset by peer")


def test_the_bot_check_says_when_the_api_does_not_answer() -> None:
    """A tunnel to a port where nothing listens: the client's own error, in one line."""
    runner = Recorded()
    runner.api_port = free_port()
    result = bot.bot_connects(runner, EXPECT)
    assert result.status is Status.FAIL
    assert result.detail.startswith("ib_async client failed: ")


def test_settings_match_item_0() -> None:
    host = installed()
    assert settings_match(host, None).status is Status.SKIPPED
    assert settings_match(host, dict(host.env)).status is Status.OK
    moved = {**host.env, "IBKR_API_PORT": "4010"}
    assert settings_match(host, moved).detail == \
        "the host's settings differ from the file in ['IBKR_API_PORT']; run invoke install"


def test_expectations_come_from_the_host_or_the_operator() -> None:
    assert (EXPECT.trading_mode, EXPECT.api_port, EXPECT.service_user, EXPECT.webhook) == \
        ("paper", 4002, "trader", True)
    live = Expect.of(installed(), {"IBKR_TRADING_MODE": "live"})
    assert (live.api_port, live.account_prefix) == (4001, "U")
    assert not Expect.of(installed(DISCORD_WEBHOOK_URL=False)).webhook


def test_parsers_on_recorded_output() -> None:
    assert parse.listening_tcp(RECORDED["ss"]["stdout"]) == {
        ("127.0.0.1", 8765), ("127.0.0.1", 4002), ("0.0.0.0", 22), ("127.0.0.1", 7462),
        ("::", 22)}
    jvms = parse.gateway_jvms(parse.processes(RECORDED["ps"]["stdout"]))
    assert jvms == {243: "trader"}
    assert parse.stat_line(RECORDED["stat_missing"]["stdout"]) is None


def test_secret_scan_probe_finds_the_password_in_logs(tmp_path: Path) -> None:
    """The host-side probe's own functions (it imports, it does not run, on import)."""
    password = 'pa"ss\\word'
    assert secret_scan.needles(password) == [password.encode(), b'pa\\"ss\\\\word']
    assert secret_scan.needles("") == []
    (tmp_path / "gateway.log").write_bytes(b"login with pa\"ss\\word\n")
    (tmp_path / "clean.log").write_bytes(b"nothing here\n")
    found: dict[str, list[str]] = {"logs": []}
    assert secret_scan.scan_logs(str(tmp_path), secret_scan.needles(password), found) == 2
    assert found["logs"] == [str(tmp_path / "gateway.log")]


def test_result_titles_follow_the_checklist() -> None:
    result = Result(7, "notification_accepted", Status.NOT_CONFIGURED, "no webhook")
    assert result.title == "Notifications received" and not result.failed


class Listing(Recorded):
    """The recorded host, with the answers that tell its Gateways apart: which settings
    files exist (``ls``) and which unit each process belongs to (``ps ... unit``)."""

    def __init__(self, files: str, units: str = "") -> None:
        super().__init__()
        self.files, self.units = files, units

    def run(self, command: str, *, timeout: float | None = None) -> Ran:
        if command == gateways.LIST_COMMAND:
            self.commands.append(command)
            return Ran(0, self.files, "")
        if command == "ps -eo pid=,unit:100=":
            self.commands.append(command)
            return Ran(0, self.units, "")
        return super().run(command, timeout=timeout)


def test_a_hosts_gateways_are_found_by_their_settings_files() -> None:
    """The single Gateway first, then instances by name; a stray directory is no Gateway."""
    both = Listing("/etc/ibkr/ops.json\n/etc/ibkr/live/ops.json\n/etc/ibkr/paper/ops.json\n"
                   "/etc/ibkr/Not-An-Instance/ops.json\n")
    assert [layout.instance for layout in installed_layouts(both)] == [None, "live", "paper"]
    assert layouts_to_check(both, "paper") == [Layout("paper")]
    with pytest.raises(OpsError, match=r"no Gateway instance 'demo' \(it has: the single Gateway, "
                                       r"live, paper\)"):
        layouts_to_check(both, "demo")
    with pytest.raises(OpsError, match="is the stack installed"):
        layouts_to_check(Listing(""), None)


def test_an_instances_checks_count_only_its_own_jvm() -> None:
    """Beside another instance, the JVM of the other unit is not this instance's: item 1 sees
    one JVM, and the health check and notifier are told which instance they serve."""
    (pid,) = parse.gateway_jvms(parse.processes(RECORDED["ps"]["stdout"]))
    paper = Layout("paper")
    mine = Listing("", units=f"{pid} {paper.gateway_unit}\n{pid + 1} {Layout('live').gateway_unit}\n")
    assert gateway.gateway_jvms(mine, paper) == {pid: "trader"}
    theirs = Listing("", units=f"{pid} {Layout('live').gateway_unit}\n")
    assert gateway.gateway_jvms(theirs, paper) == {}
    assert gateway.gateway_jvms(theirs, DEFAULT) == {pid: "trader"}
    with contextlib.suppress(AssertionError):  # the recording is the default layout's answer
        gateway.health(theirs, paper)
    assert theirs.commands[-1] == f"{paper.health_check_tool} --instance paper --json"
    assert security.secret_files(paper) == ((paper.credentials, "root"),
                                            (paper.config_ini, "service user"))
    assert hostside_command("settings_probe.py", paper).endswith(f" {paper.ops_json}")
    assert hostside_command("settings_probe.py") == hostside_command("settings_probe.py", DEFAULT)

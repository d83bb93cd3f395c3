"""Self-healing on a real systemd guest: the health-check timer's watchdog and the login watch
against the real IBC and the Gateway stand-in, faults injected into the running instance.
The second-factor cases install a live deployment: that installer is another build, so the
Gateway directory (and the stand-in's knobs in it) is installed afresh, as a real reinstall
would; `tune` puts the module's knobs back after each install.

One guest for the module, installed through the real install path with a 10 s health-check
interval. Each test starts from a freshly started, healthy Gateway and a clean watchdog state,
and reads what the in-guest Discord receiver got during its incident: one message when it
starts, one when it is over, nothing repeated in between.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from typing import Any

import migrate_support as ms
import pytest
from sim_support import wait_for

from ibkr_ops import sandbox
from ibkr_ops.sandbox.paths import Layout

GUEST = "heal"
CONTROL_PORT = 7499
INTERVAL_S = 10
STATE = "/var/lib/ibkr-ops"
OPS = "/etc/ibkr/ops.json"
INI = "/etc/ibkr/config.ini"
GATEWAY = "ibkr-gateway.service"
ALWAYS = ["* 00:00-12:00", "* 12:00-00:00"]
EXTRA = f"IBKR_HEALTH_INTERVAL_S={INTERVAL_S}\nIBKR_MEMORY_MAX_MB=768\nIBKR_JAVA_HEAP_MB=512\n"


@pytest.fixture(scope="module")
def guest(sandbox_layout: Layout) -> Iterator[str]:
    sandbox.up([GUEST])
    try:
        ms.install(GUEST, ms.deployment(extra=EXTRA))
        tune(GUEST)
        yield GUEST
    finally:
        sandbox.down(GUEST)


def tune(name: str) -> None:
    """The stand-in's knobs for this module (sim.properties, in the Gateway directory, so a
    reinstall of the Gateway drops them). Faults are switched on in the running stand-in
    through its control port; a warm restart takes a second after IBC set the Gateway's
    auto-restart to the next minute."""
    ms.set_sim_property(name, "control_port", str(CONTROL_PORT))
    ms.set_sim_property(name, "restart_delay", "1")
    ms.set_sim_property(name, "second_factor", "off")


@pytest.fixture(scope="module")
def installed_settings(guest: str) -> dict[str, Any]:
    return dict(json.loads(ms.run(guest, f"cat {OPS}")))


Settings = Callable[..., None]


@pytest.fixture
def settings(guest: str, installed_settings: dict[str, Any]) -> Settings:
    """`settings(**overrides)`: the installed host settings with a few changed (3 s probes
    always, so a hung API costs a check 3 s rather than 10; no maintenance windows, so a test
    run in IBKR's nightly reset still heals)."""

    def write(**overrides: object) -> None:
        text = json.dumps({**installed_settings, "health_timeout_s": 3,
                           "maintenance_windows": [], **overrides})
        ms.run(guest, f"printf '%s' {shlex.quote(text)} > {OPS}.tmp && mv {OPS}.tmp {OPS}")

    return write


@pytest.fixture
def healthy(guest: str, settings: Settings) -> Iterator[str]:
    """A clean start: no faults, default watchdog settings, no state, a healthy Gateway."""
    settings()
    ms.set_fault(guest, None)
    ms.run(guest, f"systemctl stop ibkr-health-check.timer ibkr-health-check.service; "
                  f"rm -f {STATE}/watchdog.json {STATE}/health.json {STATE}/restarts.jsonl; "
                  f"systemctl reset-failed {GATEWAY}; systemctl restart {GATEWAY}")
    wait_healthy(guest)
    # One run now: on a guest booted a minute ago the timer's OnBootSec=2min would come first.
    ms.run(guest, "systemctl start ibkr-health-check.service ibkr-health-check.timer")
    yield guest
    ms.set_fault(guest, None)


def wait_healthy(name: str, timeout: float = 90) -> None:
    wait_for(lambda: bool(ms.health(name).get("healthy")), timeout, "a healthy Gateway")


def send_line(name: str, port: int, command: str) -> str:
    """One command line to a TCP port on the guest; the first answer."""
    script = (f"import socket; s = socket.create_connection(('127.0.0.1', {port}), 5); "
              f"s.sendall(b{command!r} + b'\\n'); print(s.recv(4096).decode())")
    return ms.run(name, f"python3 -c {shlex.quote(script)}").strip()


def ctl(name: str, command: str) -> str:
    """A control command to the running simulated Gateway on the guest."""
    return send_line(name, CONTROL_PORT, command)


class Inbox:
    """The guest's Discord messages from a starting point on: (title, description) pairs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = len(ms.discord_messages(name))

    def new(self) -> list[tuple[str, str]]:
        found = ms.discord_messages(self.name)[self.start:]
        pairs = []
        for message in found:
            embed = message["embeds"][0]  # type: ignore[index]
            pairs.append((str(embed["title"]), str(embed["description"])))
        return pairs

    def wait(self, predicate: Callable[[list[tuple[str, str]]], bool], timeout: float,
             what: str) -> list[tuple[str, str]]:
        try:
            wait_for(lambda: predicate(self.new()), timeout, what)
        except pytest.fail.Exception:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; messages: "
                        f"{self.new()}\n{diagnostics(self.name)}")
        return self.new()


def diagnostics(name: str) -> str:
    """What the watchdog and the login watch did, for a failure message."""
    return ms.run(name, f"cat {STATE}/watchdog.json {STATE}/login.json; echo; journalctl "
                        "--no-pager -o short-monotonic -n 40 -u ibkr-health-check.service "
                        "-u ibkr-login-watch.service -u ibkr-gateway.service")


def restarts(name: str) -> list[dict[str, Any]]:
    out = ms.run(name, f"cat {STATE}/restarts.jsonl 2>/dev/null")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def unit(name: str, *props: str) -> dict[str, str]:
    out = ms.run(name, f"systemctl show {GATEWAY} " + " ".join(f"-p {p}" for p in props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def has(messages: list[tuple[str, str]], level: str, *words: str) -> bool:
    return any(title.removeprefix("LIVE · ").startswith(level) and all(w in text for w in words)
               for title, text in messages)


def quiet_for(inbox: Inbox, periods: int) -> list[tuple[str, str]]:
    """Let several health-check periods pass; what arrived meanwhile (should be nothing)."""
    before = len(inbox.new())
    time.sleep(periods * INTERVAL_S)
    return inbox.new()[before:]


def test_hung_api_is_restarted_warm_and_reported_once_each_way(healthy: str) -> None:
    inbox = Inbox(healthy)
    assert ctl(healthy, "FAULT hang").startswith("OK")
    # The next check and its two re-probes, then the warm restart.
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), INTERVAL_S + 90,
                     "the recovery notification")
    assert [r["cause"] for r in restarts(healthy)] == ["hang"]
    assert restarts(healthy)[0]["mode"] == "warm" and restarts(healthy)[0]["ok"] is True
    assert len(got) == 2, got
    assert has(got[:1], "ERROR", "UNHEALTHY", "api: fail", "3 API probes failed",
               "command server answers", "warm restart through IBC")
    assert has(got[1:], "INFO", "healthy again", "Warm restart (hung API) done in", "memory")
    assert ms.health(healthy)["healthy"] is True
    assert quiet_for(inbox, 2) == []


def java_pid(name: str) -> str:
    """The simulated Gateway's "java" under IBC's scripts: the process IBC's code runs in."""
    main = unit(name, "MainPID")["MainPID"]
    return ms.run(name, f"pgrep -P {main} -f IbcGateway").split()[0]


def gateway_journal(name: str, since: str) -> str:
    return ms.run(name, f"journalctl --no-pager -o cat -u {GATEWAY} --since @{since}")


def test_frozen_jvm_is_stopped_at_once_and_started_again(healthy: str) -> None:
    """kill -STOP: the port still accepts TCP, the API and IBC's command server (same JVM)
    say nothing. No warm attempt, no 90 s wait for a logout: killed, started, two alerts."""
    inbox = Inbox(healthy)
    since = ms.run(healthy, "date +%s").strip()
    frozen = java_pid(healthy)
    ms.run(healthy, f"kill -STOP {frozen}")
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), INTERVAL_S + 90,
                     "the recovery notification")
    (entry,) = restarts(healthy)
    assert (entry["cause"], entry["mode"], entry["ok"]) == ("hang", "cold", True)
    assert len(got) == 2, got
    assert has(got[:1], "ERROR", "UNHEALTHY", "api: fail", "does not answer either",
               "no warm restart is tried", "stopped at once")
    assert has(got[1:], "INFO", "healthy again", "Cold restart (hung API) done in")
    journal = gateway_journal(healthy, since)
    assert "timed out" not in journal, journal
    assert ms.run(healthy, f"test -e /proc/{frozen} && echo alive").strip() == ""
    assert java_pid(healthy) != frozen
    assert quiet_for(inbox, 2) == []


def test_a_live_hung_jvm_still_gets_its_graceful_stop(healthy: str, settings: Settings) -> None:
    """The API hangs but IBC's command server answers: the JVM runs, so it is asked to restart
    warm, and when that does not come back in time the cold restart lets it log out in its
    own time (here 6 s) rather than killing it."""
    settings(warm_restart_timeout_s=5)
    ms.set_sim_property(healthy, "restart_delay", "120")  # the warm restart comes too late
    ms.set_fault(healthy, "slow-stop=6")
    try:
        ms.run(healthy, f"systemctl restart {GATEWAY}")
        wait_healthy(healthy)
        inbox = Inbox(healthy)
        since = ms.run(healthy, "date +%s").strip()
        assert ctl(healthy, "FAULT hang").startswith("OK")
        got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), INTERVAL_S + 120,
                         "the recovery notification")
    finally:
        ms.set_sim_property(healthy, "restart_delay", "1")
    (entry,) = restarts(healthy)
    assert (entry["cause"], entry["mode"], entry["ok"]) == ("hang", "warm, then cold", True)
    assert len(got) == 2, got
    assert has(got[:1], "ERROR", "UNHEALTHY", "command server answers")
    journal = gateway_journal(healthy, since)
    # The JVM ended the TERM itself (143), after its 6 s logout: no stop timeout, no kill of it.
    assert "slow-stop=6: logging out takes 6 s" in journal
    assert "IBC returned exit status 143" in journal
    assert "timed out" not in journal, journal


def test_an_existing_session_is_taken_over_without_an_alert(healthy: str) -> None:
    """Another login of the same user holds the session: IBC's own dialog handler presses
    Continue Login (ExistingSessionDetectedAction=primary) and the Gateway logs in."""
    inbox = Inbox(healthy)
    since = ms.run(healthy, "date +%s").strip()
    ms.set_fault(healthy, "existing-session")
    ms.run(healthy, f"systemctl restart {GATEWAY}")
    wait_healthy(healthy)
    journal = gateway_journal(healthy, since)
    assert "IBC: detected dialog entitled: Existing session detected; event=Opened" in journal
    assert "IBC: Click button: Continue Login" in journal
    assert quiet_for(inbox, 2) == []
    assert restarts(healthy) == []


def test_stop_through_ibc_logs_out_and_stays_stopped(healthy: str) -> None:
    """STOP to IBC's command server: the Gateway logs out and IBC ends with status 0, which
    systemd takes as a deliberate stop (no restart, not failed); the health check says once
    that it is down."""
    inbox = Inbox(healthy)
    since = ms.run(healthy, "date +%s").strip()
    port = json.loads(ms.run(healthy, f"cat {OPS}"))["command_server_port"]
    assert send_line(healthy, port, "STOP").startswith("OK")
    wait_for(lambda: unit(healthy, "ActiveState")["ActiveState"] == "inactive", 60,
             "the Gateway to stop")
    state = unit(healthy, "ActiveState", "Result", "NRestarts")
    assert (state["ActiveState"], state["Result"]) == ("inactive", "success"), state
    journal = gateway_journal(healthy, since)
    assert "IBC returned exit status 0" in journal
    time.sleep(2 * INTERVAL_S)  # the watchdog restarts crashes and hangs, not a deliberate stop
    got = inbox.new()
    assert unit(healthy, "ActiveState", "NRestarts") == {"ActiveState": "inactive",
                                                         "NRestarts": state["NRestarts"]}
    assert restarts(healthy) == []
    assert len(got) == 1 and has(got, "ERROR", "UNHEALTHY", "service: fail"), got


def test_a_warm_restart_after_the_weekly_reset_falls_back_to_a_full_login(
        healthy: str, settings: Settings) -> None:
    """The first restart after IBKR's Sunday reset when the last full login came before it
    (here: the stand-in's record of that login is moved back in time): IBC relaunches the
    Gateway warm, the Gateway refuses its autorestart token and waits at the login frame, and
    the restart runner's bound turns it into a cold start, a full login, reported as such."""
    settings(warm_restart_timeout_s=20)
    since = ms.run(healthy, "date +%s").strip()
    ms.run(healthy, "sed -i 's/^full_login=.*/full_login=1000000000/' "
                    "/home/trader/Jts/*/standin.properties")
    out = ms.run(healthy, "/usr/local/bin/ibkr-gateway-restart --mode warm --force --no-notify "
                          "2>&1; echo exit=$?")
    assert out.rstrip().endswith("exit=0"), out
    (entry,) = restarts(healthy)
    assert (entry["mode"], entry["ok"]) == ("warm, then cold", True), entry
    journal = gateway_journal(healthy, since)
    assert "autorestart token is from before IBKR's weekly reset" in journal
    assert journal.count("IBC: Login has completed") == 1, journal  # the cold start's login
    assert ms.health(healthy)["healthy"] is True


def test_rejected_login_is_stopped_after_at_most_one_retry(healthy: str) -> None:
    inbox = Inbox(healthy)
    since = ms.run(healthy, "date +%s").strip()
    ms.set_fault(healthy, "reject-login")
    ms.run(healthy, f"systemctl restart {GATEWAY}")
    wait_for(lambda: unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed"), 60,
             "the login watch to stop the Gateway")
    later = quiet_for(inbox, 3)
    attempts = ms.run(healthy, f"journalctl --no-pager -o cat _SYSTEMD_UNIT={GATEWAY} "
                               f"--since @{since} | grep -c 'Login attempt'").strip()
    assert 1 <= int(attempts) <= 2, f"{attempts} login attempts"
    assert unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed")
    got = inbox.new()
    assert later == []
    assert len(got) == 1, got
    # The real IBC logs the dialog's title, not IBKR's wording inside it.
    assert has(got, "ERROR", "IBKR rejected the login (IBC: Login failed)",
               "Gateway has been stopped")
    assert restarts(healthy) == []


def night_zone() -> str:
    """A fixed-offset zone where it is 20:00-21:00 now: outside any trading session, so the
    pre-restart check allows a restart whatever time the test runs."""
    offset = (20 - time.gmtime().tm_hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def test_memory_leak_warns_then_restarts_outside_the_session(healthy: str,
                                                             settings: Settings) -> None:
    inbox = Inbox(healthy)
    zone = night_zone()
    # The warning point sits above a freshly started JVM (about 85 MB resident), so the
    # restarted Gateway counts as healthy again.
    settings(memory_ceiling_mb=250, memory_warn_ratio=0.6, market_timezone=zone,
             blackout_windows=ALWAYS)
    assert ctl(healthy, "FAULT leak=300").startswith("OK")  # 5 MB/s
    got = inbox.wait(lambda m: has(m, "ERROR", "memory: fail"), 120,
                     "the memory ceiling notification")
    assert has(got, "WARNING", "Gateway warning", "memory: warn")
    assert has(got, "ERROR", "waits for the next allowed moment", "blackout")
    assert restarts(healthy) == []
    # The window opens: the next check restarts it.
    settings(memory_ceiling_mb=250, memory_warn_ratio=0.6, market_timezone=zone)
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), 90, "the memory restart")
    (entry,) = restarts(healthy)
    assert entry["cause"] == "memory" and entry["ok"] is True
    assert entry["rss_before_mb"] > 250 > entry["rss_after_mb"]
    assert has(got, "INFO", "memory above the ceiling", f"memory {entry['rss_before_mb']:.0f} ->")
    assert len(got) == 3, got


def test_crash_loop_is_backed_off_then_left_for_a_person(healthy: str,
                                                         settings: Settings) -> None:
    inbox = Inbox(healthy)
    settings(crash_loop_crashes=3, crash_backoff_s=5, max_restarts_per_hour=1)
    ms.set_fault(healthy, "crash-after=1")
    ms.run(healthy, f"systemctl restart {GATEWAY}")
    got = inbox.wait(lambda m: has(m, "ERROR", "crash loop", "stays stopped"), 300,
                     "the crash loop to reach the cap")
    assert has(got, "ERROR", "crash loop", "starts again in 5 s",
               "automatic restart 1 of 1 allowed per hour")
    assert [r["cause"] for r in restarts(healthy)] == ["crash-loop"]
    assert unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed")
    count = unit(healthy, "NRestarts")["NRestarts"]
    assert quiet_for(inbox, 3) == []
    assert unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed")
    assert unit(healthy, "NRestarts")["NRestarts"] == count
    assert len(restarts(healthy)) == 1
    # A person fixes it and starts it: the next check says it recovered.
    ms.set_fault(healthy, None)
    ms.run(healthy, "/usr/local/bin/ibkr-gateway-restart --mode cold --force --no-notify")
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), 60, "the recovery message")
    assert [title.split(" ")[0] for title, _ in got].count("ERROR") >= 2


def metrics_text(name: str) -> str:
    return ms.run(name, f"cat {STATE}/metrics/ibkr_gateway.prom")


def test_a_broken_farm_is_reported_once_each_way_and_not_restarted(healthy: str) -> None:
    inbox = Inbox(healthy)
    assert ctl(healthy, "FAULT farm-broken").startswith("OK")
    got = inbox.wait(lambda m: has(m, "WARNING", "upstream: warn"), INTERVAL_S + 30,
                     "the broken-farm warning")
    assert has(got, "WARNING", "market data farm usfarm broken (2103)",
               "historical data farm ushmds broken (2105)", "no restart")
    assert 'ibkr_gateway_data_farm_ok{mode="paper",farm="usfarm",kind="market data"} 0' in \
        metrics_text(healthy)
    assert quiet_for(inbox, 2) == []
    assert ctl(healthy, "CLEAR farm-broken").startswith("OK")
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), INTERVAL_S + 30,
                     "the recovery notification")
    assert len(got) == 2, got
    assert restarts(healthy) == []
    assert ms.health(healthy)["healthy"] is True


def test_lost_link_to_ibkr_fails_past_its_bound_once_each_way_and_not_restarted(
        healthy: str, settings: Settings) -> None:
    settings(upstream_lost_fail_s=25)
    inbox = Inbox(healthy)
    assert ctl(healthy, "FAULT connectivity-lost").startswith("OK")
    got = inbox.wait(lambda m: has(m, "ERROR", "upstream: fail"), 25 + 2 * INTERVAL_S + 15,
                     "the lost-link error")
    assert len(got) == 1, got  # the short loss before the bound was no news
    assert has(got, "ERROR", "IBKR connection lost for", "1100", "no restart")
    report = ms.health(healthy)
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[union-attr]
    assert checks["upstream"]["status"] == "fail" and checks["api"]["status"] == "ok"
    assert "ibkr_gateway_ibkr_connected{mode=\"paper\"} 0" in metrics_text(healthy)
    assert ctl(healthy, "CLEAR connectivity-lost").startswith("OK")
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), INTERVAL_S + 30,
                     "the recovery notification")
    assert len(got) == 2, got
    assert restarts(healthy) == []


def test_a_failure_in_ibkrs_maintenance_is_told_once_and_waits_for_its_end(
        healthy: str, settings: Settings) -> None:
    """Inside the window (here always, in a zone where it is evening now): a hung API is told
    once and left alone; once the window is over, the next check heals it."""
    zone = night_zone()
    settings(market_timezone=zone, maintenance_windows=ALWAYS)
    inbox = Inbox(healthy)
    assert ctl(healthy, "FAULT hang").startswith("OK")
    got = inbox.wait(lambda m: has(m, "WARNING", "maintenance window"), INTERVAL_S + 30,
                     "the maintenance notice")
    assert has(got, "WARNING", "UNHEALTHY", "api: fail", "re-logins wait until")
    assert quiet_for(inbox, 3) == []
    assert restarts(healthy) == []
    settings(market_timezone=zone)  # the window ends
    got = inbox.wait(lambda m: has(m, "INFO", "healthy again"), INTERVAL_S + 60,
                     "the recovery notification")
    assert [r["cause"] for r in restarts(healthy)] == ["hang"]
    assert len(got) == 3, got  # the notice, the hang restart's failure, its recovery


@pytest.mark.parametrize("action", ["exit", "restart"])
def test_unapproved_second_factor_follows_the_configured_action(healthy: str,
                                                                action: str) -> None:
    """A live login whose prompt nobody approves. IBC 3.24 itself only waits at the login
    dialog (exit) or logs in again with a new prompt (restart): exit stops the Gateway with one
    error and no second prompt; restart says it once and the next prompt, approved, logs in."""
    ms.install(healthy, ms.deployment("live", extra=EXTRA + f"IBKR_TWOFA_TIMEOUT_ACTION={action}\n"))
    tune(healthy)
    inbox = Inbox(healthy)
    since = ms.run(healthy, "date +%s").strip()
    ms.set_sim_property(healthy, "second_factor", "manual")
    ms.set_sim_property(healthy, "second_factor_timeout", "6")  # the prompt's own expiry
    ms.run(healthy, f"sed -i 's/^SecondFactorAuthenticationTimeout=.*/"
                    f"SecondFactorAuthenticationTimeout=5/' {INI}")

    def prompts() -> int:
        return int(ms.run(healthy, f"journalctl --no-pager -o cat _SYSTEMD_UNIT={GATEWAY} "
                                   f"--since @{since} | grep -c 'Second Factor Authentication "
                                   "initiated'").strip() or 0)

    try:
        ms.run(healthy, f"systemctl restart {GATEWAY}")
        if action == "exit":
            got = inbox.wait(lambda m: has(m, "ERROR", "second factor was not approved"), 60,
                             "the second-factor timeout notification")
            wait_for(lambda: unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed"),
                     30, "the login watch to stop the Gateway")
            later = quiet_for(inbox, 3)
            assert unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed")
            assert prompts() == 1
            assert later == []
            assert len(got) == 2, got
            assert has(got[1:], "ERROR", "IBKR_TWOFA_TIMEOUT_ACTION=exit", "stays stopped")
        else:
            wait_for(lambda: prompts() >= 2, 60, "IBC's second login after the timeout")
            assert unit(healthy, "ActiveState")["ActiveState"] == "active"
            assert ctl(healthy, "APPROVE") == "OK approved"
            wait_healthy(healthy)
            got = inbox.new()
            assert has(got, "WARNING", "IBKR_TWOFA_TIMEOUT_ACTION=restart", "approve the new prompt")
            assert not any(title.startswith("ERROR") for title, _ in got), got
        assert has(got[:1], "WARNING", "approve the login on IBKR Mobile")
        journal = ms.run(healthy, f"journalctl --no-pager -o cat _SYSTEMD_UNIT={GATEWAY} "
                                  f"--since @{since}")
        assert "IBC: Second Factor Authentication initiated" in journal
        assert "IBC returned exit status 87" not in journal  # IBC does not exit here
    finally:
        ms.set_sim_property(healthy, "second_factor", "off")
        ms.set_sim_property(healthy, "second_factor_timeout", None)
        ms.install(healthy, ms.deployment(extra=EXTRA))
        tune(healthy)


def test_an_approved_login_that_hangs_is_relaunched_once_then_stopped(healthy: str) -> None:
    """The prompt is approved but the login never completes: IBC exits 87 after
    SecondFactorAuthenticationExitInterval and ibcstart.sh relaunches it (relogin is
    permitted with IBKR_TWOFA_TIMEOUT_ACTION=restart). One new prompt is worth a try; the
    second hang stops the Gateway, so prompts do not go on."""
    ms.install(healthy, ms.deployment("live", extra=EXTRA + "IBKR_TWOFA_TIMEOUT_ACTION=restart\n"))
    tune(healthy)
    inbox = Inbox(healthy)
    since = ms.run(healthy, "date +%s").strip()
    ms.set_sim_property(healthy, "second_factor", "auto")  # approved after a second
    ms.set_fault(healthy, "login-hang")
    ms.run(healthy, f"sed -i 's/^SecondFactorAuthenticationExitInterval=.*/"
                    f"SecondFactorAuthenticationExitInterval=5/' {INI}")
    try:
        ms.run(healthy, f"systemctl restart {GATEWAY}")
        got = inbox.wait(lambda m: has(m, "ERROR", "hung again"), 120, "the stop after two hangs")
        wait_for(lambda: unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed"),
                 30, "the login watch to stop the Gateway")
        later = quiet_for(inbox, 2)
        journal = gateway_journal(healthy, since)
        # The first exit is relaunched by ibcstart.sh; on the second the watch stops the unit
        # as soon as IBC says it closes.
        assert journal.count("IBC closing because login has not completed") == 2, journal
        assert "IBC returned exit status 87" in journal
        assert journal.count("Second Factor Authentication initiated") == 2
        assert has(got[:1], "WARNING", "approve the login on IBKR Mobile")
        assert has(got, "WARNING", "was approved, but the login did not complete",
                   "approve the new prompt")
        assert len(got) == 3, got
        assert has(got[2:], "ERROR", "hung again", "has been stopped")
        assert later == [] and restarts(healthy) == []
        assert unit(healthy, "ActiveState")["ActiveState"] in ("inactive", "failed")
    finally:
        ms.set_fault(healthy, None)
        ms.set_sim_property(healthy, "second_factor", "off")
        ms.install(healthy, ms.deployment(extra=EXTRA))
        tune(healthy)

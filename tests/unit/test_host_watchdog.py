"""The watchdog's decisions, rule by rule, without a host: what a run does and says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from host_peer import Conn, healthy, peer

from ibkr_ops.host import alerts, health, history, systemd, upstream, watchdog
from ibkr_ops.host.config import HostConfig

NOW = 1_800_000_000.0
CONFIG = HostConfig(state_dir="/nonexistent")
LAYERS = dict.fromkeys(health.LAYERS, health.OK)


def report(**statuses: str) -> health.Report:
    merged = {**LAYERS, **statuses}
    return health.Report(tuple(health.Check(n, s, f"{n} detail", 1.0)
                               for n, s in merged.items()), 5.0)


def unit(n_restarts: int = 0, active: bool = True, last_exit: str = "",
         since: float = NOW - 3600) -> systemd.UnitState:
    """The Gateway's unit, by default started an hour ago."""
    return systemd.UnitState("ibkr-gateway.service", "loaded",
                             "active" if active else "inactive",
                             "running" if active else "dead", 42, "/x", since, n_restarts,
                             last_exit)


def never() -> tuple[bool, str]:
    return False, "inside the trading session"


def decide(ws: watchdog.WatchState, rep: health.Report, *, u: systemd.UnitState | None = None,
           login: dict[str, object] | None = None, restarts: list[history.Restart] | None = None,
           config: HostConfig = CONFIG, now: float = NOW,
           window: watchdog.Window = never) -> watchdog.Decision:
    return watchdog.decide(config, ws, rep, u or unit(), login or {}, restarts or [], now,
                           window)


def test_a_healthy_run_does_nothing() -> None:
    ws = watchdog.WatchState(api_failures=2)
    assert decide(ws, report()) == watchdog.Decision()
    assert ws.api_failures == 0


def test_a_hung_api_is_probed_again_and_restarted_on_the_third_failure() -> None:
    ws = watchdog.WatchState()
    first = decide(ws, report(api=health.FAIL))
    assert (first.action, first.cause) == ("probe", "hang")
    assert "failed 1 probe(s) in a row" in first.verdict.context
    assert decide(ws, report(api=health.FAIL)).action == "probe"
    third = decide(ws, report(api=health.FAIL))
    assert (third.action, third.cause) == ("restart", "hang")
    assert ws.api_failures == 0


def test_a_closed_port_with_the_process_alive_counts_too() -> None:
    ws = watchdog.WatchState(api_failures=2)
    assert decide(ws, report(port=health.FAIL, api=health.SKIP)).action == "restart"


def test_no_process_is_systemds_business_not_a_hang() -> None:
    ws = watchdog.WatchState(api_failures=2)
    assert decide(ws, report(process=health.FAIL, port=health.FAIL)).action == ""


def test_the_hourly_cap_stops_restarts_and_says_so_once() -> None:
    done = [history.Restart(NOW - 600 * i, "hang", "warm", True) for i in range(1, 4)]
    ws = watchdog.WatchState(api_failures=2)
    capped = decide(ws, report(api=health.FAIL), restarts=done)
    assert capped.action == ""
    assert capped.verdict.notice is not None
    level, text = capped.verdict.notice
    assert level == "error"
    assert "3 automatic restarts were already made in the last hour" in text
    again = decide(ws, report(api=health.FAIL), restarts=done)
    assert again.verdict.notice is None  # held: not repeated while it lasts
    assert decide(ws, report(), restarts=done) == watchdog.Decision()  # healthy: hold lifted
    assert ws.hold == ""


def test_restarts_older_than_an_hour_and_daily_ones_do_not_count() -> None:
    done = [history.Restart(NOW - 4000, "hang", "warm", True)] * 3 + \
        [history.Restart(NOW - 60, "scheduled", "warm", True)] * 3
    ws = watchdog.WatchState(api_failures=2)
    assert decide(ws, report(api=health.FAIL), restarts=done).action == "restart"


@pytest.mark.parametrize("state", ["logging-in", "twofa-wait"])
def test_a_login_under_way_is_not_a_hang(state: str) -> None:
    ws = watchdog.WatchState(api_failures=2)
    decision = decide(ws, report(port=health.FAIL), login={"state": state, "since": NOW - 30})
    assert decision.action == ""
    # Logging in for 30 s is no news; a second-factor wait the login watch announced.
    assert (decision.verdict.quiet, decision.verdict.explained) == (
        (True, False) if state == "logging-in" else (False, True))
    assert ws.api_failures == 0


def test_a_start_before_its_first_login_line_is_no_news() -> None:
    """systemctl start: the port is closed until IBC logs in; the watch's last event (the
    previous login) is older than this start."""
    ws = watchdog.WatchState()
    old_login = {"state": "logged-in", "since": NOW - 3000}
    decision = decide(ws, report(port=health.FAIL, api=health.SKIP), u=unit(since=NOW - 5),
                      login=old_login)
    assert decision == watchdog.Decision(verdict=alerts.Verdict(quiet=True))
    # Past the stall bound it is a failing Gateway again: probed, then restarted.
    late = decide(ws, report(port=health.FAIL, api=health.SKIP),
                  u=unit(since=NOW - CONFIG.login_stall_s - 1), login=old_login)
    assert late.action == "probe" and not late.verdict.quiet


@pytest.mark.parametrize(("active", "sub", "quiet"), [
    ("deactivating", "stop-sigterm", True), ("activating", "start-pre", True),
    ("activating", "auto-restart", False)])
def test_a_stop_or_start_under_way_is_no_news_but_a_crash_restart_is(active: str, sub: str,
                                                                      quiet: bool) -> None:
    u = dataclasses.replace(unit(), active_state=active, sub_state=sub)
    decision = decide(watchdog.WatchState(), report(service=health.FAIL, port=health.FAIL,
                                                    api=health.SKIP), u=u,
                      login={"state": "logged-in", "since": NOW - 3000})
    assert decision.verdict.quiet is quiet


def test_a_login_past_the_stall_bound_is_alerted_unless_the_watch_said_so() -> None:
    stuck = {"state": "logging-in", "since": NOW - CONFIG.login_stall_s - 5}
    told = decide(watchdog.WatchState(), report(port=health.FAIL), login={**stuck, "stalled": True})
    assert told.verdict.explained and not told.verdict.quiet
    untold = decide(watchdog.WatchState(), report(port=health.FAIL), login=stuck)
    assert (untold.action, untold.verdict.explained, untold.verdict.quiet) == ("", False, False)


def test_a_start_after_a_crash_is_news() -> None:
    ws = watchdog.WatchState(seen_restarts=0)
    decision = decide(ws, report(port=health.FAIL, api=health.SKIP),
                      u=unit(1, last_exit="killed by signal 9", since=NOW - 3),
                      login={"state": "logged-in", "since": NOW - 3000})
    assert (decision.action, decision.verdict.quiet) == ("probe", False)


def test_a_login_stuck_for_long_is_a_hang_again() -> None:
    ws = watchdog.WatchState(api_failures=2)
    stale = {"state": "logging-in", "since": NOW - watchdog.LOGIN_GRACE_S - 1}
    assert decide(ws, report(port=health.FAIL, api=health.SKIP), login=stale).action == "restart"


def test_a_rejected_login_is_never_retried_and_not_alerted_twice() -> None:
    ws = watchdog.WatchState(api_failures=2)
    decision = decide(ws, report(service=health.FAIL, process=health.FAIL, port=health.FAIL),
                      u=unit(active=False), login={"state": "rejected", "since": NOW - 5})
    assert decision.action == ""
    assert decision.verdict.explained


def test_a_gateway_stopped_after_a_hung_approved_login_stays_stopped_quietly() -> None:
    ws = watchdog.WatchState(api_failures=2)
    decision = decide(ws, report(service=health.FAIL, process=health.FAIL, port=health.FAIL),
                      u=unit(active=False), login={"state": "twofa-hung", "since": NOW - 5})
    assert decision.action == "" and decision.verdict.explained


def test_a_crash_loop_is_stopped_backed_off_and_started_again() -> None:
    config = dataclasses.replace(CONFIG, crash_loop_crashes=3, crash_backoff_s=60)
    ws = watchdog.WatchState()
    assert decide(ws, report(), u=unit(1), config=config).verdict.note is not None
    assert decide(ws, report(), u=unit(2), config=config, now=NOW + 15).action == ""
    loop = decide(ws, report(), u=unit(3, last_exit="killed by signal 9"), config=config,
                  now=NOW + 30)
    assert (loop.action, loop.cause) == ("stop", "crash-loop")
    assert loop.verdict.notice is not None
    assert "3 crashes within 10 min (last: killed by signal 9)" in loop.verdict.notice[1]
    assert "starts again in 60 s" in loop.verdict.notice[1]
    waiting = decide(ws, report(service=health.FAIL), u=unit(0, active=False), config=config,
                     now=NOW + 60)
    assert waiting.action == "" and waiting.verdict.explained
    start = decide(ws, report(service=health.FAIL), u=unit(0, active=False), config=config,
                   now=NOW + 91)
    assert (start.action, start.cause) == ("start", "crash-loop")


def test_the_back_off_doubles_and_is_bounded() -> None:
    config = dataclasses.replace(CONFIG, crash_loop_crashes=1, crash_backoff_s=2000,
                                 max_restarts_per_hour=60)
    ws = watchdog.WatchState()
    decide(ws, report(), u=unit(1), config=config)
    assert ws.backoff_s == 2000
    ws.backoff_until = None
    decide(ws, report(), u=unit(2), config=config)
    assert ws.backoff_s == watchdog.MAX_BACKOFF_S


def test_a_crash_loop_past_the_cap_stays_stopped() -> None:
    config = dataclasses.replace(CONFIG, crash_loop_crashes=1, max_restarts_per_hour=1)
    done = [history.Restart(NOW - 100, "crash-loop", "start", True)]
    ws = watchdog.WatchState()
    decision = decide(ws, report(), u=unit(1), restarts=done, config=config)
    assert decision.action == "stop"
    assert decision.verdict.notice is not None
    assert "stays stopped for you to look at" in decision.verdict.notice[1]
    assert ws.backoff_until is None and ws.hold


def test_systemd_counting_from_zero_again_is_not_a_crash() -> None:
    ws = watchdog.WatchState(seen_restarts=4)
    assert decide(ws, report(), u=unit(0)) == watchdog.Decision()
    assert ws.crashes == []


def test_memory_above_the_ceiling_waits_for_the_window_and_says_so_once() -> None:
    ws = watchdog.WatchState()
    first = decide(ws, report(memory=health.FAIL))
    assert first.action == ""
    assert "waits for the next allowed moment: inside the trading session" in \
        first.verdict.context
    assert decide(ws, report(memory=health.FAIL)) == watchdog.Decision()
    allowed = decide(ws, report(memory=health.FAIL), window=lambda: (True, "after the close"))
    assert (allowed.action, allowed.cause) == ("restart", "memory")


@pytest.mark.parametrize(("setting", "action"), [("force", "restart"), ("off", "")])
def test_memory_restart_force_and_off(setting: str, action: str) -> None:
    config = dataclasses.replace(CONFIG, memory_restart=setting)
    ws = watchdog.WatchState()
    assert decide(ws, report(memory=health.FAIL), config=config).action == action


def silent(conn: Conn) -> None:
    """A Gateway that accepts TCP and never answers, this once."""
    while True:
        conn._fill()


def test_a_failed_check_is_probed_again_within_the_run(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The API is silent once, then answers: the same run finds out, restarts nothing and
    sends nothing."""
    monkeypatch.setattr(watchdog, "REPROBE_GAP_S", 0.05)
    sent: list[tuple[str, str]] = []
    # Connections: the port check, the probe (silent), then both of the re-probe's run.
    with peer(healthy, silent, healthy) as (port, _):
        config = HostConfig(api_port=port, health_timeout_s=0.5, state_dir=str(tmp_path))
        first = health.run(config)
        assert not first.healthy
        final, words = watchdog.supervise(config, first,
                                          lambda _c, level, text: sent.append((level, text)))
    assert final.healthy, final.summary()
    assert "the API answered again on probe 2" in words
    assert sent == []
    assert history.load(config) == []


FARM_OK = (2104, "Market data farm connection is OK:usfarm")
FARM_BROKEN = (2103, "Market data farm connection is broken:usfarm")
LINK_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")


def upstream_report(messages: list[tuple[int, str]], lost_for: float = 0,
                    **statuses: str) -> health.Report:
    """A run whose API answered with these status messages (the upstream layer judged)."""
    link = upstream.read(messages)
    status, detail = upstream.judge(link, lost_for, CONFIG.upstream_lost_fail_s)
    merged = {**LAYERS, "upstream": status, **statuses}
    checks = tuple(health.Check(n, s, detail if n == "upstream" else f"{n} detail", 1.0)
                   for n, s in merged.items())
    return health.Report(checks, 5.0, link=link)


def alerts_over(tmp_path: Path, runs: list[health.Report]) -> list[tuple[str, str]]:
    """Decide and alert run by run, as the timer's runs would; the messages sent."""
    config = dataclasses.replace(CONFIG, state_dir=str(tmp_path))
    ws = watchdog.WatchState()
    sent: list[tuple[str, str]] = []
    for i, rep in enumerate(runs):
        decision = decide(ws, rep, config=config, now=NOW + 30 * i)
        assert decision.action == "", decision
        alerts.on_report(config, rep, verdict=decision.verdict,
                         deliver=lambda _c, level, text: sent.append((level, text)))
    return sent


def test_a_broken_farm_is_alerted_once_each_way_and_never_restarted(tmp_path: Path) -> None:
    broken = upstream_report([FARM_BROKEN])
    sent = alerts_over(tmp_path, [upstream_report([FARM_OK]), broken, broken, broken,
                                  upstream_report([FARM_OK]), upstream_report([FARM_OK])])
    assert [level for level, _ in sent] == ["warning", "info"]
    assert "upstream: warn - market data farm usfarm broken (2103)" in sent[0][1]
    assert "IBKR's side, not this host's: no restart" in sent[0][1]
    assert sent[1][1].startswith("Gateway healthy again")


def test_a_short_loss_of_the_link_is_no_news(tmp_path: Path) -> None:
    lost = upstream_report([LINK_LOST], lost_for=30)
    assert alerts_over(tmp_path, [lost, lost, upstream_report([FARM_OK])]) == []


def test_a_long_loss_is_alerted_when_it_passes_the_bound_and_when_it_ends(
        tmp_path: Path) -> None:
    runs = [upstream_report([LINK_LOST], lost_for=s) for s in (0, 60, 120, 180, 210)]
    sent = alerts_over(tmp_path, [*runs, upstream_report([FARM_OK])])
    assert [level for level, _ in sent] == ["error", "info"]
    assert "upstream: fail - IBKR connection lost for 180 s" in sent[0][1]
    assert "no restart" in sent[0][1]
    assert sent[1][1].startswith("Gateway healthy again")


def test_a_farm_breaking_under_another_warning_still_gets_its_own_message(
        tmp_path: Path) -> None:
    """The overall status stays warn (memory), so the farm's news goes out as a note."""
    sent = alerts_over(tmp_path, [upstream_report([FARM_OK], memory=health.WARN),
                                  upstream_report([FARM_BROKEN], memory=health.WARN),
                                  upstream_report([FARM_OK], memory=health.WARN)])
    assert [level for level, _ in sent] == ["warning", "warning", "info"]
    assert "market data farm usfarm broken" in sent[1][1]
    assert sent[2][1].startswith("IBKR's side is back")


WINDOW_END = NOW + 3600
INSIDE: watchdog.Maintenance = ("* 23:45-00:45", WINDOW_END)


def window_runs(tmp_path: Path, runs: list[tuple[health.Report, watchdog.Maintenance | None]],
                ws: watchdog.WatchState | None = None,
                ) -> tuple[list[watchdog.Decision], list[tuple[str, str]]]:
    """Decide and alert run by run, 30 s apart, each inside the window given (or not)."""
    config = dataclasses.replace(CONFIG, state_dir=str(tmp_path))
    ws = ws or watchdog.WatchState()
    decisions, sent = [], []
    for i, (rep, inside) in enumerate(runs):
        decision = watchdog.decide(config, ws, rep, unit(), {}, [], NOW + 30 * i, never, inside)
        decisions.append(decision)
        alerts.on_report(config, rep, verdict=decision.verdict,
                         deliver=lambda _c, level, text: sent.append((level, text)))
    return decisions, sent


def test_a_failure_in_ibkrs_maintenance_is_told_once_and_not_restarted(tmp_path: Path) -> None:
    hung = report(api=health.FAIL)
    decisions, sent = window_runs(tmp_path, [(hung, INSIDE)] * 5)
    assert [d.action for d in decisions] == [""] * 5  # no probe, no restart, no re-login
    assert len(sent) == 1
    level, text = sent[0]
    assert level == "warning"
    assert text.startswith("Gateway UNHEALTHY\napi: fail")
    assert "inside IBKR's maintenance window (* 23:45-00:45, America/New_York)" in text
    assert "re-logins wait until" in text


def test_flapping_in_the_window_is_told_once_each_way_then_quiet(tmp_path: Path) -> None:
    hung, fine = report(api=health.FAIL), report()
    _, sent = window_runs(tmp_path, [(fine, INSIDE), (hung, INSIDE), (fine, INSIDE),
                                     (hung, INSIDE), (fine, INSIDE), (hung, INSIDE),
                                     (fine, INSIDE)])
    assert [level for level, _ in sent] == ["warning", "info"]
    assert sent[1][1].startswith("Gateway healthy again")


def test_after_the_window_a_failure_is_healed_again(tmp_path: Path) -> None:
    hung = report(api=health.FAIL)
    decisions, _ = window_runs(tmp_path, [(hung, INSIDE), (hung, INSIDE), (hung, None)])
    assert decisions[-1].action == "probe"  # the hang rule is back: probed, then restarted


def test_a_crash_loops_start_waits_for_the_end_of_the_window() -> None:
    ws = watchdog.WatchState(backoff_s=300, backoff_until=NOW + 300)
    down = report(service=health.FAIL, process=health.FAIL, port=health.FAIL, api=health.SKIP)
    waiting = watchdog.decide(CONFIG, ws, down, unit(active=False), {}, [], NOW + 400, never,
                              INSIDE)
    assert waiting.action == "" and ws.backoff_until == WINDOW_END
    start = watchdog.decide(CONFIG, ws, down, unit(active=False), {}, [], WINDOW_END + 1, never)
    assert (start.action, start.cause) == ("start", "crash-loop")


OPEN = NOW - 3600  # the session opened an hour before NOW
IDLE = dataclasses.replace(CONFIG, bot_idle_alert_min=15)


def with_clients(count: int) -> health.Report:
    return dataclasses.replace(report(), api_clients=count)


def idle_runs(runs: list[tuple[int, float, float | None]],
              config: HostConfig = IDLE) -> list[alerts.Verdict]:
    """(clients, time, session open) per run: the verdicts."""
    ws = watchdog.WatchState()
    return [watchdog.decide(config, ws, with_clients(n), unit(), {}, [], at, never, None, opened)
            .verdict for n, at, opened in runs]


def test_no_bot_for_the_set_minutes_of_the_session_is_told_once_and_its_return_once() -> None:
    verdicts = idle_runs([(1, NOW, OPEN), (0, NOW + 14 * 60, OPEN), (0, NOW + 15 * 60, OPEN),
                          (0, NOW + 16 * 60, OPEN), (2, NOW + 17 * 60, OPEN),
                          (2, NOW + 18 * 60, OPEN)])
    notes = [v.note for v in verdicts]
    assert notes[:2] == [None, None]
    assert notes[2] is not None and notes[2][0] == "warning"
    assert "No bot has been connected to the Gateway for 15 min" in notes[2][1]
    assert notes[3] is None
    assert notes[4] == ("info", "A bot is connected to the Gateway again (2 API client(s)).")
    assert notes[5] is None


def test_idleness_counts_from_the_open_and_not_outside_the_session() -> None:
    # Nobody connected all night: at 15 min after the open it is news, not before.
    assert idle_runs([(0, OPEN - 7200, None), (0, OPEN + 14 * 60, OPEN)])[-1].note is None
    assert idle_runs([(0, OPEN - 7200, None), (0, OPEN + 15 * 60, OPEN)])[-1].note is not None
    # Off by default; after the close, nothing.
    assert idle_runs([(0, NOW, OPEN)], config=CONFIG)[0].note is None
    assert idle_runs([(0, NOW + 99999, None)])[0].note is None

"""The health-check timer's second job: heal what a restart heals, and only that.

systemd's Restart= sees a process that died; the Gateway's worst failures leave it alive.
Each timer run, after the layered check, `supervise` decides:
- a hung API (the process alive, the API failing): confirmed inside the same run by
  re-probes seconds apart (`hang_restart_after` failed probes in all), then a warm restart,
  cold only when warm does not bring the API back; a JVM whose IBC command server is silent
  too is frozen, so it gets no warm attempt and is stopped at once (it cannot log out);
- a crash loop (systemd's own restarts piling up): stop, back off, start again;
- memory above the ceiling: a restart when the pre-restart check allows (or at once with
  `memory_restart=force`);
- a login the login watch reported (rejected, waiting for a second factor): nothing, and no
  second alert about it;
- IBKR's side failing (a broken data farm, the link to IBKR lost; the `upstream` layer):
  never a restart, one alert when it starts and one when it ends, and none for a short loss
  of the link the Gateway repairs itself;
- a failure inside one of IBKR's maintenance windows (the nightly reset, the weekend
  maintenance; outside trading hours): one message, no restart and no re-login until the
  window ends, and no message for what comes and goes while IBKR is down.
Its own restarts are capped per hour; past the cap it stops acting and says so once. The
decision (`decide`) is pure, so each rule is tested without a host.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ibkr_ops.errors import OpsError
from ibkr_ops.host import (
    alerts,
    desupport,
    health,
    history,
    human,
    loginwatch,
    market,
    metrics,
    prerestart,
    proc,
    restart,
    state,
    systemd,
)
from ibkr_ops.host.config import HostConfig

STATE_FILE = "watchdog.json"
MAX_BACKOFF_S = 3600.0
# A login that has not finished after this long no longer explains a failing API.
LOGIN_GRACE_S = 600.0
START_TIMEOUT_S = 120.0
# A failed API check is confirmed at once by re-probes this far apart, each allowed what
# ib_async's connect allows a Gateway (4 s): one slower than that fails every bot's connect.
REPROBE_GAP_S = 2.0
REPROBE_TIMEOUT_S = 4.0
# IBC's command server, in the Gateway's JVM, answers in milliseconds while the JVM runs.
JVM_PING_TIMEOUT_S = 3.0


@dataclass
class WatchState:
    """What the watchdog remembers between runs (`<state_dir>/watchdog.json`)."""

    api_failures: int = 0
    seen_restarts: int = 0
    crashes: list[float] = field(default_factory=list)
    backoff_s: float = 0.0
    backoff_until: float | None = None
    hold: str = ""
    memory_deferred: bool = False
    # The upstream layer as last announced: "" (ok), warn, fail, or quiet (a short loss).
    upstream: str = ""
    # IBKR's maintenance window this run is in ("" outside), its end (epoch s), and what was
    # said in it: "" nothing yet, "sent" the failure, "recovered" the recovery too.
    maintenance: str = ""
    maintenance_until: float | None = None
    maintenance_notice: str = ""
    # When a bot (an API client besides the check) was last seen, and whether its absence
    # was told (bot_idle_alert_min).
    bot_seen: float = 0.0
    bot_idle_told: bool = False

    @classmethod
    def load(cls, config: HostConfig) -> WatchState:
        return state.read_fields(cls, cls.__dataclass_fields__,
                                 Path(config.state_dir) / STATE_FILE)

    def save(self, config: HostConfig) -> None:
        state.write_state(Path(config.state_dir) / STATE_FILE, dataclasses.asdict(self))


@dataclass(frozen=True)
class Decision:
    """One run's verdict: an action ("", probe, restart, start, stop), its cause, and the
    alert; `probe` asks for another API probe before the hang is judged."""

    action: str = ""
    cause: str = ""
    verdict: alerts.Verdict = field(default_factory=alerts.Verdict)


Window = Callable[[], tuple[bool, str]]
# IBKR's maintenance window a run is in: its text and its end (epoch s).
Maintenance = tuple[str, float]


def decide(config: HostConfig, ws: WatchState, report: health.Report,
           unit: systemd.UnitState | None, login: dict[str, object],
           restarts: list[history.Restart], now: float, window: Window,
           maintenance: Maintenance | None = None, session_since: float | None = None,
           ) -> Decision:
    """What to do after this run's check; updates `ws` in place. Rules in order of
    precedence: a hold, the crash loop, a login in the way, IBKR's maintenance, a hung API,
    memory, a crash; then news of IBKR's side or of an idle Gateway. `session_since`: the
    open of the regular session this run is in (None outside)."""
    checks = {c.name: c for c in report.checks}
    _enter_maintenance(ws, maintenance)
    crashed = _count_crashes(config, ws, unit, now)
    if checks["api"].status in (health.OK, health.WARN):
        ws.api_failures = 0
        ws.hold = ""
    if report.status == health.OK and not ws.crashes:
        ws.backoff_s = 0.0  # a quiet window: the next crash loop starts from the first back-off
    used = len(history.automatic_since(restarts, now - 3600))
    upstream = _upstream_verdict(ws, report)
    if ws.hold:
        return Decision(verdict=alerts.Verdict(context=f"Automatic restarts are off: {ws.hold}."))
    for rule in (_crash_rule, _login_rule, _maintenance_rule, _hang_rule, _memory_rule):
        found = rule(config, ws, checks, unit, login, used, now, window)
        if found is not None:
            return found
    if crashed and unit is not None:
        words = f"systemd restarted it after a crash ({unit.last_exit or 'unknown exit'})"
        note = ("warning", f"Gateway crashed: {words}; it is {report.status} now.")
        return Decision(verdict=alerts.Verdict(context=_sentence(words), note=note))
    return Decision(verdict=upstream or _idle_verdict(config, ws, report, now, session_since)
                    or alerts.Verdict())


def _idle_verdict(config: HostConfig, ws: WatchState, report: health.Report, now: float,
                  session_since: float | None) -> alerts.Verdict | None:
    """No bot connected for `bot_idle_alert_min` of the session: told once, and once when a
    bot is back. The session's open counts as a sighting: the night before is no idleness."""
    clients = report.api_clients
    if not config.bot_idle_alert_min or clients is None:
        return None
    if clients:
        ws.bot_seen = now
        if ws.bot_idle_told:
            ws.bot_idle_told = False
            return alerts.Verdict(note=("info", (
                f"A bot is connected to the Gateway again ({clients} API client(s)).")))
        return None
    if session_since is None:
        ws.bot_idle_told = False
        return None
    idle_s = now - max(ws.bot_seen, session_since)
    if ws.bot_idle_told or idle_s < config.bot_idle_alert_min * 60:
        return None
    ws.bot_idle_told = True
    text = (f"No bot has been connected to the Gateway for {idle_s / 60:.0f} min of the trading "
            f"session (IBKR_BOT_IDLE_ALERT_MIN={config.bot_idle_alert_min}): the Gateway "
            "answers, but nothing trades through it. Check your bot's unit and log.")
    return alerts.Verdict(context=text, note=("warning", text))


IBKR_SIDE = ("This is IBKR's side, not this host's: no restart (it would not help); the "
             "Gateway reconnects by itself.")


def _upstream_verdict(ws: WatchState, report: health.Report) -> alerts.Verdict | None:
    """What to say about the upstream layer: once when it breaks, once when it is back;
    nothing for a short loss of the link with nothing else wrong, nor for its end."""
    check = next((c for c in report.checks if c.name == "upstream"), None)
    if check is None or check.status == health.SKIP:
        return None  # the API did not answer: the hang rule's business
    others_ok = all(c.status in (health.OK, health.SKIP) for c in report.checks if c is not check)
    short_loss = (check.status == health.WARN and report.link is not None
                  and not report.link.connected and not report.link.broken and others_ok)
    before = ws.upstream
    ws.upstream = "quiet" if short_loss else "" if check.status == health.OK else check.status
    if short_loss:
        return alerts.Verdict(quiet=True)
    if ws.upstream == before or (not ws.upstream and before == "quiet"):
        return None
    if not ws.upstream:
        return alerts.Verdict(note=("info", f"IBKR's side is back: {check.detail}."))
    level = "error" if check.status == health.FAIL else "warning"
    return alerts.Verdict(context=IBKR_SIDE, note=(level, (
        f"Gateway {'UNHEALTHY' if level == 'error' else 'warning'}\nupstream: {check.status} - "
        f"{check.detail}\n{IBKR_SIDE}")))


Checks = dict[str, health.Check]


def _crash_rule(config: HostConfig, ws: WatchState, checks: Checks,
                unit: systemd.UnitState | None, login: dict[str, object], used: int,
                now: float, window: Window) -> Decision | None:
    """A crash loop is stopped and backed off; after the back-off it is started again."""
    if ws.backoff_until is not None:
        if now < ws.backoff_until:
            return Decision(verdict=alerts.Verdict(explained=True))
        ws.backoff_until = None
        if used >= config.max_restarts_per_hour:
            return _cap_reached(config, ws, used, "the crash loop went on")
        return Decision("start", "crash-loop")
    if len(ws.crashes) >= config.crash_loop_crashes:
        return _crash_loop(config, ws, unit, now, used)
    return None


def _login_rule(config: HostConfig, ws: WatchState, checks: Checks,
                unit: systemd.UnitState | None, login: dict[str, object], used: int,
                now: float, window: Window) -> Decision | None:
    """A refused or pending login is the login watch's news, and no reason to restart. A
    start still inside the login watch's stall bound is no news at all: the watch speaks up
    when it stalls, waits for a second factor or is refused, so an alert for the port being
    closed meanwhile would only come first and say less."""
    login_state, since = str(login.get("state", "")), login.get("since")
    stays_down = loginwatch.stays_down(login_state, config) or (
        login_state == "twofa-hung" and not (unit is not None and unit.active))
    pending = login_state in loginwatch.IN_PROGRESS and isinstance(since, int | float) \
        and now - since < LOGIN_GRACE_S
    starting = _starting(config, ws, unit, login, now)
    if not (stays_down or pending or starting):
        return None
    ws.api_failures = 0
    if starting:
        return Decision(verdict=alerts.Verdict(quiet=True))
    return Decision(verdict=alerts.Verdict(
        explained=login_state != "logging-in" or bool(login.get("stalled"))))


def _starting(config: HostConfig, ws: WatchState, unit: systemd.UnitState | None,
              login: dict[str, object], now: float) -> bool:
    """Whether the Gateway is being stopped or started (systemd carries out a stop, or the
    start-up before the main process), or is in the first `login_stall_s` of a start: before
    IBC's first login line (the watch's last event is older than the start), or logging in
    since then. A start that systemd made after a crash is news, so it never counts; a crash
    seen mid-stop is reported by the next run, as a crash."""
    if unit is None:
        return False
    if ws.crashes and unit.active_since is not None and ws.crashes[-1] >= unit.active_since:
        return False
    if unit.active_state == "deactivating" or (unit.active_state == "activating"
                                               and unit.sub_state != "auto-restart"):
        return True
    if not unit.active or unit.active_since is None:
        return False
    state, since = login.get("state"), login.get("since")
    if not isinstance(since, int | float) or since < unit.active_since:
        return now - unit.active_since < config.login_stall_s
    return state == "logging-in" and now - since < config.login_stall_s


def _enter_maintenance(ws: WatchState, maintenance: Maintenance | None) -> None:
    """Note the window this run is in; a crash loop's back-off lasts at least to its end (the
    start after it is a new login)."""
    ws.maintenance, ws.maintenance_until = maintenance or ("", None)
    if maintenance is None:
        ws.maintenance_notice = ""
    elif ws.backoff_until is not None:
        ws.backoff_until = max(ws.backoff_until, maintenance[1])


def _maintenance_rule(config: HostConfig, ws: WatchState, checks: Checks,
                      unit: systemd.UnitState | None, login: dict[str, object], used: int,
                      now: float, window: Window) -> Decision | None:
    """Inside IBKR's maintenance: a failure is told once and waits for the window's end; its
    recovery is told once; what comes and goes after that is not news while IBKR is down."""
    if not ws.maintenance or ws.maintenance_until is None:
        return None
    failing = any(c.status == health.FAIL for c in checks.values())
    if not failing:
        if ws.maintenance_notice == "sent":
            ws.maintenance_notice = "recovered"
            return Decision()
        return Decision(verdict=alerts.Verdict(quiet=True)) if ws.maintenance_notice else None
    ws.api_failures = 0
    if ws.maintenance_notice:
        return Decision(verdict=alerts.Verdict(quiet=True))
    ws.maintenance_notice = "sent"
    zone = market.check_timezone(config.market_timezone)
    until = dt.datetime.fromtimestamp(ws.maintenance_until, zone)
    return Decision(verdict=alerts.Verdict(notice=("warning", (
        f"{alerts.unhealthy(checks.values())}\nThis is inside IBKR's maintenance window "
        f"({ws.maintenance}, {config.market_timezone}), outside trading hours: IBKR resets its "
        "servers, and a new login now can fail or lock the account. Automatic restarts and "
        f"re-logins wait until {until:%H:%M}; no more messages until then unless it recovers. "
        f"`invoke restart {human.target(config)} --force` acts now."))))


def _hang_rule(config: HostConfig, ws: WatchState, checks: Checks,
               unit: systemd.UnitState | None, login: dict[str, object], used: int,
               now: float, window: Window) -> Decision | None:
    """The process runs but its API fails: count the failed probes, restart at the threshold."""
    alive = checks["process"].status == health.OK
    api_down = _api_failed(checks)
    if not (alive and api_down and (unit is None or unit.active)):
        if not api_down:
            ws.api_failures = 0
        return None
    ws.api_failures += 1
    if ws.api_failures < config.hang_restart_after:
        return Decision("probe", "hang", alerts.Verdict(context=(
            f"The API failed {ws.api_failures} probe(s) in a row with the Gateway running: "
            f"restarting it after {config.hang_restart_after}.")))
    ws.api_failures = 0
    if used >= config.max_restarts_per_hour:
        return _cap_reached(config, ws, used, "the API stopped answering again")
    return Decision("restart", "hang")


def _memory_rule(config: HostConfig, ws: WatchState, checks: Checks,
                 unit: systemd.UnitState | None, login: dict[str, object], used: int,
                 now: float, window: Window) -> Decision | None:
    """Above the ceiling: restart when allowed; say once that it waits when it must."""
    if checks["memory"].status != health.FAIL or config.memory_restart == "off":
        ws.memory_deferred = False
        return None
    allowed, why = (True, "") if config.memory_restart == "force" else window()
    if allowed:
        ws.memory_deferred = False
        if used >= config.max_restarts_per_hour:
            return _cap_reached(config, ws, used, "memory is above the ceiling again")
        return Decision("restart", "memory")
    if ws.memory_deferred:
        return Decision()
    ws.memory_deferred = True
    text = f"A restart to free memory waits for the next allowed moment: {why}."
    return Decision(verdict=alerts.Verdict(context=text, note=("warning", text)))


def _count_crashes(config: HostConfig, ws: WatchState, unit: systemd.UnitState | None,
                   now: float) -> int:
    """systemd's NRestarts since the last run (it restarts from 0 when started by hand)."""
    count = unit.n_restarts if unit is not None else 0
    new = count - ws.seen_restarts if count >= ws.seen_restarts else count
    ws.seen_restarts = count
    ws.crashes = [t for t in ws.crashes if t > now - config.crash_loop_window_s] + [now] * new
    return new


def _crash_loop(config: HostConfig, ws: WatchState, unit: systemd.UnitState | None,
                now: float, used: int) -> Decision:
    crashes, ws.crashes = len(ws.crashes), []
    last = unit.last_exit if unit is not None and unit.last_exit else "unknown exit"
    head = (f"Gateway crash loop: {crashes} crashes within "
            f"{config.crash_loop_window_s / 60:.0f} min (last: {last}).")
    if used >= config.max_restarts_per_hour:
        ws.hold = f"it kept crashing after {used} automatic restarts in the last hour"
        return Decision("stop", "crash-loop", alerts.Verdict(notice=("error", (
            f"{head} Stopped after {used} automatic restarts in the last hour: it stays "
            f"stopped for you to look at (`invoke logs {human.target(config)}`; `invoke restart "
            f"{human.target(config)}` starts it again)."))))
    ws.backoff_s = min(max(config.crash_backoff_s, ws.backoff_s * 2), MAX_BACKOFF_S)
    ws.backoff_until = now + ws.backoff_s
    return Decision("stop", "crash-loop", alerts.Verdict(notice=("error", (
        f"{head} Stopped; it starts again in {ws.backoff_s:.0f} s (automatic restart "
        f"{used + 1} of {config.max_restarts_per_hour} allowed per hour)."))))


def _cap_reached(config: HostConfig, ws: WatchState, used: int, what: str) -> Decision:
    ws.hold = f"{used} automatic restarts in the last hour"
    return Decision(verdict=alerts.Verdict(notice=("error", (
        f"Gateway needs a person: {what}, but {used} automatic restarts were already made in "
        f"the last hour, so there will be no more. Look at `invoke logs {human.target(config)}`; "
        f"`invoke restart {human.target(config)}` once it is fixed."))))


# --------------------------------------------------------------------------- carrying out


def supervise(config: HostConfig, report: health.Report,
              deliver: alerts.Deliver | None = None) -> tuple[health.Report, str]:
    """Decide, act, alert, export: the health-check timer's run. Returns the final report
    (a fresh check after a restart) and a few words for the journal line."""
    deliver = deliver or _deliver
    ws = WatchState.load(config)
    restarts = history.load(config)
    if restart.restarting(config):
        ws.save(config)
        outcome = alerts.on_report(config, report, deliver=deliver)
        _export(config, report, restarts)
        return report, outcome
    decision, report, probes = _confirmed(config, ws, report, loginwatch.summary(config),
                                          restarts)
    ws.save(config)
    verdict = decision.verdict
    words = [probes]
    if decision.action:
        hung = decision.action == "restart" and decision.cause == "hang"
        report, verdict, done = (_restart_hung(config, report, deliver, probes) if hung
                                 else _act(config, decision, report, report.gateway_unit))
        words.append(done)
        restarts = history.load(config)
    words.append(alerts.on_report(config, report, deliver=deliver, verdict=verdict))
    # Weeks ahead of IBKR's cutoff: a message a day of its own, the health status untouched.
    words.append(desupport.daily(config, dt.datetime.now(dt.UTC).date(), deliver,
                                 notice=report.version_notice))
    _export(config, report, restarts)
    return report, "; ".join(w for w in words if w)


def _confirmed(config: HostConfig, ws: WatchState, report: health.Report,
               login: dict[str, object], restarts: list[history.Restart],
               ) -> tuple[Decision, health.Report, str]:
    """`decide`, probing the API again at once while the hang rule asks for it, so a failed
    check is confirmed (or cleared) within this run rather than over the next ones. Returns
    the decision, the last report and a few words on the probes ("" for one)."""
    started = time.monotonic() - report.elapsed_ms / 1000
    quick = dataclasses.replace(config, health_timeout_s=min(config.health_timeout_s,
                                                             REPROBE_TIMEOUT_S))
    moment = dt.datetime.now(dt.UTC)
    found = prerestart.maintenance(moment, config)
    inside = None if found is None else (found[0], found[1].timestamp())
    opened = prerestart.session_open(moment, config)
    since = None if opened is None else opened.timestamp()
    probes = 1
    while True:
        decision = decide(config, ws, report, report.gateway_unit, login, restarts, time.time(),
                          lambda: _window(config), inside, since)
        if decision.action != "probe":
            break
        time.sleep(REPROBE_GAP_S)
        report = health.run(quick)
        probes += 1
    seconds = time.monotonic() - started
    if probes == 1:
        return decision, report, ""
    if _api_failed({c.name: c for c in report.checks}):
        return decision, report, f"{probes} API probes failed over {seconds:.0f} s"
    return decision, report, f"the API answered again on probe {probes} ({seconds:.0f} s)"


def _api_failed(checks: Checks) -> bool:
    """The API (or its port) failed: what the hang rule counts."""
    return health.FAIL in (checks["api"].status, checks["port"].status)


def _restart_hung(config: HostConfig, report: health.Report, deliver: alerts.Deliver,
                  probes: str) -> tuple[health.Report, alerts.Verdict, str]:
    """Tell, then restart a hung Gateway: warm when its JVM still runs, else stopped at once.

    The failure goes out before the restart (the run ends healthy, so no status change would
    carry it), saying what the probes found and what comes next.
    """
    unit = report.gateway_unit
    responds, why = restart.jvm_responds(config, JVM_PING_TIMEOUT_S)
    frozen = responds is False and unit is not None
    if frozen:
        plan = (f"IBC's command server, in the same JVM, does not answer either ({why}): the "
                "JVM is not responding, so no warm restart is tried (it needs a working JVM); "
                "the Gateway is stopped at once, since a frozen process cannot log out, and "
                "started again (a new login).")
    elif responds:
        plan = ("IBC's command server answers, so the JVM runs: warm restart through IBC (no "
                "phone prompt), cold only if the API does not come back in time.")
    else:
        plan = (f"IBC's command server cannot be asked ({why}): warm restart tried, cold "
                "(with the usual graceful stop) if it does not work.")
    head = f"The API did not answer with the Gateway running ({probes or 'one probe'})."
    told = alerts.on_report(config, report, deliver=deliver, verdict=alerts.Verdict(
        notice=("error", f"{alerts.unhealthy(report.checks)}\n{head} {plan}")))
    fresh, verdict, done = _restart(config, "hang", report, unit, "cold" if frozen else "warm",
                                    api_down=True, stop_at_once=frozen)
    return fresh, verdict, f"{told}; JVM {why}; {done}"


def _deliver(config: HostConfig, level: str, text: str) -> object:
    from ibkr_ops.host import notify  # noqa: PLC0415 - only runs that alert need it

    return notify.deliver(config, level, text, notify.check_run_policy(config))


def _window(config: HostConfig) -> tuple[bool, str]:
    decision = prerestart.decide(dt.datetime.now(dt.UTC), config)
    return decision.allowed, decision.reason


def _act(config: HostConfig, decision: Decision, report: health.Report,
         unit: systemd.UnitState | None) -> tuple[health.Report, alerts.Verdict, str]:
    """Carry out a restart, start or stop; return the new report and the alert to send."""
    verdict = decision.verdict
    if decision.action == "stop":
        try:
            systemd.control("stop", config.gateway_unit, START_TIMEOUT_S)
        except OpsError as exc:
            return report, verdict, f"stop failed: {exc}"
        return health.run(config), verdict, f"stopped ({decision.cause})"
    if decision.action == "start":
        snap = proc.snapshot(config, unit)
        started = time.monotonic()
        try:
            systemd.control("start", config.gateway_unit, START_TIMEOUT_S)
            ok = True
        except OpsError as exc:
            ok, words = False, str(exc)
        entry = history.Restart(time.time(), decision.cause, "start", ok,
                                time.monotonic() - started, snap.rss_mb if snap else None)
        history.record(config, entry)
        if not ok:
            return report, alerts.Verdict(notice=("error", f"Gateway start failed: {words}")), \
                words
        return report, alerts.Verdict(context="Started again after the crash-loop back-off."), \
            "started after the back-off"
    return _restart(config, decision.cause, report, unit, "warm")


def _restart(config: HostConfig, cause: str, report: health.Report,
             unit: systemd.UnitState | None, mode: str, *, api_down: bool = False,
             stop_at_once: bool = False) -> tuple[health.Report, alerts.Verdict, str]:
    """One recorded restart; the fresh report and what to say about it."""
    snap = proc.snapshot(config, unit)
    before = None if snap is None else {"rss_mb": snap.rss_mb, "uptime_s": snap.uptime_s}
    outcome, entry, log = restart.run_recorded(config, mode, cause, before, restart.printer(),
                                               api_down=api_down, stop_at_once=stop_at_once)
    if not outcome.healthy:
        text = "\n".join([f"Gateway {entry.describe()}", *outcome.steps])
        if log:
            text += "\nlast Gateway log lines:\n" + "\n".join(log)
        return health.run(config), alerts.Verdict(notice=("error", text)), entry.describe()
    fresh = health.run(config)
    return fresh, alerts.Verdict(context=_sentence(entry.describe())), entry.describe()


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:] + "."


def _export(config: HostConfig, report: health.Report, restarts: list[history.Restart]) -> None:
    """The metrics file; a failure to write it is logged by the caller, never fatal."""
    login = loginwatch.summary(config).get("last_success")
    metrics.write(config, metrics.render(config, report, restarts,
                                         login if isinstance(login, int | float) else None,
                                         report.rss_mb, time.time()))

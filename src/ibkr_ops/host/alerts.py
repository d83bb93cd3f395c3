"""Health alerts on state changes only: healthy -> unhealthy, unhealthy -> recovered.

The last status is kept in `<state_dir>/health.json`. A run whose status matches the stored
one sends nothing, so a Gateway that stays down is reported once, not every minute. The new
status is stored only once its alert went out, so an alert Discord did not take is retried
on the next run rather than lost. While the restart runner works (its marker file), bad
news is held: the daily restart's planned outage is reported by the runner itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ibkr_ops.errors import OpsError, UsageError
from ibkr_ops.host import health, notify, restart, state
from ibkr_ops.host.config import HostConfig

STATE_FILE = "health.json"

Deliver = Callable[[HostConfig, str, str], object]


@dataclass(frozen=True)
class Verdict:
    """What the watchdog adds to a run's alert, so one incident is one message.

    `context` is a line added to a status-change alert (what is being done about it);
    `notice` replaces that alert (an incident the watchdog reports in its own words);
    `note` goes out on its own when the status did not change (a crash systemd already
    healed); `explained` stores a change without sending it (the login watch announced it);
    `quiet` stores it without sending, and its return to ok is not sent either (a short
    loss of IBKR's connection that the Gateway repairs itself is no incident).
    """

    context: str = ""
    notice: tuple[str, str] | None = None
    note: tuple[str, str] | None = None
    explained: bool = False
    quiet: bool = False


def unhealthy(checks: Iterable[health.Check]) -> str:
    """The failure alert's text: the headline and every failing or warning layer."""
    return f"Gateway UNHEALTHY\n{_problems(checks)}"


def _problems(checks: Iterable[health.Check]) -> str:
    return "\n".join(f"{c.name}: {c.status} - {c.detail}" for c in checks
                     if c.status in (health.FAIL, health.WARN))


def transition(previous: str, report: health.Report, since: str | None,
               now: dt.datetime) -> tuple[str, str] | None:
    """(level, text) when the overall status changed; a first run counts as coming from ok."""
    current = report.status
    if current == previous:
        return None
    if current == health.FAIL:
        return "error", unhealthy(report.checks)
    lasted = ""
    if since:
        seconds = (now - dt.datetime.fromisoformat(since)).total_seconds()
        lasted = f" after {seconds:.0f} s" if seconds < 90 else f" after {seconds / 60:.0f} min"
    if current == health.WARN:
        head = f"Gateway recovered{lasted}, with a warning" if previous == health.FAIL \
            else "Gateway warning"
        return "warning", f"{head}\n{_problems(report.checks)}"
    return "info", f"Gateway healthy again{lasted} (was {previous})"


def on_report(config: HostConfig, report: health.Report, *, now: dt.datetime | None = None,
              deliver: Deliver = notify.deliver, verdict: Verdict | None = None) -> str:
    """Alert on a status change and record it; return a few words for the journal line."""
    now = now or dt.datetime.now(dt.UTC)
    verdict = verdict or Verdict()
    path = Path(config.state_dir) / STATE_FILE
    stored = state.read_state(path) or {}
    previous = str(stored.get("status", health.OK))
    change = transition(previous, report, stored.get("since"), now)
    message = verdict.notice
    if message is None and change is not None:
        quiet_end = bool(stored.get("quiet")) and report.status == health.OK
        if verdict.explained or verdict.quiet or quiet_end:
            record = {"status": report.status, "since": now.isoformat()}
            state.write_state(path, {**record, "quiet": True} if verdict.quiet else record)
            return ("alert not sent: the login watch reported it" if verdict.explained
                    else "alert not sent: not an incident")
        level, text = change
        message = (level, f"{text}\n{verdict.context}" if verdict.context else text)
    message = message or verdict.note
    if message is None:
        return ""
    level, text = message
    if level != "info" and restart.restarting(config):
        # The restart runner reports its own outcome; an outage it causes is not news.
        return "alert held: a Gateway restart is in progress"
    outcome = f"notified {level}"
    try:
        deliver(config, level, text)
    except UsageError as exc:
        outcome = f"not notified: {exc}"  # no webhook configured: record the change anyway
    except OpsError as exc:
        return f"notification failed, will retry: {exc}"
    if change is not None or stored.get("quiet"):
        # A quiet spell that became news is an incident from now on: its end is news too.
        state.write_state(path, {"status": report.status, "since": now.isoformat()})
    return outcome

"""Health alerts on state changes only: healthy -> unhealthy, unhealthy -> recovered.

The last status is kept in `<state_dir>/health.json`. A run whose status matches the stored
one sends nothing, so a Gateway that stays down is reported once, not every minute. The new
status is stored only once its alert went out, so an alert Discord did not take is retried
on the next run rather than lost. While the restart runner works (its marker file), bad
news is held: the daily restart's planned outage is reported by the runner itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
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
    healed); `explained` stores a change without sending it (the login watch announced it).
    """

    context: str = ""
    notice: tuple[str, str] | None = None
    note: tuple[str, str] | None = None
    explained: bool = False


def transition(previous: str, report: health.Report, since: str | None,
               now: dt.datetime) -> tuple[str, str] | None:
    """(level, text) when the overall status changed; a first run counts as coming from ok."""
    current = report.status
    if current == previous:
        return None
    problems = "\n".join(f"{c.name}: {c.status} - {c.detail}" for c in report.problems())
    if current == health.FAIL:
        return "error", f"Gateway UNHEALTHY\n{problems}"
    lasted = ""
    if since:
        minutes = (now - dt.datetime.fromisoformat(since)).total_seconds() / 60
        lasted = f" after {minutes:.0f} min"
    if current == health.WARN:
        head = f"Gateway recovered{lasted}, with a warning" if previous == health.FAIL \
            else "Gateway warning"
        return "warning", f"{head}\n{problems}"
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
        if verdict.explained:
            state.write_state(path, {"status": report.status, "since": now.isoformat()})
            return "alert not sent: the login watch reported it"
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
    if change is not None:
        state.write_state(path, {"status": report.status, "since": now.isoformat()})
    return outcome

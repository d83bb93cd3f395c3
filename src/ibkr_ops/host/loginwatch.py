"""`ibkr-login-watch`: react to IBC's login events the moment they are logged.

A per-minute check is too slow here: IBC answers a rejected password with a cold restart
and a new attempt within seconds, and repeated failures can lock the IBKR account. So a small
service follows the Gateway's journal and, on a rejection, stops the Gateway at once and says
why; a second-factor prompt is announced as it appears. Each kind of news goes out once per
incident (until the next completed login), so a prompt IBC repeats every few minutes is not
a message every few minutes. The state it keeps (`<state_dir>/login.json`) tells the
health check that a login is under way or was refused, so it neither restarts nor alerts
over what is already explained.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibkr_ops.errors import OpsError
from ibkr_ops.host import gatewayversion, human, ibclog, state, systemd
from ibkr_ops.host.config import HostConfig

STATE_FILE = "login.json"
# States that mean "wait, do not restart": a login under way, a prompt out, and IBC's own
# relaunch after an approved login hung (while the unit runs).
IN_PROGRESS = ("logging-in", "twofa-wait", "twofa-hung")
STOP_TIMEOUT_S = 150.0
# States in which the watch has stopped the Gateway for good: a new start cannot help.
STAYS_DOWN = ("rejected", "desupported")

_STATES = {ibclog.STARTED: "logging-in", ibclog.TWOFA_WAIT: "twofa-wait",
           ibclog.COMPLETED: "logged-in", ibclog.REJECTED: "rejected",
           ibclog.TWOFA_TIMEOUT: "twofa-timeout", ibclog.TWOFA_HUNG: "twofa-hung",
           ibclog.EXISTING_SESSION: "session-lost", ibclog.DESUPPORTED: "desupported"}


def stays_down(state: str, config: HostConfig) -> bool:
    """Whether the watch stopped the Gateway for good in this state: a refusal, a build IBKR
    no longer takes, or a prompt not approved with IBKR_TWOFA_TIMEOUT_ACTION=exit."""
    return state in STAYS_DOWN or (state == "twofa-timeout"
                                   and config.twofa_timeout_action == "exit")


@dataclass
class Reaction:
    """What one event calls for: a notification (level, text) and whether to stop."""

    notify: tuple[str, str] | None = None
    stop: bool = False


@dataclass
class LoginState:
    """The login as the journal tells it; `notified` holds the kinds of news already sent
    in the current incident."""

    state: str = "unknown"
    since: float = 0.0
    detail: str = ""
    last_success: float | None = None
    cursor: str = ""
    notified: list[str] = field(default_factory=list)
    # Entries logged before this (epoch s) are old news: IBC's own retry, logged while the
    # stop after a rejection was under way, must not stop the next Gateway after a restart
    # of this watch replays them from its cursor.
    ignore_before: float = 0.0
    # IBKR's last version notice as announced (its own words): a notice repeated at every
    # login is news only when it says something new.
    version_notice: str = ""

    @classmethod
    def load(cls, config: HostConfig) -> LoginState:
        return state.read_fields(cls, cls.__dataclass_fields__, path(config))

    def save(self, config: HostConfig) -> None:
        state.write_state(path(config), dataclasses.asdict(self))


def path(config: HostConfig) -> Path:
    return Path(config.state_dir) / STATE_FILE


def react(login: LoginState, kind: str, message: str, at: float,  # noqa: PLR0911 - per event
          config: HostConfig) -> Reaction:
    """Update `login` for one event and say what to do about it."""
    if kind == ibclog.VERSION_NOTICE:
        return _version_notice(login, message)
    login.state, login.since = _STATES[kind], at
    if kind == ibclog.COMPLETED:
        login.last_success, login.notified, login.detail = at, [], ""
        return Reaction()
    if kind == ibclog.STARTED:
        return Reaction()
    login.detail = message
    if kind == ibclog.TWOFA_HUNG:
        return _hung(login, config)
    if kind in login.notified:
        return Reaction(stop=stays_down(login.state, config))
    login.notified.append(kind)
    if kind == ibclog.DESUPPORTED:
        # IBKR refuses this build: every new start would show the same dialog again.
        return Reaction(("error", (
            f"IBKR no longer supports this Gateway build (IBC: {message}). The Gateway has been "
            "stopped and stays stopped, since it cannot log in. "
            + gatewayversion.UPGRADE_HINT)), stop=True)
    if kind == ibclog.REJECTED:
        return Reaction(("error", (
            f"IBKR rejected the login (IBC: {message}). The Gateway has been stopped so that "
            "repeated attempts cannot lock the account. Check IBKR_USERNAME and IBKR_PASSWORD "
            "in credentials.env, then run `invoke install` again.")), stop=True)
    if kind == ibclog.TWOFA_WAIT:
        if ibclog.TWOFA_TIMEOUT in login.notified:
            return Reaction()  # IBC's relogin after a timeout: already announced
        return Reaction(("warning", (
            "A Gateway login waits for your second factor: approve the login on IBKR Mobile "
            "now (IBC waits 3 minutes).")))
    if kind == ibclog.TWOFA_TIMEOUT:
        if config.twofa_timeout_action == "restart":
            return Reaction(("warning", (
                "The second factor was not approved in time. IBC logs in again "
                "(IBKR_TWOFA_TIMEOUT_ACTION=restart): approve the new prompt on IBKR Mobile. "
                "Further prompts of this login are not announced again.")))
        # IBC itself only waits at the login dialog: stopping the Gateway is ours to do.
        return Reaction(("error", (
            "The second factor was not approved in time. The Gateway has been stopped and stays "
            "stopped (IBKR_TWOFA_TIMEOUT_ACTION=exit), so no more prompts reach your phone. "
            f"Start it with `invoke restart {human.target(config)} --cold` when you can approve "
            "the login.")), stop=True)
    return Reaction(("warning", (
        f"Another session took this IBKR account (IBC: {message}). IBKR_EXISTING_SESSION_ACTION "
        "decides which session stays; the health check reports whether the API recovers.")))


def _version_notice(login: LoginState, message: str) -> Reaction:
    """IBKR's notice of a coming cutoff: the login goes on, the operator has until the date
    it names. Said once per distinct notice, however many logins show it."""
    if message == login.version_notice:
        return Reaction()
    login.version_notice = message
    notice = gatewayversion.read_notice(message)
    when = (f" on {notice.desupported_on.isoformat()}" if notice and notice.desupported_on
            else "")
    floor = f"; the minimum from then on is {notice.minimum}" if notice and notice.minimum else ""
    return Reaction(("warning", (
        f"IBKR says this Gateway build will be desupported{when}{floor} (IBC: {message}). "
        f"It still works until then. {gatewayversion.UPGRADE_HINT}")))


def _hung(login: LoginState, config: HostConfig) -> Reaction:
    """An approved login that IBC gave up on: its relaunch brings a new prompt, which is
    worth one try; the same again means IBKR's side or the Gateway is stuck, and another
    prompt would not help, so the second time the Gateway is stopped."""
    if ibclog.TWOFA_HUNG in login.notified:
        return Reaction(("error", (
            "The login hung again after its second factor was approved (IBC: "
            f"{login.detail}). The Gateway has been stopped, so no more prompts reach your "
            f"phone. Look at its screen (`invoke screenshot {human.target(config)}`) and IBKR's "
            f"system status, then `invoke restart {human.target(config)} --cold`.")), stop=True)
    login.notified.append(ibclog.TWOFA_HUNG)
    return Reaction(("warning", (
        "The second factor was approved, but the login did not complete (IBC: "
        f"{login.detail}). IBC starts the Gateway again: approve the new prompt on IBKR "
        "Mobile. If it hangs once more, the Gateway is stopped.")))


Deliver = Callable[[HostConfig, str, str], object]


def handle(config: HostConfig, login: LoginState, kind: str, message: str, at: float,
           deliver: Deliver, say: Callable[[str], None]) -> None:
    """Carry out one event's reaction: stop first (safety), then tell the user."""
    reaction = react(login, kind, message, at, config)
    login.save(config)
    say(f"{kind}: {message}")
    if reaction.stop:
        try:
            systemd.stop_now(config.gateway_unit, STOP_TIMEOUT_S)
            say(f"stopped {config.gateway_unit} ({kind})")
        except OpsError as exc:
            say(f"could not stop {config.gateway_unit}: {exc}")
        if reaction.notify:
            # The lines IBC wrote around the rejection carry IBKR's own reason.
            lines = [ibclog.message_of(line) for line in ibclog.recent(
                config.gateway_unit, since=at - 5, lines=40) if ibclog.classify(line)]
            reason = [line for line in lines if "error message" in line.lower()]
            if reason:
                level, text = reaction.notify
                reaction.notify = (level, text.replace(f"(IBC: {message})", f"(IBC: {reason[-1]})"))
    if reaction.notify:
        level, text = reaction.notify
        if kind == ibclog.TWOFA_WAIT:
            text += "\n" + human.screen_hint(config)
        try:
            deliver(config, level, text)
        except OpsError as exc:
            say(f"not notified: {exc}")


STALLED = "login-stalled"


class StallWatch:
    """Report, once per incident, a login that makes no progress for `login_stall_s`.

    IBC waits silently at a window it has no handler for (a new IBKR notice, say): nothing
    more is logged, nothing times out. Each window IBC sees opening re-arms the bound, and
    the report names the last one, which is what a person has to answer.
    """

    def __init__(self, config: HostConfig, login: LoginState, deliver: Deliver,
                 say: Callable[[str], None], lock: threading.Lock) -> None:
        self.config, self.login, self.deliver, self.say, self.lock = (
            config, login, deliver, say, lock)
        self.window = ""
        self.timer: threading.Timer | None = None

    def opened(self, title: str) -> None:
        self.window = title
        if self.login.state == "logging-in":
            self.arm()

    def event(self, kind: str) -> None:
        if kind == ibclog.STARTED:
            self.window = ""
            self.arm()
        elif kind != ibclog.VERSION_NOTICE and self.timer is not None:
            self.timer.cancel()  # a notice is no progress of the login

    def arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = threading.Timer(self.config.login_stall_s, self.fire)
        self.timer.daemon = True
        self.timer.start()

    def fire(self) -> None:
        with self.lock:
            if self.login.state != "logging-in" or STALLED in self.login.notified:
                return
            self.login.notified.append(STALLED)
            self.login.detail = f"waiting at window {self.window!r}"
            self.login.save(self.config)
            text = (stall_text(self.window, self.config.login_stall_s) + "\n"
                    + human.screen_hint(self.config))
            self.say(text)
            try:
                self.deliver(self.config, "warning", text)
            except OpsError as exc:
                self.say(f"not notified: {exc}")


def stall_text(window: str, seconds: float) -> str:
    shown = f"the window {window!r}" if window else "no window at all"
    return (f"The Gateway's login has made no progress for {seconds:.0f} s: IBC waits at "
            f"{shown}, which it has no answer for. Look at the Gateway's display (VNC) and "
            "answer it; the login goes on from there. The host does not restart it meanwhile.")


def run(config: HostConfig, deliver: Deliver, say: Callable[[str], None]) -> None:
    """Follow the Gateway's journal for ever (the service restarts this if it stops)."""
    login = LoginState.load(config)
    lock = threading.Lock()
    stall = StallWatch(config, login, deliver, say, lock)
    for message, at, cursor in ibclog.follow(config.gateway_unit, login.cursor or None):
        with lock:
            login.cursor = cursor
            kind = ibclog.classify(message)
            if at <= login.ignore_before:
                continue
            title = ibclog.window_opened(message)
            if title is not None:
                stall.opened(title)
            if kind is None:
                continue
            handle(config, login, kind, ibclog.message_of(message), at, deliver, say)
            stall.event(kind)
            if login.state in STAYS_DOWN:
                login.ignore_before = time.time()
                login.save(config)


def summary(config: HostConfig) -> dict[str, Any]:
    """The login state as the health check and `invoke status` use it."""
    login = LoginState.load(config)
    return {"state": login.state, "since": login.since, "detail": login.detail,
            "last_success": login.last_success, "stalled": STALLED in login.notified}


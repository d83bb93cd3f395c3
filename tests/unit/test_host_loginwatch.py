"""IBC's log lines as login events, and what the login watch does about each, once."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from ibkr_ops.host import ibclog, loginwatch
from ibkr_ops.host.config import HostConfig

CONFIG = HostConfig(state_dir="/nonexistent")
STAMP = "2026-12-01 16:30:00:123 IBC: "


@pytest.mark.parametrize(("message", "kind"), [
    # IBC 3.24.1's own wording (IBC.jar), as it reaches the journal through ibcstart.sh.
    ("Starting session: will exit if login dialog is not displayed within 60 seconds",
     ibclog.STARTED),
    ("Re-starting session", ibclog.STARTED),
    ("Login has completed", ibclog.COMPLETED),
    ("Login failed", ibclog.REJECTED),
    ("Cold restart after Login Failed dialog encountered", ibclog.REJECTED),
    ("Cold restart after Login Error dialog encountered", ibclog.REJECTED),
    ("Too many failed login attempts. Please wait 5 minutes", ibclog.REJECTED),
    ("Second Factor Authentication initiated", ibclog.TWOFA_WAIT),
    ("IBC closing because login has not completed after Second Factor Authentication",
     ibclog.TWOFA_HUNG),
    ("If login has not completed, IBC will exit in 60 seconds", None),
    ("Re-login after second factor authentication timeout in 5 second", ibclog.TWOFA_TIMEOUT),
    # IBC 3.24 with ReloginAfterSecondFactorAuthenticationTimeout=no: it only waits.
    ("Re-login after second factor authentication timeout not required", ibclog.TWOFA_TIMEOUT),
    ("detected dialog entitled: Existing session detected; event=Activated",
     ibclog.EXISTING_SESSION),
    ("Setting user name", None),
    ("Click button: Log In", None),
])
def test_classify_real_ibc_wording(message: str, kind: str | None) -> None:
    assert ibclog.classify(STAMP + message) == kind


def test_lines_that_are_not_ibcs_are_ignored() -> None:
    assert ibclog.classify("SIM: Login failed (a test line)") is None
    assert ibclog.message_of(STAMP + "Login failed") == "Login failed"


def test_parse_entry_reads_journal_json_and_binary_messages() -> None:
    entry = ('{"MESSAGE": [76, 111, 103, 105, 110, 255], "__REALTIME_TIMESTAMP": '
             '"1800000000500000", "__CURSOR": "s=abc"}')
    message, at, cursor = ibclog.parse_entry(entry) or ("", 0.0, "")
    assert message == "Login\ufffd"
    assert at == 1_800_000_000.5
    assert cursor == "s=abc"
    assert ibclog.parse_entry("not json") is None


def react(login: loginwatch.LoginState, kind: str, config: HostConfig = CONFIG,
          message: str = "msg") -> loginwatch.Reaction:
    return loginwatch.react(login, kind, message, 100.0, config)


def test_a_rejection_stops_the_gateway_and_is_said_once() -> None:
    login = loginwatch.LoginState()
    first = react(login, ibclog.REJECTED, message="Login failed")
    assert first.stop
    assert first.notify is not None and first.notify[0] == "error"
    assert "IBKR rejected the login (IBC: Login failed)" in first.notify[1]
    again = react(login, ibclog.REJECTED)
    assert again.stop and again.notify is None
    assert login.state == "rejected"


def test_a_second_factor_prompt_is_announced_once_per_incident() -> None:
    login = loginwatch.LoginState()
    prompt = react(login, ibclog.TWOFA_WAIT)
    assert prompt.notify is not None
    assert "approve the login on IBKR Mobile" in prompt.notify[1]
    assert react(login, ibclog.TWOFA_WAIT).notify is None
    react(login, ibclog.COMPLETED)
    assert login.last_success == 100.0
    assert react(login, ibclog.TWOFA_WAIT).notify is not None  # a new login, a new prompt


@pytest.mark.parametrize(("action", "level", "words", "stop"), [
    ("exit", "error", "IBKR_TWOFA_TIMEOUT_ACTION=exit", True),
    ("restart", "warning", "IBKR_TWOFA_TIMEOUT_ACTION=restart", False),
])
def test_a_second_factor_timeout_says_what_happens_next(action: str, level: str,
                                                        words: str, stop: bool) -> None:
    """exit: IBC only waits at its login dialog, so the watch stops the Gateway itself."""
    config = dataclasses.replace(CONFIG, twofa_timeout_action=action)
    login = loginwatch.LoginState()
    react(login, ibclog.TWOFA_WAIT, config)
    timeout = react(login, ibclog.TWOFA_TIMEOUT, config)
    assert timeout.notify is not None
    assert timeout.notify[0] == level and words in timeout.notify[1]
    assert timeout.stop is stop
    # IBC's relogin prompts again: the user has been told, nothing more is sent.
    react(login, ibclog.STARTED, config)
    assert react(login, ibclog.TWOFA_WAIT, config).notify is None
    assert react(login, ibclog.TWOFA_TIMEOUT, config).notify is None


def test_an_approved_login_that_hangs_gets_one_more_prompt_then_a_stop() -> None:
    """IBC exits 87 after SecondFactorAuthenticationExitInterval and ibcstart.sh relaunches
    it: one new prompt is worth it (said once), the same hang again stops the Gateway."""
    config = dataclasses.replace(CONFIG, twofa_timeout_action="restart")
    login = loginwatch.LoginState()
    react(login, ibclog.TWOFA_WAIT, config)
    first = react(login, ibclog.TWOFA_HUNG, config, message="IBC closing because login has "
                  "not completed after Second Factor Authentication")
    assert first.notify is not None and first.notify[0] == "warning" and not first.stop
    assert "was approved, but the login did not complete" in first.notify[1]
    assert "approve the new prompt" in first.notify[1]
    react(login, ibclog.STARTED, config)
    assert react(login, ibclog.TWOFA_WAIT, config).notify is None  # the relaunch's prompt
    second = react(login, ibclog.TWOFA_HUNG, config)
    assert second.stop and second.notify is not None and second.notify[0] == "error"
    assert "hung again" in second.notify[1] and login.state == "twofa-hung"
    # A login that completes in between ends the incident: a later hang is one try again.
    fresh = loginwatch.LoginState()
    react(fresh, ibclog.TWOFA_HUNG, config)
    react(fresh, ibclog.COMPLETED, config)
    assert not react(fresh, ibclog.TWOFA_HUNG, config).stop


def test_state_survives_a_restart_of_the_watch(tmp_path: object) -> None:
    config = dataclasses.replace(CONFIG, state_dir=str(tmp_path))
    login = loginwatch.LoginState(cursor="s=1")
    react(login, ibclog.TWOFA_WAIT)
    login.save(config)
    loaded = loginwatch.LoginState.load(config)
    assert loaded == login
    assert loginwatch.summary(config)["state"] == "twofa-wait"


def test_window_titles_are_read_from_ibcs_window_events() -> None:
    assert ibclog.window_opened(STAMP + "detected dialog entitled: Important Notice; "
                                "event=Opened") == "Important Notice"
    assert ibclog.window_opened(STAMP + "detected frame entitled: Loading...; event=Opened") \
        == "Loading..."
    assert ibclog.window_opened(STAMP + "detected dialog entitled: X; event=Closed") is None
    assert ibclog.window_opened("GW-SIM: detected dialog entitled: X; event=Opened") is None


def _stall_watch(tmp_path: Path) -> tuple[loginwatch.StallWatch, list[tuple[str, str]]]:
    config = dataclasses.replace(CONFIG, state_dir=str(tmp_path), login_stall_s=0.2)
    sent: list[tuple[str, str]] = []
    login = loginwatch.LoginState(state="logging-in")
    watch = loginwatch.StallWatch(config, login, lambda _c, level, text: sent.append(
        (level, text)), lambda _line: None, threading.Lock())
    return watch, sent


def test_a_login_stuck_at_an_unknown_window_is_reported_once_with_its_title(
        tmp_path: Path) -> None:
    watch, sent = _stall_watch(tmp_path)
    watch.event(ibclog.STARTED)
    watch.opened("Important Notice")
    time.sleep(0.5)
    watch.opened("Important Notice")
    time.sleep(0.5)
    assert len(sent) == 1, sent
    level, text = sent[0]
    assert level == "warning" and "'Important Notice'" in text and "no progress" in text
    assert loginwatch.LoginState.load(watch.config).detail == "waiting at window 'Important Notice'"


def test_a_login_that_moves_on_is_not_reported(tmp_path: Path) -> None:
    watch, sent = _stall_watch(tmp_path)
    watch.event(ibclog.STARTED)
    watch.opened("Authenticating...")
    watch.login.state = "twofa-wait"
    watch.event(ibclog.TWOFA_WAIT)
    time.sleep(0.5)
    assert sent == []


@pytest.mark.parametrize(("instance", "options"), [(None, "--host HOST"),
                                                   ("live", "--host HOST --instance live")])
def test_the_commands_an_alert_suggests_name_the_instance(instance: str | None,
                                                          options: str) -> None:
    """On a host of several Gateways, `invoke restart --host HOST` alone would be refused."""
    config = dataclasses.replace(CONFIG, twofa_timeout_action="exit", instance=instance)
    timeout = react(loginwatch.LoginState(), ibclog.TWOFA_TIMEOUT, config)
    assert timeout.notify is not None
    assert f"`invoke restart {options} --cold`" in timeout.notify[1]
    login = loginwatch.LoginState()
    react(login, ibclog.TWOFA_HUNG, config)
    hung = react(login, ibclog.TWOFA_HUNG, config)
    assert hung.notify is not None
    assert f"`invoke screenshot {options}`" in hung.notify[1]

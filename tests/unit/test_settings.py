"""Deployment settings: good files load with safe defaults, bad ones fail with one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ibkr_ops.errors import UsageError
from ibkr_ops.render import env_file_text
from ibkr_ops.settings import Secret, describe, load_deployment, parse_deployment

BAD = Path(__file__).parent / "bad_credentials"
PASSWORD = "Pa55-word!secret"
GOOD = f"""# comment
IBKR_USERNAME=alice

IBKR_PASSWORD={PASSWORD}
IBKR_TRADING_MODE=paper
TWS_MAJOR_VRSN=1030
"""

# bad file → what its one-line error must name (the key, or the line number)
EXPECTED = {
    "missing_username": "IBKR_USERNAME is missing",
    "missing_password": "IBKR_PASSWORD is missing",
    "missing_mode": "IBKR_TRADING_MODE is missing",
    "missing_version": "TWS_MAJOR_VRSN is missing",
    "empty_password": "IBKR_PASSWORD is missing",
    "mode_unknown": "IBKR_TRADING_MODE",
    "mode_typo": "IBKR_TRADING_MODE",
    "version_dotted": "TWS_MAJOR_VRSN",
    "version_word": "TWS_MAJOR_VRSN",
    "line_without_equals": "line 5",
    "bad_key_name": "line 5",
    "unknown_key": "unknown key IBKR_PORT (did you mean IBKR_API_PORT?)",
    "duplicate_key": "line 5: IBKR_TRADING_MODE is set twice",
    "unterminated_quote": "line 2",
    "port_word": "IBKR_API_PORT",
    "port_privileged": "IBKR_API_PORT",
    "port_too_big": "IBKR_API_PORT",
    "webhook_http": "DISCORD_WEBHOOK_URL must use https",
    "webhook_not_discord": "DISCORD_WEBHOOK_URL is not a Discord webhook",
    "webhook_no_token": "DISCORD_WEBHOOK_URL",
    "read_only_maybe": "IBKR_READ_ONLY_API",
    "trusted_ip_bad": "IBKR_TRUSTED_IPS",
    "trusted_without_loopback": "IBKR_TRUSTED_IPS must include 127.0.0.1",
    "restart_time_bad": "IBKR_RESTART_TIME",
    "restart_time_25": "IBKR_RESTART_TIME",
    "timezone_bad": "IBKR_TIMEZONE",
    "service_user_root": "IBKR_SERVICE_USER",
    "twofa_bad": "IBKR_TWOFA_TIMEOUT_ACTION",
    "twofa_device_backslash": "IBKR_TWOFA_DEVICE has a character IBC's config.ini cannot hold",
    "blackout_bad": "IBKR_RESTART_BLACKOUTS",
    "blackout_empty": "IBKR_RESTART_BLACKOUTS",
    "maintenance_bad": "IBKR_MAINTENANCE_WINDOWS has 'Fri 23:00'",
    "bot_idle_too_long": "IBKR_BOT_IDLE_ALERT_MIN is '500', not a number from 0 to 480",
    "memory_small": "IBKR_MEMORY_MAX_MB",
    "command_port_clash": "IBKR_COMMAND_SERVER_PORT equals the API port",
    "display_zero": "IBKR_DISPLAY",
    "username_space": "IBKR_USERNAME",
    "restart_mode_bad": "IBKR_RESTART_MODE",
    "api_host_untrusted": "IBKR_API_HOST is not loopback and not in IBKR_TRUSTED_IPS",
}


def private_copy(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials.env"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_every_bad_file_has_an_expectation() -> None:
    assert sorted(p.stem for p in BAD.glob("*.env")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 20


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_one_line_naming_the_problem(tmp_path: Path, name: str) -> None:
    path = private_copy(tmp_path, (BAD / f"{name}.env").read_text())
    with pytest.raises(UsageError) as info:
        load_deployment(path)
    message = str(info.value)
    assert EXPECTED[name] in message
    assert "\n" not in message
    assert PASSWORD not in message and "tok-secret" not in message
    assert info.value.exit_code == 2


def test_good_file_gets_safe_defaults(tmp_path: Path) -> None:
    d = load_deployment(private_copy(tmp_path, GOOD))
    assert (d.username, d.trading_mode, d.tws_major_vrsn) == ("alice", "paper", "1030")
    assert d.api_port == 4002 and d.api_host == "127.0.0.1"
    assert d.read_only_api is True
    assert d.trusted_ips == ("127.0.0.1",)
    assert (d.service_user, d.restart_time, d.timezone) == ("trader", "16:30", "America/New_York")
    assert d.twofa_timeout_action == "exit"
    assert d.password.reveal() == PASSWORD


def test_maintenance_windows_default_to_ibkrs_and_none_turns_them_off(tmp_path: Path) -> None:
    d = load_deployment(private_copy(tmp_path, GOOD))
    assert d.maintenance_windows == ("* 23:45-00:45", "Fri 23:00-03:00")
    off = load_deployment(private_copy(tmp_path, GOOD + "IBKR_MAINTENANCE_WINDOWS=none\n"))
    assert off.maintenance_windows == ()
    # What the host keeps reads back the same (an empty list is written as none).
    assert dict(off.env_items())["IBKR_MAINTENANCE_WINDOWS"] == "none"
    moved = load_deployment(private_copy(tmp_path, GOOD + "IBKR_MAINTENANCE_WINDOWS="
                                         "* 00:15-01:45\n"))
    assert moved.maintenance_windows == ("* 00:15-01:45",)


def test_live_defaults_to_port_4001_and_options_override_the_file(tmp_path: Path) -> None:
    d = load_deployment(private_copy(tmp_path, GOOD.replace("paper", "live")))
    assert d.api_port == 4001 and d.is_live
    d = load_deployment(private_copy(tmp_path, GOOD), {"IBKR_API_PORT": "4100",
                                                       "IBKR_READ_ONLY_API": "no"})
    assert d.api_port == 4100 and d.read_only_api is False


def test_option_is_validated_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="IBKR_TRADING_MODE"):
        load_deployment(private_copy(tmp_path, GOOD), {"IBKR_TRADING_MODE": "real"})


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = private_copy(tmp_path, GOOD, mode)
    with pytest.raises(UsageError, match="chmod 600"):
        load_deployment(path)


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_deployment(tmp_path / "nope.env")


def test_quotes_and_comments_follow_environmentfile_syntax() -> None:
    d = parse_deployment(GOOD.replace(f"IBKR_PASSWORD={PASSWORD}",
                                      'IBKR_PASSWORD="with space # and \\"quote\\""')
                         + "; semicolon comment\nIBKR_TIMEZONE='Europe/London'\n"
                         "IBKR_RESTART_TIME=22:30\n")
    assert d.password.reveal() == 'with space # and "quote"'
    assert d.timezone == "Europe/London"


@pytest.mark.parametrize(("extra", "words"), [
    ("IBKR_RESTART_TIME=11:00\n", "the timer restarts it at 11:00 (America/New_York), which on "
                                  "Mondays is inside the regular session"),
    ("IBKR_TIMEZONE=Europe/London\n", "at 16:30 (Europe/London), which on Mondays is inside"),
    ("IBKR_RESTART_BLACKOUTS=Sat 16:00-17:00\n", "the Gateway restarts itself at 16:31 "
                                                 "(America/New_York), which on Saturdays is "
                                                 "inside the blackout window"),
])
def test_a_daily_restart_the_guards_would_refuse_is_refused_up_front(extra: str,
                                                                     words: str) -> None:
    """The Gateway restarts itself daily at its auto-restart time whatever the host says, so
    that minute (and the timer's) must pass the pre-restart rules on every day."""
    with pytest.raises(UsageError, match="IBKR_RESTART_TIME") as info:
        parse_deployment(GOOD + extra)
    assert words in str(info.value)


def test_secrets_never_show_in_repr_or_describe() -> None:
    d = parse_deployment(GOOD + "DISCORD_WEBHOOK_URL=https://discord.com/api/webhooks/1/tok-secret\n")
    for text in (repr(d), str(d), str(describe(d)), f"{d.password}"):
        assert PASSWORD not in text and "tok-secret" not in text
    assert describe(d)["IBKR_PASSWORD"] == "********"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_loopback_http_webhook_is_allowed_for_local_relays() -> None:
    d = parse_deployment(GOOD + "DISCORD_WEBHOOK_URL=http://127.0.0.1:8080/api/webhooks/1/tok\n")
    assert d.discord_webhook_url is not None


def test_env_items_round_trip() -> None:
    d = parse_deployment(GOOD + "IBKR_RESTART_BLACKOUTS=Mon..Wed 16:00-16:20; Sun 17:00-18:00\n")
    again = parse_deployment(env_file_text(d))
    assert again == d
